package vod

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// hlBurstStart and hlBurstEnd bound the lively burst of hlTestMedia.
const (
	hlBurstStart = 22.0
	hlBurstEnd   = 25.0
)

// hlTestMedia makes 40 s of calm content (a still colour and a quiet
// tone) with one 3 s burst at 22 s of rapid cuts (testsrc2 whose hue
// jumps and whose picture is negated every 0.2 s) and loud noise.
func hlTestMedia(t *testing.T, name string, video, audio bool) Media {
	t.Helper()
	var args []string
	var graph []string
	var maps []string
	if video {
		args = append(args, "-f", "lavfi", "-i", "color=c=0x336699:size=320x240:rate=25:duration=40",
			"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=40")
		graph = append(graph, "[1:v]hue=h='floor(t*6)*97',negate=enable='lt(mod(t,0.4),0.2)'[b];"+
			"[0:v][b]overlay=enable='between(t,22,25)',format=yuv420p[v]")
		maps = append(maps, "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50")
	}
	if audio {
		s, nz := 0, 1
		if video {
			s, nz = 2, 3
		}
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=40",
			"-f", "lavfi", "-i", "anoisesrc=color=white:amplitude=0.7:sample_rate=48000:duration=40")
		graph = append(graph, "["+strconv.Itoa(s)+":a]volume=0.03[s];["+strconv.Itoa(nz)+":a]volume=enable='not(between(t,22,25))':volume=0[n];"+
			"[s][n]amix=inputs=2:normalize=0[a]")
		maps = append(maps, "-map", "[a]", "-c:a", "aac")
	}
	args = append(args, "-filter_complex", strings.Join(graph, ";"))
	return qcTestMedia(t, name, append(args, maps...)...)
}

// runHighlights runs a highlights task and returns its outputs, report
// and output folder.
func runHighlights(t *testing.T, in Media, params string) ([]Output, HighlightsReport, string) {
	t.Helper()
	out := t.TempDir()
	last := 0.0
	outs, err := Highlights().Run(context.Background(), Env{OutDir: out, Progress: func(f float64) {
		if f < last {
			t.Errorf("progress went back from %g to %g", last, f)
		}
		last = f
	}}, in, json.RawMessage(params))
	if err != nil {
		t.Fatalf("highlights: %v", err)
	}
	if last != 1 {
		t.Errorf("last progress %g", last)
	}
	if len(outs) == 0 || outs[0].Kind != "report" || outs[0].Path != HighlightsReportFile {
		t.Fatalf("outputs: %+v", outs)
	}
	b, err := os.ReadFile(filepath.Join(out, HighlightsReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var r HighlightsReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("highlights.json: %v\n%s", err, b)
	}
	if hs, _ := outs[0].Data["highlights"].([]Highlight); len(hs) != len(r.Highlights) {
		t.Errorf("Data has %d highlights, highlights.json %d", len(hs), len(r.Highlights))
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".highlights-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	t.Logf("highlights.json: %s", b)
	return outs, r, out
}

// checkHighlights checks the report's invariants and that the best
// moment is the burst.
func checkHighlights(t *testing.T, r HighlightsReport, p HighlightsParams, reason string) {
	t.Helper()
	p.applyDefaults()
	if len(r.Highlights) == 0 {
		t.Fatal("no highlights")
	}
	if len(r.Highlights) > p.Top {
		t.Errorf("%d highlights, top is %d", len(r.Highlights), p.Top)
	}
	for i, h := range r.Highlights {
		if h.Rank != i+1 || h.Score < 0 || h.Score > 1 || h.End <= h.Start ||
			h.Duration < p.MinDuration-0.01 || h.Duration > p.MaxDuration+0.01 {
			t.Errorf("highlight %d: %+v", i, h)
		}
		if i > 0 && h.Score > r.Highlights[i-1].Score {
			t.Errorf("highlight %d scores more than %d", i, i-1)
		}
		for j, o := range r.Highlights[:i] {
			if h.Start < o.End && o.Start < h.End {
				t.Errorf("highlights %d and %d overlap: %+v %+v", j, i, o, h)
			}
		}
	}
	top := r.Highlights[0]
	if math.Abs(top.Start-hlBurstStart) > 1 || top.End < hlBurstEnd-1 {
		t.Errorf("top moment %+v is not the burst at %g..%g", top, hlBurstStart, hlBurstEnd)
	}
	if top.Reason != reason {
		t.Errorf("top reason %q, want %q", top.Reason, reason)
	}
	t.Logf("top moment %g..%g (burst %g..%g): start off by %+.2fs, end off by %+.2fs, score %.3f",
		top.Start, top.End, hlBurstStart, hlBurstEnd, top.Start-hlBurstStart, top.End-hlBurstEnd, top.Score)
}

func TestHighlightsFindsTheBurst(t *testing.T) {
	in := hlTestMedia(t, "burst.mp4", true, true)
	outs, r, _ := runHighlights(t, in, `{}`)
	checkHighlights(t, r, HighlightsParams{}, "scene changes and loud audio")
	if len(outs) != 1 {
		t.Errorf("clips without clips: %+v", outs)
	}
	if r.MedianLoudness == nil || *r.MedianLoudness > -40 {
		t.Errorf("median loudness %v", r.MedianLoudness)
	}
	// The calm rest holds nothing else that stands out.
	for _, h := range r.Highlights[1:] {
		if h.Score >= r.Highlights[0].Score/2 {
			t.Errorf("calm moment scores %g: %+v", h.Score, h)
		}
	}
}

func TestHighlightsClips(t *testing.T) {
	in := hlTestMedia(t, "burst.mp4", true, true)
	outs, r, dir := runHighlights(t, in, `{"top":2,"clips":true,"min_duration":2,"max_duration":6}`)
	checkHighlights(t, r, HighlightsParams{Top: 2, MinDuration: 2, MaxDuration: 6}, "scene changes and loud audio")
	if len(outs) != 1+len(r.Highlights) {
		t.Fatalf("outputs %+v for %d highlights", outs, len(r.Highlights))
	}
	for i, o := range outs[1:] {
		h := r.Highlights[i]
		want := "clip-0" + strconv.Itoa(i+1) + ".mp4"
		if o.Kind != "clip" || o.Path != want || h.Clip != want || o.MIME != "video/mp4" || o.Size <= 0 {
			t.Errorf("clip %d: %+v (highlight %+v)", i, o, h)
		}
		m, err := Probe(context.Background(), Env{}, filepath.Join(dir, o.Path))
		if err != nil {
			t.Fatalf("clip %d: %v", i, err)
		}
		if m.Video == nil || m.Audio == nil || m.Video.Codec != "h264" || m.Audio.Codec != "aac" {
			t.Errorf("clip %d streams: %+v", i, m)
		}
		if d := m.Duration.Seconds(); math.Abs(d-h.Duration) > 0.15 {
			t.Errorf("clip %d lasts %.3fs, its moment %.3fs", i, d, h.Duration)
		}
		t.Logf("clip %d: %.3fs for a %.3fs moment", i+1, m.Duration.Seconds(), h.Duration)
		// It decodes to the end.
		if out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, o.Path), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("clip %d does not decode cleanly: %v %s", i, err, out)
		}
	}
}

