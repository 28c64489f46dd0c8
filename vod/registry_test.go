package vod

import (
	"strings"
	"testing"
)

// TestPresetsAreValid checks every built-in template against its runner
// and that the presets the issue names exist.
func TestPresetsAreValid(t *testing.T) {
	runners := Runners()
	presets := Presets()
	for typ, byName := range presets {
		r, ok := runners[typ]
		if !ok {
			t.Fatalf("presets of unknown task type %q", typ)
		}
		for name, params := range byName {
			if c, ok := r.(ParamsChecker); ok {
				if err := c.CheckParams(params); err != nil {
					t.Errorf("%s preset %q: %v", typ, name, err)
				}
			}
		}
	}
	for typ, name := range map[string]string{
		TaskTranscode: "mp4-720p", TaskSnapshot: "snapshot-sample-10s", TaskSprite: "sprite-default",
		TaskAnimated: "gif-preview", TaskEnhance: "loudnorm-ebu", TaskQuality: "quality-psnr-ssim", TaskAdaptive: "adaptive-default",
	} {
		if _, ok := presets[typ][name]; !ok {
			t.Errorf("no %s preset %q", typ, name)
		}
	}
}

// TestEveryRunnerChecksTemplates: a template of any task type is checked
// when it is saved, so an unknown field is refused then, not when a job
// runs.
func TestEveryRunnerChecksTemplates(t *testing.T) {
	for typ, r := range Runners() {
		c, ok := r.(ParamsChecker)
		if !ok {
			t.Errorf("%s: the runner does not check templates", typ)
			continue
		}
		if err := c.CheckParams([]byte(`{"no_such_field": 1}`)); err == nil {
			t.Errorf("%s: a template with an unknown field passed", typ)
		}
	}
	for typ, params := range map[string]string{
		TaskSnapshot: `{"interval": -5}`,
		TaskSprite:   `{"columns": 0}`,
		TaskAnimated: `{"format": "avi"}`,
	} {
		if err := Runners()[typ].(ParamsChecker).CheckParams([]byte(params)); err == nil {
			t.Errorf("%s template %s passed", typ, params)
		}
	}
}

// TestParamErrorsNameTheirField: a refused template names the field by
// its path, also where the value has its own parsing.
func TestParamErrorsNameTheirField(t *testing.T) {
	check := Runners()[TaskTranscode].(ParamsChecker)
	for params, want := range map[string]string{
		`{"video": {"bitrate": "lots"}}`: "video.bitrate",
		`{"video": {"bitrat": "1M"}}`:    "video.bitrat",
		`{"video": {"width": "wide"}}`:   "video.width",
	} {
		err := check.CheckParams([]byte(params))
		if err == nil || !strings.Contains(err.Error(), want+":") {
			t.Errorf("%s: %v, want the path %s", params, err, want)
		}
	}
}
