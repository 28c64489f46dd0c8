package vod

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/test/testutil"
)

// capFakeEngine is a speech engine that returns a canned transcript, or
// an error.
type capFakeEngine struct {
	name string
	tr   *speech.Transcript
	err  error
	path string // the file it was asked to transcribe
}

func (e *capFakeEngine) Name() string { return e.name }

func (e *capFakeEngine) Transcribe(ctx context.Context, path string, progress func(float64)) (*speech.Transcript, error) {
	e.path = path
	if e.err != nil {
		return nil, e.err
	}
	if progress != nil {
		progress(0.5)
		progress(1)
	}
	tr := *e.tr
	return &tr, nil
}

// capTestTranscript is what the fake engine hears: two phrases.
func capTestTranscript() *speech.Transcript {
	return &speech.Transcript{Engine: "fake", Language: "en", Duration: 6 * time.Second, Segments: []speech.Segment{
		{Start: 1 * time.Second, End: 2500 * time.Millisecond, Text: "hello world this is a test"},
		{Start: 3 * time.Second, End: 4500 * time.Millisecond, Text: "the second phrase is here"},
	}}
}

// capTestInput makes a 6 s 320x240 input with a 440 Hz tone (without
// audio when audio is false) and probes it.
func capTestInput(t *testing.T, audio bool) Media {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), "in.mp4")
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6"}
	if audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6", "-c:a", "aac")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", "-y", path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make input: %v\n%s", err, out)
	}
	m, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func capEnv(t *testing.T, engines ...speech.Engine) Env {
	env := Env{OutDir: t.TempDir(), Progress: func(float64) {}, Speech: map[string]speech.Engine{}}
	for _, e := range engines {
		env.Speech[e.Name()] = e
	}
	return env
}

func capOutput(t *testing.T, outs []Output, kind string) Output {
	t.Helper()
	for _, o := range outs {
		if o.Kind == kind {
			return o
		}
	}
	t.Fatalf("no %s output in %+v", kind, outs)
	return Output{}
}

