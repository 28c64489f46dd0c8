package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRecordingDefaults(t *testing.T) {
	cfg := Default()
	want := Recording{
		Dir:              "data/recordings",
		Path:             "{name}/{date}/{time}-{rendition}-{seq}",
		Format:           RecordingFormatFMP4,
		FragmentDuration: time.Second,
		Rollover:         time.Hour,
		Retention:        Retention{Scope: RetentionScopeStream, Interval: time.Minute},
		Rules:            []RecordingRule{},
	}
	if !reflect.DeepEqual(cfg.Recording, want) {
		t.Errorf("recording = %+v, want %+v", cfg.Recording, want)
	}
	if cfg.Packager.DVRWindow != 0 {
		t.Errorf("packager.dvr_window = %s, want 0", cfg.Packager.DVRWindow)
	}
	if _, ok := cfg.RecordingRuleFor("live/cam1"); ok {
		t.Error("the default configuration records without being asked")
	}
	if app, _ := cfg.application("live"); !app.AllowRecordParam {
		t.Error("the default application live does not allow ?record=1")
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestRecordingSection(t *testing.T) {
	path := writeConfig(t, `
applications:
  - name: live
  - name: studio
packager:
  dvr_window: 30m
recording:
  dir: /var/lib/mps/rec
  path: "{app}/{stream}/{session}/{date}T{time}_{rendition}_{seq}"
  format: hls
  fragment_duration: 500ms
  rollover: 10m
  finalize: true
  retention:
    max_age: 720h
    max_size: 10000000000
    scope: application
    interval: 30s
  rules:
    - match: "live/cam-*"
      renditions: [all]
    - application: studio
      renditions: [source, 720p]
      format: fmp4
    - match: "live/*"
`)
	cfg, err := load(t, path)
	if err != nil {
		t.Fatal(err)
	}
	want := Recording{
		Dir:              "/var/lib/mps/rec",
		Path:             "{app}/{stream}/{session}/{date}T{time}_{rendition}_{seq}",
		Format:           RecordingFormatHLS,
		FragmentDuration: 500 * time.Millisecond,
		Rollover:         10 * time.Minute,
		Finalize:         true,
		Retention:        Retention{MaxAge: 720 * time.Hour, MaxSize: 10_000_000_000, Scope: RetentionScopeApplication, Interval: 30 * time.Second},
		Rules: []RecordingRule{
			{Match: "live/cam-*", Renditions: []string{"all"}},
			{Application: "studio", Renditions: []string{"source", "720p"}, Format: "fmp4"},
			{Match: "live/*"},
		},
	}
	if !reflect.DeepEqual(cfg.Recording, want) {
		t.Errorf("recording:\n got %+v\nwant %+v", cfg.Recording, want)
	}
	if cfg.Packager.DVRWindow != 30*time.Minute {
		t.Errorf("packager.dvr_window = %s, want 30m", cfg.Packager.DVRWindow)
	}
	for name, wantRule := range map[string]int{
		"live/cam-1":       0,
		"live/cam1":        2,
		"studio/a":         1,
		"studio/a/720p":    1,
		"live/cam1/720p":   -1,
		"other/cam1":       -1,
		"studio":           -1,
		"studiox/anything": -1,
	} {
		got, ok := cfg.RecordingRuleFor(name)
		switch {
		case wantRule < 0 && ok:
			t.Errorf("RecordingRuleFor(%s) = %+v, want none", name, got)
		case wantRule >= 0 && (!ok || !reflect.DeepEqual(got, want.Rules[wantRule])):
			t.Errorf("RecordingRuleFor(%s) = %+v, %v, want rule %d", name, got, ok, wantRule)
		}
	}
}

func TestRecordingFragmentDurationZeroIsTheDefault(t *testing.T) {
	cfg, err := load(t, writeConfig(t, "recording: {fragment_duration: 0s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Recording.FragmentDuration != time.Second {
		t.Errorf("fragment_duration = %s, want 1s", cfg.Recording.FragmentDuration)
	}
}

func TestRecordingSingleRenditionString(t *testing.T) {
	cfg, err := load(t, writeConfig(t, "recording:\n  rules:\n    - {match: live/*, renditions: 720p}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Recording.Rules[0].Renditions; !reflect.DeepEqual(got, []string{"720p"}) {
		t.Errorf("renditions = %q", got)
	}
}

func TestRecordingEnv(t *testing.T) {
	cfg, err := load(t, "../configs/mps.yaml",
		"MPS_RECORDING_DIR=/srv/rec",
		"MPS_RECORDING_PATH={name}/{seq}",
		"MPS_RECORDING_FORMAT=hls",
		"MPS_RECORDING_FRAGMENT_DURATION=200ms",
		"MPS_RECORDING_ROLLOVER=5m",
		"MPS_RECORDING_FINALIZE=true",
		"MPS_RECORDING_RETENTION_MAX_AGE=24h",
		"MPS_RECORDING_RETENTION_MAX_SIZE=1000000",
		"MPS_RECORDING_RETENTION_SCOPE=application",
		"MPS_RECORDING_RETENTION_INTERVAL=10s",
		"MPS_PACKAGER_DVR_WINDOW=1h",
	)
	if err != nil {
		t.Fatal(err)
	}
	want := Recording{
		Dir: "/srv/rec", Path: "{name}/{seq}", Format: "hls", FragmentDuration: 200 * time.Millisecond,
		Rollover: 5 * time.Minute, Finalize: true,
		Retention: Retention{MaxAge: 24 * time.Hour, MaxSize: 1_000_000, Scope: "application", Interval: 10 * time.Second},
		Rules:     []RecordingRule{},
	}
	if !reflect.DeepEqual(cfg.Recording, want) {
		t.Errorf("recording:\n got %+v\nwant %+v", cfg.Recording, want)
	}
	if cfg.Packager.DVRWindow != time.Hour {
		t.Errorf("packager.dvr_window = %s", cfg.Packager.DVRWindow)
	}
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"MPS_RECORDING_DIR", "MPS_RECORDING_RETENTION_MAX_SIZE", "MPS_PACKAGER_DVR_WINDOW"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
	if strings.Contains(names, "RULES") {
		t.Errorf("EnvNames lists recording.rules: %s", names)
	}

	_, err = load(t, "../configs/mps.yaml", "MPS_RECORDING_RETENTION_MAX_SIZE=lots")
	mustFail(t, err, "MPS_RECORDING_RETENTION_MAX_SIZE", "lots")
}

func TestRecordingKeysAreNamed(t *testing.T) {
	cases := map[string][]string{
		"recording:\n  dri: x\n":                                          {`unknown key "recording.dri"`, "known keys in recording:", "fragment_duration"},
		"recording:\n  retention: {max_ag: 1h}\n":                         {`unknown key "recording.retention.max_ag"`},
		"recording:\n  rules:\n    - {match: live/*, rendition: [all]}\n": {`unknown key "recording.rules[0].rendition"`, "known keys in recording.rules[0]: application, format, match, renditions"},
		"recording:\n  rules: {match: live/*}\n":                          {"recording.rules must be a list"},
		"recording:\n  rules: [live/*]\n":                                 {"recording.rules[0] must be a map"},
		"recording: {rollover: 60}\n":                                     {"recording.rollover", "no unit"},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestInvalidRecording(t *testing.T) {
	cases := map[string][]string{
		"packager: {dvr_window: -1s}\n":                         {"packager.dvr_window -1s: must be 0 (off) or more"},
		"applications:\n  - name: live\n  - name: recordings\n": {`applications[1] (recordings).name "recordings": reserved`},
		"recording: {dir: \" \"}\n":                             {"recording.dir: must be set"},
		"recording: {format: mkv}\n":                            {`recording.format "mkv": want fmp4 or hls`},
		"recording: {fragment_duration: 50ms}\n":                {"recording.fragment_duration 50ms: must be from 100ms to 1s (0 means 1s)"},
		"recording: {fragment_duration: 2s}\n":                  {"recording.fragment_duration 2s: must be from 100ms to 1s"},
		"recording: {rollover: 500ms}\n":                        {"recording.rollover 500ms: must be at least 1s"},
		"recording: {rollover: 0s}\n":                           {"recording.rollover 0s: must be at least 1s"},
		"recording: {path: \"\"}\n":                             {`recording.path "": must be set`},
		"recording: {path: \"{name}/{foo}\"}\n":                 {`recording.path "{name}/{foo}": unknown field {foo}`, "known: {name} {app} {stream} {rendition} {date} {time} {seq} {session}"},
		"recording: {path: \"{Name}\"}\n":                       {"unknown field {Name}"},
		"recording: {path: \"{name}/{date}\"}\n":                {`recording.path "{name}/{date}": needs {seq} or {time}`},
		"recording: {path: \"{name\"}\n":                        {"has a '{' without its '}'"},
		"recording: {path: \"{na{me}\"}\n":                      {"has a '{' without its '}'"},
		"recording: {path: \"name}\"}\n":                        {"has a '}' without its '{'"},
		"recording: {path: \"/abs/{name}\"}\n":                  {`recording.path "/abs/{name}": must be relative to recording.dir`},
		"recording: {path: \"../{name}\"}\n":                    {`must not contain a ".." path element`},
		"recording: {path: \"{name}/../../x\"}\n":               {`must not contain a ".." path element`},
		"recording: {path: \"{name}/./x\"}\n":                   {`must not contain a "." path element`},
		"recording: {path: \"{name}//{seq}\"}\n":                {"empty path element"},
		"recording: {path: \"{name}/\"}\n":                      {"empty path element"},
		"recording: {retention: {max_age: -1h}}\n":              {"recording.retention.max_age -1h0m0s: must be 0 (keep) or more"},
		"recording: {retention: {max_size: -1}}\n":              {"recording.retention.max_size -1: must be 0 (no limit) or more bytes"},
		"recording: {retention: {scope: global}}\n":             {`recording.retention.scope "global": want stream or application`},
		"recording: {retention: {interval: 0s}}\n":              {"recording.retention.interval 0s: must be more than 0"},
		"recording: {retention: {max_size: 10GB}}\n":            {"recording.retention.max_size"},

		"recording:\n  rules:\n    - {renditions: [all]}\n":                                {"recording.rules[0]: set match (a glob like live/*) or application (like live)"},
		"recording:\n  rules:\n    - {match: live/*, application: live}\n":                 {`recording.rules[0]: set only one of match "live/*" and application "live"`},
		"recording:\n  rules:\n    - {match: \"live/[\"}\n":                                {`recording.rules[0].match "live/[": syntax error in pattern`},
		"recording:\n  rules:\n    - {match: \"cam*\"}\n":                                  {`recording.rules[0].match "cam*": matches no stream`, "cam*/*"},
		"recording:\n  rules:\n    - {application: studio}\n":                              {`recording.rules[0].application "studio": no such application (known: live)`},
		"recording:\n  rules:\n    - {match: live/*, renditions: [source, \"\"]}\n":        {"recording.rules[0].renditions[1]: must not be empty"},
		"recording:\n  rules:\n    - {match: live/*, renditions: [source, all]}\n":         {`recording.rules[0].renditions[1]: "all" must be the only entry`},
		"recording:\n  rules:\n    - {match: live/*, renditions: [source, source]}\n":      {`recording.rules[0].renditions[1] "source": listed twice`},
		"recording:\n  rules:\n    - {match: live/*, renditions: [\"../x\"]}\n":            {`recording.rules[0].renditions[0] "../x": want source, all or a rung name`},
		"recording:\n  rules:\n    - {match: live/*}\n    - {match: live/*, format: ts}\n": {`recording.rules[1].format "ts": want fmp4 or hls`},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestRecordingProblemsAreAllReported(t *testing.T) {
	_, err := load(t, writeConfig(t, "recording: {format: x, rollover: 0s, path: \"{x}\", retention: {scope: y}}\n"))
	mustFail(t, err, "recording.format", "recording.rollover", "recording.path", "recording.retention.scope")
}
