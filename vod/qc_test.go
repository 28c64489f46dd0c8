package vod

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mps-dev/mps/test/testutil"
)

// qcTestMedia makes a file with ffmpeg (args are everything between the
// global options and the output path) and probes it.
func qcTestMedia(t *testing.T, name string, args ...string) Media {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), name)
	full := append([]string{"-v", "error", "-y"}, args...)
	if out, err := exec.Command("ffmpeg", append(full, path)...).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", name, err, out)
	}
	m, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runQC runs a qc task on in and returns its report, checking that
// qc.json and the output's Data agree.
func runQC(t *testing.T, in Media, params string) QCReport {
	t.Helper()
	out := t.TempDir()
	outs, err := QC().Run(context.Background(), Env{OutDir: out, Progress: func(float64) {}}, in, json.RawMessage(params))
	if err != nil {
		t.Fatalf("qc: %v", err)
	}
	if len(outs) != 1 || outs[0].Kind != "report" || outs[0].Path != QCReportFile {
		t.Fatalf("outputs: %+v", outs)
	}
	b, err := os.ReadFile(filepath.Join(out, QCReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var r QCReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("qc.json: %v\n%s", err, b)
	}
	if outs[0].Data["passed"] != r.Passed {
		t.Errorf("Data passed %v, qc.json %v", outs[0].Data["passed"], r.Passed)
	}
	if issues, _ := outs[0].Data["issues"].([]QCIssue); len(issues) != len(r.Issues) {
		t.Errorf("Data has %d issues, qc.json %d", len(issues), len(r.Issues))
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".qc-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	t.Logf("qc.json: %s", b)
	return r
}

func TestQCFindsBlackSilenceAndFreeze(t *testing.T) {
	// 40 s of moving testsrc2 and a tone near -23 LUFS, with 2 s of black
	// at 10 s, 3 s of silence at 20 s and 2 s frozen at 30 s.
	in := qcTestMedia(t, "defects.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=40",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=40",
		"-filter_complex", "[0:v]drawbox=c=black:t=fill:enable='between(t,10,12)',split[v1][v2];"+
			"[v1][v2]freezeframes=first=750:last=799:replace=750[v];"+
			"[1:a]volume=-1.2dB,volume=enable='between(t,20,23)':volume=0[a]",
		"-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac")
	r := runQC(t, in, `{}`)
	want := []struct {
		typ        string
		start, end float64
	}{
		{QCIssueBlack, 10, 12},
		{QCIssueSilence, 20, 23},
		{QCIssueFreeze, 30, 32},
	}
	if len(r.Issues) != len(want) {
		t.Fatalf("want exactly %d issues, got %d: %+v", len(want), len(r.Issues), r.Issues)
	}
	for i, w := range want {
		is := r.Issues[i]
		if is.Type != w.typ || math.Abs(is.Start-w.start) > 0.5 || math.Abs(is.End-w.end) > 0.5 {
			t.Errorf("issue %d: want %s %g..%g, got %+v", i, w.typ, w.start, w.end, is)
		}
		if is.Severity != SeverityWarning || is.Message == "" {
			t.Errorf("issue %d: severity %q message %q", i, is.Severity, is.Message)
		}
		t.Logf("%s: start off by %+.3fs, end off by %+.3fs", is.Type, is.Start-w.start, is.End-w.end)
	}
	if r.Passed {
		t.Error("passed with issues")
	}
	if r.Loudness == nil {
		t.Fatal("no loudness")
	}
	if math.Abs(r.Loudness.Integrated+23) > 2 || r.Loudness.TruePeak > -1 {
		t.Errorf("loudness %+v", *r.Loudness)
	}
}

func TestQCCleanInputPasses(t *testing.T) {
	in := qcTestMedia(t, "clean.mp4",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
		"-af", "volume=-1.2dB", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac")
	r := runQC(t, in, `{"target_lufs":-23,"tolerance_lu":2}`)
	if !r.Passed || len(r.Issues) != 0 {
		t.Errorf("clean input: passed %v issues %+v", r.Passed, r.Issues)
	}
}

func TestQCMissingAudio(t *testing.T) {
	in := qcTestMedia(t, "noaudio.mp4", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	r := runQC(t, in, `{}`)
	if len(r.Issues) != 1 || r.Issues[0].Type != QCIssueMissingAudio || r.Issues[0].Severity != SeverityError {
		t.Fatalf("issues: %+v", r.Issues)
	}
	if r.Passed || r.Loudness != nil {
		t.Errorf("passed %v loudness %+v", r.Passed, r.Loudness)
	}
	// Not required: no issue.
	if r := runQC(t, in, `{"require_audio":false}`); len(r.Issues) != 0 || !r.Passed {
		t.Errorf("require_audio false: %+v", r.Issues)
	}
}

func TestQCMissingVideo(t *testing.T) {
	in := qcTestMedia(t, "audio.m4a", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
		"-af", "volume=-1.2dB", "-c:a", "aac")
	r := runQC(t, in, `{}`)
	if len(r.Issues) != 1 || r.Issues[0].Type != QCIssueMissingVideo || r.Issues[0].Severity != SeverityError {
		t.Fatalf("issues: %+v", r.Issues)
	}
	if r.Loudness == nil {
		t.Error("no loudness for an audio file")
	}
}

func TestQCClipping(t *testing.T) {
	// A tone overdriven by 30 dB from 2 s to 4 s, kept as PCM.
	in := qcTestMedia(t, "clipped.mkv",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
		"-af", "volume=-1.2dB,volume=enable='between(t,2,4)':volume=30dB",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le")
	r := runQC(t, in, `{}`)
	var clips []QCIssue
	for _, is := range r.Issues {
		if is.Type == QCIssueClipping {
			clips = append(clips, is)
		}
	}
	if len(clips) != 1 {
		t.Fatalf("want one clipping issue, got %+v", r.Issues)
	}
	if c := clips[0]; math.Abs(c.Start-2) > 0.5 || math.Abs(c.End-4) > 0.5 || c.Severity != SeverityWarning {
		t.Errorf("clipping %+v", c)
	}
	if r.Passed {
		t.Error("clipped input passed")
	}
	// The same tone, not overdriven, does not clip.
	clean := qcTestMedia(t, "unclipped.mkv",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
		"-af", "volume=-1.2dB", "-c:a", "pcm_s16le")
	for _, is := range runQC(t, clean, `{"require_video":false}`).Issues {
		t.Errorf("unclipped tone: %+v", is)
	}
}

func TestQCBadParams(t *testing.T) {
	for _, params := range []string{
		`{"nope":1}`,
		`{"black_min_duration":-1}`,
		`{"freeze_noise_db":5}`,
		`{"silence_min_duration":"1"}`,
		`{"target_lufs":3}`,
		`{"tolerance_lu":-2}`,
		`{"max_true_peak":20}`,
		`{"clip_samples":-4}`,
		`[1]`,
	} {
		err := QC().(ParamsChecker).CheckParams(json.RawMessage(params))
		if !errors.Is(err, ErrBadInput) {
			t.Errorf("%s: %v", params, err)
		}
		_, err = QC().Run(context.Background(), Env{OutDir: t.TempDir()}, Media{Path: "x.mp4"}, json.RawMessage(params))
		if !errors.Is(err, ErrBadInput) {
			t.Errorf("run %s: %v", params, err)
		}
	}
	for name, p := range QCPresets() {
		if err := QC().(ParamsChecker).CheckParams(p); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	if _, ok := QCPresets()["qc-default"]; !ok {
		t.Error("no qc-default preset")
	}
}

func TestQCFiltersAndDetectorOnStderr(t *testing.T) {
	// The live path: QCFilters' chains printing to stderr, read line by
	// line by a QCDetector, which sees both the printers' lines and the
	// filters' own log lines.
	testutil.RequireTools(t, "ffmpeg")
	vf, af := QCFilters(QCParams{})
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostats", "-loglevel", "info",
		"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=8",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=8",
		"-filter_complex", "[0:v]drawbox=c=black:t=fill:enable='between(t,2,4)',"+vf+"[v];"+
			"[1:a]volume=enable='between(t,5,7)':volume=0,"+af+"[a]",
		"-map", "[v]", "-map", "[a]", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	d := NewQCDetector(QCParams{})
	var issues []QCIssue
	for _, line := range strings.Split(string(out), "\n") {
		issues = append(issues, d.Line(line)...)
	}
	issues = append(issues, d.Finish(8)...)
	var types []string
	for _, is := range issues {
		types = append(types, is.Type)
	}
	if strings.Join(types, ",") != "black,silence" {
		t.Fatalf("issues: %+v", issues)
	}
	if math.Abs(issues[0].Start-2) > 0.5 || math.Abs(issues[0].End-4) > 0.5 ||
		math.Abs(issues[1].Start-5) > 0.5 || math.Abs(issues[1].End-7) > 0.5 {
		t.Errorf("issues: %+v", issues)
	}
	if l, ok := d.Loudness(); !ok || l.Integrated > -15 || l.Integrated < -25 {
		t.Errorf("loudness %+v %v", l, ok)
	}
}