// TestCaptionsFiles runs a captions task with a fake engine: the VTT and
// SRT hold the cues at the phrases' times, the transcript is the
// engine's, and the summary is in Data.
func TestCaptionsFiles(t *testing.T) {
	in := capTestInput(t, true)
	eng := &capFakeEngine{name: "fake", tr: capTestTranscript()}
	env := capEnv(t, eng)
	var seen []float64
	env.Progress = func(f float64) { seen = append(seen, f) }
	outs, err := Captions().Run(context.Background(), env, in, json.RawMessage(`{"engine":"fake"}`))
	if err != nil {
		t.Fatal(err)
	}
	if eng.path != in.Path {
		t.Errorf("engine transcribed %q", eng.path)
	}
	if len(outs) != 3 {
		t.Fatalf("outputs %+v", outs)
	}
	want := []captions.Cue{
		{Start: 1 * time.Second, End: 2500 * time.Millisecond, Text: "hello world this is a test"},
		{Start: 3 * time.Second, End: 4500 * time.Millisecond, Text: "the second phrase is here"},
	}
	for _, c := range []struct {
		kind, file, mime string
		parse            func(r *os.File) ([]captions.Cue, error)
	}{
		{"vtt", "captions.vtt", "text/vtt", func(r *os.File) ([]captions.Cue, error) { return captions.ParseVTT(r) }},
		{"srt", "captions.srt", "application/x-subrip", func(r *os.File) ([]captions.Cue, error) { return captions.ParseSRT(r) }},
	} {
		o := capOutput(t, outs, c.kind)
		f, err := os.Open(filepath.Join(env.OutDir, o.Path))
		if err != nil {
			t.Fatal(err)
		}
		cues, err := c.parse(f)
		f.Close()
		st, _ := os.Stat(filepath.Join(env.OutDir, o.Path))
		if err != nil || o.Path != c.file || o.MIME != c.mime || st == nil || o.Size != st.Size() {
			t.Errorf("%s: %+v: %v", c.kind, o, err)
		}
		if fmt.Sprint(cues) != fmt.Sprint(want) {
			t.Errorf("%s cues %q, want %q", c.kind, cues, want)
		}
	}
	vtt := capOutput(t, outs, "vtt")
	wantData := map[string]any{"engine": "fake", "language": "en", "label": "English", "cues": 2, "words": 11,
		"text": "hello world this is a test the second phrase is here", "attach": true}
	if fmt.Sprint(vtt.Data) != fmt.Sprint(wantData) {
		t.Errorf("vtt data %v, want %v", vtt.Data, wantData)
	}
	tro := capOutput(t, outs, "transcript")
	b, err := os.ReadFile(filepath.Join(env.OutDir, tro.Path))
	if err != nil {
		t.Fatal(err)
	}
	var tr speech.Transcript
	if err := json.Unmarshal(b, &tr); err != nil || tro.Path != "transcript.json" || tro.MIME != "application/json" ||
		len(tr.Segments) != 2 || tr.Segments[1].Start != 3*time.Second || tr.Segments[1].Text != "the second phrase is here" {
		t.Errorf("transcript %+v (%v): %s", tro, err, b)
	}
	if fmt.Sprint(tro.Data) != fmt.Sprint(wantData) {
		t.Errorf("transcript data %v", tro.Data)
	}
	if len(seen) == 0 || seen[len(seen)-1] != 1 || !slices.IsSorted(seen) || !slices.Contains(seen, 0.45) {
		t.Errorf("progress %v", seen)
	}

	// One format, shorter lines, a label.
	env.OutDir = t.TempDir()
	outs, err = Captions().Run(context.Background(), env, in, json.RawMessage(
		`{"engine":"fake","formats":["srt"],"max_line_chars":12,"max_lines":1,"language":"fr","label":"Français"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || outs[0].Kind != "srt" || outs[1].Kind != "transcript" || outs[1].Data["label"] != "Français" {
		t.Fatalf("outputs %+v", outs)
	}
	f, _ := os.Open(filepath.Join(env.OutDir, "captions.srt"))
	cues, err := captions.ParseSRT(f)
	f.Close()
	if err != nil || len(cues) < 4 {
		t.Fatalf("cues %q: %v", cues, err)
	}
	for _, c := range cues {
		if len(c.Text) > 12 || strings.Contains(c.Text, "\n") {
			t.Errorf("cue %q is longer than one line of 12", c.Text)
		}
	}
}

// TestCaptionsErrors: what cannot work fails with a clear error, and only
// what retrying cannot fix is ErrBadInput.
func TestCaptionsErrors(t *testing.T) {
	in := capTestInput(t, true)
	ok := &capFakeEngine{name: "fake", tr: capTestTranscript()}
	run := func(eng speech.Engine, in Media, params string) error {
		env := capEnv(t, ok)
		if eng != nil {
			env.Speech[eng.Name()] = eng
		}
		_, err := Captions().Run(context.Background(), env, in, json.RawMessage(params))
		return err
	}

	noAudio := in
	noAudio.Audio = nil
	err := run(nil, noAudio, `{"engine":"fake"}`)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "the input has no audio: captions need speech") {
		t.Errorf("no audio: %v", err)
	}
	silent := capTestInput(t, false)
	if err := run(nil, silent, `{"engine":"fake"}`); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "no audio") {
		t.Errorf("input without audio: %v", err)
	}
	if err := run(&capFakeEngine{name: "noaudio", err: fmt.Errorf("x: %w", speech.ErrNoAudio)}, in, `{"engine":"noaudio"}`); !errors.Is(err, ErrBadInput) {
		t.Errorf("engine's ErrNoAudio: %v", err)
	}

	err = run(nil, in, `{"engine":"whisper"}`)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), `engine "whisper": unknown; the engines are: fake`) {
		t.Errorf("unknown engine: %v", err)
	}

	unavailable := &speech.HTTPError{URL: "http://asr.example/v1/audio/transcriptions", Status: 503, Body: "overloaded"}
	err = run(&capFakeEngine{name: "remote", err: fmt.Errorf("transcribe: %w", unavailable)}, in, `{"engine":"remote"}`)
	if err == nil || errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "503") {
		t.Errorf("HTTP 503: %v (want a retryable error naming 503)", err)
	}
	forbidden := &speech.HTTPError{URL: "http://asr.example/v1/audio/transcriptions", Status: 401, Body: "bad key"}
	err = run(&capFakeEngine{name: "remote", err: fmt.Errorf("transcribe: %w", forbidden)}, in, `{"engine":"remote"}`)
	if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("HTTP 401: %v (want ErrBadInput naming 401)", err)
	}
	tooMany := &speech.HTTPError{Status: 429}
	if err := run(&capFakeEngine{name: "remote", err: tooMany}, in, `{"engine":"remote"}`); errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "429") {
		t.Errorf("HTTP 429: %v", err)
	}
	if err := run(&capFakeEngine{name: "remote", err: errors.New("dial tcp: connection refused")}, in, `{"engine":"remote"}`); err == nil ||
		errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable: %v", err)
	}

	for params, want := range map[string]string{
		`{"engine":"fake","formats":["ass"]}`:        `formats[0] "ass"`,
		`{"engine":"fake","formats":["vtt","vtt"]}`:  "listed twice",
		`{"engine":"fake","max_line_chars":3}`:       "max_line_chars 3",
		`{"engine":"fake","max_lines":9}`:            "max_lines 9",
		`{"engine":"fake","max_cue_duration":100}`:   "max_cue_duration 100",
		`{"engine":"fake","language":"english!"}`:    `language "english!"`,
		`{"engine":"fake","label":"a\"b"}`:           "label",
		`{"engine":"fake","burn_in":"yes"}`:          "burn_in",
		`{"engine":"fake","font":"Arial"}`:           `unknown field "font"`,
		`{"engine":"fake","max_cue_duration":"6s"}`:  "max_cue_duration",
		`{"engine":"fake","formats":"vtt"}`:          "formats",
		`{"engine":"fake","attach":1}`:               "attach",
		`{"engine":" fake"}`:                         "engine",
		`{"engine":"fake","max_line_chars":-5}`:      "max_line_chars -5",
		`{"engine":"fake","max_cue_duration":-1}`:    "max_cue_duration -1",
		`{"engine":"fake","language":"en","x":null}`: `unknown field "x"`,
	} {
		err := run(nil, in, params)
		cerr := Captions().(ParamsChecker).CheckParams(json.RawMessage(params))
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), want) || cerr == nil {
			t.Errorf("%s: run %v, check %v; want ErrBadInput with %q", params, err, cerr, want)
		}
	}
	noVideo := in
	noVideo.Video = nil
	if err := run(nil, noVideo, `{"engine":"fake","burn_in":true}`); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "burn_in") {
		t.Errorf("burn_in without video: %v", err)
	}
	for name, params := range CaptionsPresets() {
		if err := Captions().(ParamsChecker).CheckParams(params); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
}

// capFrameCrop decodes the frame of path at second at, and returns the
// bottom quarter of it in gray levels.
func capFrameCrop(t *testing.T, path string, at float64) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-ss", fmt.Sprint(at), "-i", path, "-frames:v", "1",
		"-vf", "crop=iw:ih/4:0:ih*3/4", "-f", "rawvideo", "-pix_fmt", "gray", "-").Output()
	if err != nil || len(out) != 320*60 {
		t.Fatalf("decode %s at %gs: %d bytes: %v", path, at, len(out), err)
	}
	return out
}

// capDiffering counts the pixels of a and b that differ by more than a
// quarter of the range.
func capDiffering(a, b []byte) int {
	n := 0
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > 64 || d < -64 {
			n++
		}
	}
	return n
}

// TestCaptionsBurnIn burns the captions in: captioned.mp4 has the input's
// size and duration and audio, and its picture differs from the input's
// in the caption area while a cue shows, and not between cues.
func TestCaptionsBurnIn(t *testing.T) {
	in := capTestInput(t, true)
	env := capEnv(t, &capFakeEngine{name: "fake", tr: capTestTranscript()})
	// A folder name that needs escaping in a filtergraph.
	env.OutDir = filepath.Join(env.OutDir, "it's [a], b:c; d")
	if err := os.Mkdir(env.OutDir, 0o755); err != nil {
		t.Fatal(err)
	}
	outs, err := Captions().Run(context.Background(), env, in, json.RawMessage(`{"engine":"fake","burn_in":true}`))
	if err != nil {
		t.Fatal(err)
	}
	v := capOutput(t, outs, "video")
	path := filepath.Join(env.OutDir, v.Path)
	m, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	if v.Path != "captioned.mp4" || v.MIME != "video/mp4" || v.Width != 320 || v.Height != 240 ||
		m.Video == nil || m.Video.Codec != "h264" || m.Audio == nil || m.Audio.Codec != "aac" ||
		m.Duration < 5900*time.Millisecond || m.Duration > 6200*time.Millisecond {
		t.Errorf("captioned.mp4: %+v, probed %+v %+v %+v", v, m, m.Video, m.Audio)
	}
	during := capDiffering(capFrameCrop(t, path, 1.8), capFrameCrop(t, in.Path, 1.8))
	between := capDiffering(capFrameCrop(t, path, 0.4), capFrameCrop(t, in.Path, 0.4))
	t.Logf("pixels differing in the caption area: %d during a cue, %d before the first", during, between)
	if during < 200 || between > during/10 {
		t.Errorf("caption area: %d pixels differ during a cue, %d before the first", during, between)
	}
	for _, name := range []string{"captions.vtt", "captions.srt", "transcript.json", "captioned.mp4"} {
		if _, err := os.Stat(filepath.Join(env.OutDir, name)); err != nil {
			t.Error(err)
		}
	}
	entries, _ := os.ReadDir(env.OutDir)
	if len(entries) != 4 {
		t.Errorf("the output folder holds %d files", len(entries))
	}
}

var capSubsMedia = regexp.MustCompile(`(?m)^#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="subs-en.m3u8"$`)

// capCheckAttached checks that the adaptive output in dir plays the
// English subtitles in HLS and DASH.
func capCheckAttached(t *testing.T, dir string) {
	t.Helper()
	index, err := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if len(capSubsMedia.FindAll(index, -1)) != 1 || strings.Count(string(index), `SUBTITLES="subs"`) != strings.Count(string(index), "#EXT-X-STREAM-INF") {
		t.Errorf("index.m3u8:\n%s", index)
	}
	pl, err := os.ReadFile(filepath.Join(dir, "subs-en.m3u8"))
	if err != nil || !strings.Contains(string(pl), "\nsubs-en.vtt\n#EXT-X-ENDLIST\n") {
		t.Errorf("subs-en.m3u8 (%v):\n%s", err, pl)
	}
	f, err := os.Open(filepath.Join(dir, "subs-en.vtt"))
	if err != nil {
		t.Fatal(err)
	}
	cues, err := captions.ParseVTT(f)
	f.Close()
	if err != nil || len(cues) != 2 || cues[0].Start != time.Second {
		t.Errorf("subs-en.vtt: %q: %v", cues, err)
	}
	vtt, _ := os.ReadFile(filepath.Join(dir, "subs-en.vtt"))
	if !strings.HasPrefix(string(vtt), "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n") {
		t.Errorf("subs-en.vtt:\n%s", vtt)
	}
	mpd, err := os.ReadFile(filepath.Join(dir, "manifest.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Periods []struct {
			Sets []struct {
				ContentType string `xml:"contentType,attr"`
				MimeType    string `xml:"mimeType,attr"`
				Lang        string `xml:"lang,attr"`
				BaseURL     string `xml:"Representation>BaseURL"`
			} `xml:"AdaptationSet"`
		} `xml:"Period"`
	}
	if err := xml.Unmarshal(mpd, &doc); err != nil || len(doc.Periods) != 1 {
		t.Fatalf("manifest.mpd: %v\n%s", err, mpd)
	}
	text := 0
	for _, s := range doc.Periods[0].Sets {
		if s.ContentType == "text" {
			text++
			if s.MimeType != "text/vtt" || s.Lang != "en" || s.BaseURL != "subs-en.vtt" {
				t.Errorf("text set %+v", s)
			}
		}
	}
	if text != 1 {
		t.Errorf("%d text sets:\n%s", text, mpd)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", filepath.Join(dir, "index.m3u8")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "video") {
		t.Errorf("ffprobe index.m3u8: %v\n%s", err, out)
	}
}

// TestCaptionsAdaptiveBothOrders attaches the captions to the job's
// adaptive output whether the adaptive task runs before the captions
// task or after it, through the runners as the job engine calls them.
func TestCaptionsAdaptiveBothOrders(t *testing.T) {
	in := capTestInput(t, true)
	eng := &capFakeEngine{name: "fake", tr: capTestTranscript()}
	ladder := json.RawMessage(adpTestLadder)

	// adaptive, then captions.
	adEnv := capEnv(t, eng)
	adOuts, err := Adaptive().Run(context.Background(), adEnv, in, ladder)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := adOuts[0].Data["subtitles"]; ok {
		t.Errorf("subtitles without a captions task: %v", adOuts[0].Data)
	}
	capEnv1 := capEnv(t, eng)
	capEnv1.Previous = []PreviousTask{{Type: TaskAdaptive, Dir: adEnv.OutDir, Outputs: adOuts}}
	capOuts, err := Captions().Run(context.Background(), capEnv1, in, json.RawMessage(`{"engine":"fake"}`))
	if err != nil {
		t.Fatal(err)
	}
	if capOutput(t, capOuts, "vtt").Data["attached"] != TaskAdaptive {
		t.Errorf("vtt data %v", capOuts[0].Data)
	}
	capCheckAttached(t, adEnv.OutDir)
	// Again (a retried task): still one rendition.
	if _, err := Captions().Run(context.Background(), capEnv1, in, json.RawMessage(`{"engine":"fake"}`)); err != nil {
		t.Fatal(err)
	}
	capCheckAttached(t, adEnv.OutDir)

	// captions, then adaptive.
	capEnv2 := capEnv(t, eng)
	capOuts, err = Captions().Run(context.Background(), capEnv2, in, json.RawMessage(`{"engine":"fake"}`))
	if err != nil {
		t.Fatal(err)
	}
	adEnv2 := capEnv(t, eng)
	adEnv2.Previous = []PreviousTask{{Type: TaskCaptions, Dir: capEnv2.OutDir, Outputs: capOuts}}
	adOuts, err = Adaptive().Run(context.Background(), adEnv2, in, ladder)
	if err != nil {
		t.Fatal(err)
	}
	capCheckAttached(t, adEnv2.OutDir)
	if fmt.Sprint(adOuts[0].Data["subtitles"]) != "[en]" {
		t.Errorf("adaptive data %v", adOuts[0].Data)
	}
	for _, o := range adOuts {
		if st, err := os.Stat(filepath.Join(adEnv2.OutDir, o.Path)); err != nil || st.Size() != o.Size {
			t.Errorf("%s: size %d, output says %d (%v)", o.Path, st.Size(), o.Size, err)
		}
	}

	// attach false: neither order attaches.
	capEnv3 := capEnv(t, eng)
	capEnv3.Previous = []PreviousTask{{Type: TaskAdaptive, Dir: t.TempDir()}}
	capOuts, err = Captions().Run(context.Background(), capEnv3, in, json.RawMessage(`{"engine":"fake","attach":false}`))
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(capEnv3.Previous[0].Dir); len(entries) != 0 {
		t.Errorf("attach false wrote into the adaptive folder")
	}
	adEnv3 := capEnv(t, eng)
	adEnv3.Previous = []PreviousTask{{Type: TaskCaptions, Dir: capEnv3.OutDir, Outputs: capOuts}}
	outs, err := captionsAttachToAdaptive(adEnv3, []Output{{Kind: "playlist", Path: "index.m3u8", Data: map[string]any{}}})
	if err != nil || outs[0].Data["subtitles"] != nil {
		t.Errorf("attach false, then adaptive: %v %v", outs, err)
	}
}

// TestCaptionsPocketsphinx recognises flite speech over a test picture
// with the real pocketsphinx engine: the captions hold most of the words.
func TestCaptionsPocketsphinx(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	if _, err := os.Stat("/usr/share/pocketsphinx/model/en-us"); err != nil {
		t.Skip("no pocketsphinx-en-us model:", err)
	}
	const said = "The weather is nice today. Thank you very much for your help."
	path := filepath.Join(t.TempDir(), "speech.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15:duration=8",
		"-f", "lavfi", "-i", "flite=text='"+strings.ReplaceAll(said, ".", "\\.")+"':voice=slt",
		"-filter_complex", "[1:a]adelay=delays=1000:all=1,apad=whole_dur=8,aresample=48000[a]", "-map", "0:v", "-map", "[a]",
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-t", "8", "-y", path).CombinedOutput()
	if err != nil {
		t.Fatalf("make speech: %v\n%s", err, out)
	}
	in, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	env := capEnv(t, &speech.Pocketsphinx{})
	outs, err := Captions().Run(context.Background(), env, in, json.RawMessage(CaptionsPresets()["captions-en"]))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(env.OutDir, capOutput(t, outs, "vtt").Path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cues, err := captions.ParseVTT(f)
	if err != nil || len(cues) == 0 {
		t.Fatalf("cues %q: %v", cues, err)
	}
	var heard []string
	for _, c := range cues {
		t.Logf("%v --> %v %q", c.Start, c.End, c.Text)
		heard = append(heard, c.Text)
		if c.Start < 500*time.Millisecond || c.End > 8*time.Second {
			t.Errorf("cue %q at %v-%v: the speech is from 1 s to about 6 s", c.Text, c.Start, c.End)
		}
	}
	if wer := captions.WordErrorRate(said, strings.Join(heard, " ")); wer > 0.5 {
		t.Errorf("word error rate %.2f: heard %q", wer, heard)
	}
	if eng := capOutput(t, outs, "vtt").Data["engine"]; eng != "pocketsphinx" {
		t.Errorf("engine %v", eng)
	}
}