func TestHighlightsAudioOnly(t *testing.T) {
	// Without video, moments come from the audio alone (and clips, which
	// are video, are not cut).
	in := hlTestMedia(t, "burst.m4a", false, true)
	outs, r, _ := runHighlights(t, in, `{"clips":true}`)
	checkHighlights(t, r, HighlightsParams{}, "loud audio")
	if len(outs) != 1 {
		t.Errorf("outputs: %+v", outs)
	}
}

func TestHighlightsVideoOnly(t *testing.T) {
	in := hlTestMedia(t, "burst.mp4", true, false)
	_, r, _ := runHighlights(t, in, `{"top":3}`)
	checkHighlights(t, r, HighlightsParams{Top: 3}, "scene changes")
	if r.MedianLoudness != nil {
		t.Errorf("median loudness without audio: %v", *r.MedianLoudness)
	}
}

func TestHighlightsBadParams(t *testing.T) {
	for _, params := range []string{
		`{"nope":1}`,
		`{"top":-1}`,
		`{"top":1000}`,
		`{"min_duration":0.1}`,
		`{"min_duration":5,"max_duration":4}`,
		`{"scene_threshold":101}`,
		`{"scene_weight":2}`,
		`{"scene_weight":0,"loudness_weight":0}`,
		`{"clips":"yes"}`,
	} {
		if err := Highlights().(ParamsChecker).CheckParams(json.RawMessage(params)); !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: %v", params, err)
		}
		_, err := Highlights().Run(context.Background(), Env{OutDir: t.TempDir()}, Media{Path: "x.mp4", Video: &VideoStream{}}, json.RawMessage(params))
		if !errors.Is(err, ErrBadInput) {
			t.Errorf("run %s: %v", params, err)
		}
	}
	for name, p := range HighlightsPresets() {
		if err := Highlights().(ParamsChecker).CheckParams(p); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, ok := HighlightsPresets()["highlights-default"]; !ok {
		t.Error("no highlights-default preset")
	}
}

func TestHighlightsRankSynthetic(t *testing.T) {
	// Two bursts of cuts on 60 s of silence-free audio: the denser one
	// ranks first, moments never overlap and stay within bounds.
	var scenes, loud []Detection
	for f := 0; f < 60*25; f++ {
		tm := float64(f) / 25
		v := 0.0
		if (tm >= 10 && tm < 12 && f%25 == 0) || (tm >= 40 && tm < 43 && f%3 == 0) {
			v = 30
		}
		scenes = append(scenes, Detection{Key: KeySceneScore, Value: v, Time: tm})
	}
	for b := 0; b < 600; b++ {
		loud = append(loud, Detection{Key: KeyMomentary, Value: -30, Time: float64(b) / 10})
	}
	r := RankHighlights(HighlightsParams{Top: 5}, 60, scenes, loud, true, true)
	if len(r.Highlights) != 2 {
		t.Fatalf("highlights: %+v", r.Highlights)
	}
	if a := r.Highlights[0]; a.Start > 40 || a.End < 43 || a.Reason != "scene changes" {
		t.Errorf("first %+v", a)
	}
	if b := r.Highlights[1]; b.Start > 10 || b.End < 11 {
		t.Errorf("second %+v", b)
	}
	// Nothing at all: no moments.
	if r := RankHighlights(HighlightsParams{}, 10, nil, nil, true, true); len(r.Highlights) != 0 {
		t.Errorf("empty input: %+v", r.Highlights)
	}
}
