package vod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/summary"
	"github.com/mps-dev/mps/test/testutil"
)

// summaryFakeEngine is a speech engine answering a canned transcript.
type summaryFakeEngine struct {
	name string
	tr   *speech.Transcript
	err  error

	mu    sync.Mutex
	paths []string
}

func (e *summaryFakeEngine) Name() string { return e.name }

func (e *summaryFakeEngine) Transcribe(ctx context.Context, path string, progress func(float64)) (*speech.Transcript, error) {
	e.mu.Lock()
	e.paths = append(e.paths, path)
	e.mu.Unlock()
	if progress != nil {
		progress(0.5)
		progress(1)
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.tr, nil
}

func (e *summaryFakeEngine) calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.paths)
}

func summarySec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// summaryTopics is a transcript of ten sentences about baking bread,
// then ten about a chess game, 8 s each.
func summaryTopics() *speech.Transcript {
	bread := []string{
		"Today we bake bread at home.",
		"Mix the flour with water and yeast to make the bread dough.",
		"Knead the dough for ten minutes until the dough is smooth.",
		"Let the bread dough rise in a warm place for an hour.",
		"Shape the dough into a round loaf of bread.",
		"Heat the oven and put a tray of water inside for steam.",
		"Bake the bread in the hot oven for forty minutes.",
		"The crust of the bread turns brown and crisp in the oven.",
		"Let the loaf cool before you cut the bread.",
		"Fresh bread with butter is the best reward for the baker.",
	}
	chess := []string{
		"Now let us look at the chess game from the tournament.",
		"White opened with the king pawn and black answered with the sicilian.",
		"Black castled early and moved the knight to the center of the board.",
		"White sacrificed a bishop to open the file against the black king.",
		"The black queen defended the king but lost a rook.",
		"White brought the second rook to the open file of the board.",
		"Black resigned the chess game after a quiet queen move.",
		"The chess players shook hands over the board.",
		"The winner of the chess game leads the tournament now.",
		"The next round of the chess tournament starts tomorrow.",
	}
	tr := &speech.Transcript{Engine: "fake", Language: "en", Duration: summarySec(160)}
	for i, s := range append(bread, chess...) {
		tr.Segments = append(tr.Segments, speech.Segment{Start: summarySec(float64(i) * 8), End: summarySec(float64(i)*8 + 7.5), Text: s})
	}
	return tr
}

// summaryRun is one run of the summary runner.
type summaryRun struct {
	outs     []Output
	err      error
	result   summary.Result
	progress []float64
}

func runSummaryTask(t *testing.T, env Env, in Media, params string) *summaryRun {
	t.Helper()
	r := &summaryRun{}
	var mu sync.Mutex
	env.OutDir = t.TempDir()
	env.Progress = func(f float64) {
		mu.Lock()
		r.progress = append(r.progress, f)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.outs, r.err = Summary().Run(ctx, env, in, json.RawMessage(params))
	if r.err != nil {
		return r
	}
	if len(r.outs) != 1 {
		t.Fatalf("outputs %+v, want one report", r.outs)
	}
	o := r.outs[0]
	if o.Kind != "report" || o.Path != SummaryReportFile || o.MIME != "application/json" {
		t.Errorf("output %+v", o)
	}
	b, err := os.ReadFile(filepath.Join(env.OutDir, o.Path))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != o.Size {
		t.Errorf("size %d, file has %d bytes", o.Size, len(b))
	}
	if err := json.Unmarshal(b, &r.result); err != nil {
		t.Fatalf("%s: %v\n%s", SummaryReportFile, err, b)
	}
	// Data carries the result's fields, and survives JSON (job events).
	if o.Data["summary"] != r.result.Summary || o.Data["method"] != r.result.Method {
		t.Errorf("data %+v, result %+v", o.Data, r.result)
	}
	if kw, _ := o.Data["keywords"].([]string); !slices.Equal(kw, r.result.Keywords) {
		t.Errorf("data keywords %v, result %v", o.Data["keywords"], r.result.Keywords)
	}
	if ch, _ := o.Data["chapters"].([]summary.Chapter); !slices.Equal(ch, r.result.Chapters) {
		t.Errorf("data chapters %v, result %v", o.Data["chapters"], r.result.Chapters)
	}
	db, err := json.Marshal(o.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.result.Chapters) > 0 && !strings.Contains(string(db), `"chapters":[{"start":0,`) {
		t.Errorf("data JSON %s: want chapters with start seconds", db)
	}
	if len(r.progress) == 0 || r.progress[len(r.progress)-1] != 1 {
		t.Errorf("progress %v: want it to end at 1", r.progress)
	}
	return r
}

func summaryInput() Media {
	return Media{Path: "/media/talk.mp4", Duration: summarySec(160), Format: "mov,mp4", Audio: &AudioStream{Codec: "aac", SampleRate: 48000, Channels: 2}}
}

func TestSummaryPresets(t *testing.T) {
	for name, params := range SummaryPresets() {
		if err := Summary().(ParamsChecker).CheckParams(params); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	for _, name := range []string{"summary-extractive", "summary-llm"} {
		if _, ok := SummaryPresets()[name]; !ok {
			t.Errorf("no preset %s", name)
		}
	}
	p, err := DecodeSummaryParams(SummaryPresets()["summary-llm"])
	if err != nil || p != (SummaryParams{Method: "llm", MaxSentences: 3, MaxKeywords: 10, MinChapter: 60, Engine: "pocketsphinx"}) {
		t.Errorf("summary-llm decodes to %+v, %v", p, err)
	}
}

func TestSummaryExtractiveTranscribes(t *testing.T) {
	eng := &summaryFakeEngine{name: "pocketsphinx", tr: summaryTopics()}
	other := &summaryFakeEngine{name: "whisper", tr: &speech.Transcript{}}
	env := Env{Speech: map[string]speech.Engine{"pocketsphinx": eng, "whisper": other}}
	r := runSummaryTask(t, env, summaryInput(), `{"method":"extractive","max_sentences":2,"max_keywords":5,"min_chapter":30}`)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := eng.calls(); len(got) != 1 || got[0] != "/media/talk.mp4" {
		t.Errorf("engine called with %v", got)
	}
	if len(other.calls()) != 0 {
		t.Error("the other engine was called")
	}
	res := r.result
	if res.Method != "extractive" || len(res.Sentences) != 2 || len(res.Keywords) != 5 {
		t.Errorf("result %+v", res)
	}
	for _, w := range []string{"bread", "chess"} {
		if !slices.Contains(res.Keywords, w) {
			t.Errorf("keywords %q lack %q", res.Keywords, w)
		}
	}
	if len(res.Chapters) != 2 || res.Chapters[0].Start != 0 || res.Chapters[1].Start < summarySec(64) || res.Chapters[1].Start > summarySec(96) {
		t.Errorf("chapters %+v: want 0 and near 80s", res.Chapters)
	}
	if r.outs[0].Data["source"] != "pocketsphinx" {
		t.Errorf("source %v", r.outs[0].Data["source"])
	}

	// Another engine by name.
	r = runSummaryTask(t, env, summaryInput(), `{"engine":"whisper"}`)
	if r.err != nil || len(other.calls()) != 1 || r.result.Summary != "" {
		t.Errorf("engine whisper: %+v %v", r.result, r.err)
	}
}

// writePreviousTranscript writes tr as a captions task's transcript.
func writePreviousTranscript(t *testing.T, tr *speech.Transcript) PreviousTask {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "transcript.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return PreviousTask{Type: TaskCaptions, Dir: dir, Outputs: []Output{
		{Kind: "vtt", Path: "captions.vtt"},
		{Kind: "transcript", Path: "sub/transcript.json"},
	}}
}

func TestSummaryUsesPreviousCaptions(t *testing.T) {
	old := writePreviousTranscript(t, &speech.Transcript{Segments: []speech.Segment{{End: time.Second, Text: "an older transcript about gardening"}}})
	latest := writePreviousTranscript(t, summaryTopics())
	eng := &summaryFakeEngine{name: "pocketsphinx", err: errors.New("must not be called")}
	env := Env{
		Speech: map[string]speech.Engine{"pocketsphinx": eng},
		Previous: []PreviousTask{
			old,
			{Type: TaskTranscode, Dir: t.TempDir(), Outputs: []Output{{Kind: "video", Path: "out.mp4"}}},
			latest,
			{Type: TaskSnapshot, Dir: t.TempDir(), Outputs: []Output{{Kind: "transcript", Path: "nope.json"}}},
		},
	}
	// An input without audio is fine: nothing needs transcribing.
	in := summaryInput()
	in.Audio = nil
	r := runSummaryTask(t, env, in, string(SummaryPresets()["summary-extractive"]))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(eng.calls()) != 0 {
		t.Error("the engine was called despite the captions transcript")
	}
	if !slices.Contains(r.result.Keywords, "bread") || strings.Contains(r.result.Summary, "gardening") {
		t.Errorf("result %+v: not from the latest captions transcript", r.result)
	}
	if r.outs[0].Data["source"] != TaskCaptions {
		t.Errorf("source %v", r.outs[0].Data["source"])
	}
	// The whole transcript is in the summary's sentences' times.
	for _, s := range r.result.Sentences {
		if s.End > summarySec(160) || s.End <= s.Start {
			t.Errorf("sentence %+v", s)
		}
	}

	// A missing transcript file is an error.
	broken := latest
	broken.Dir = t.TempDir()
	env.Previous = []PreviousTask{broken}
	if r := runSummaryTask(t, env, summaryInput(), `{}`); r.err == nil || !strings.Contains(r.err.Error(), "transcript") {
		t.Errorf("missing transcript file: %v", r.err)
	}
}

// summaryChatServer answers chat completions with content and records
// the user messages.
func summaryChatServer(t *testing.T, status int, content string) (*httptest.Server, *[]string) {
	t.Helper()
	var mu sync.Mutex
	var users []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer k" {
			t.Errorf("request %s auth %q", r.URL.Path, r.Header.Get("Authorization"))
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct{ Role, Content string }
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "m1" || len(req.Messages) != 2 {
			t.Errorf("request %+v: %v", req, err)
		} else {
			mu.Lock()
			users = append(users, req.Messages[1].Content)
			mu.Unlock()
		}
		w.WriteHeader(status)
		if status != http.StatusOK {
			io.WriteString(w, "busy")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]any{"content": content}}}})
	}))
	t.Cleanup(srv.Close)
	return srv, &users
}

func TestSummaryLLM(t *testing.T) {
	answer := "```json\n" + `{"summary":"How to bake bread, then a chess game.","keywords":["bread","chess","baking"],` +
		`"chapters":[{"start":0,"title":"Baking bread"},{"start":80,"title":"A chess game"}]}` + "\n```"
	srv, users := summaryChatServer(t, http.StatusOK, answer)
	env := Env{
		Speech: map[string]speech.Engine{"pocketsphinx": &summaryFakeEngine{name: "pocketsphinx", tr: summaryTopics()}},
		Chat:   &summary.Chat{URL: srv.URL + "/v1/chat/completions", APIKey: "k", Model: "m1"},
	}
	r := runSummaryTask(t, env, summaryInput(), `{"method":"llm","max_keywords":2}`)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := summary.Result{Method: "llm", Summary: "How to bake bread, then a chess game.", Keywords: []string{"bread", "chess"},
		Chapters: []summary.Chapter{{Start: 0, Title: "Baking bread"}, {Start: 80 * time.Second, Title: "A chess game"}}, Model: "m1"}
	got := r.result
	if got.Method != want.Method || got.Summary != want.Summary || !slices.Equal(got.Keywords, want.Keywords) ||
		!slices.Equal(got.Chapters, want.Chapters) || got.Model != want.Model {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if r.outs[0].Data["model"] != "m1" {
		t.Errorf("data %+v", r.outs[0].Data)
	}
	if len(*users) != 1 || !strings.Contains((*users)[0], "[01:20] Now let us look at the chess game") {
		t.Errorf("user messages %q: want the transcript with times", *users)
	}

	// A failing endpoint fails the task (retryable: not bad input).
	srv503, _ := summaryChatServer(t, http.StatusServiceUnavailable, "")
	env.Chat = &summary.Chat{URL: srv503.URL + "/v1/chat/completions", APIKey: "k", Model: "m1"}
	r = runSummaryTask(t, env, summaryInput(), `{"method":"llm"}`)
	var he *speech.HTTPError
	if r.err == nil || errors.Is(r.err, ErrBadInput) || !errors.As(r.err, &he) || !strings.Contains(r.err.Error(), "503") {
		t.Errorf("503: got %v", r.err)
	}
}

func TestSummaryBadInput(t *testing.T) {
	eng := &summaryFakeEngine{name: "pocketsphinx", tr: summaryTopics()}
	speechOnly := map[string]speech.Engine{"pocketsphinx": eng, "whisper-local": eng}
	noAudio := summaryInput()
	noAudio.Audio = nil
	for _, tc := range []struct {
		name   string
		env    Env
		in     Media
		params string
		want   []string
	}{
		{"unknown field", Env{Speech: speechOnly}, summaryInput(), `{"sentences":3}`, []string{"sentences"}},
		{"wrong type", Env{Speech: speechOnly}, summaryInput(), `{"max_keywords":"ten"}`, []string{"max_keywords"}},
		{"method", Env{Speech: speechOnly}, summaryInput(), `{"method":"abstractive"}`, []string{"method", "extractive or llm"}},
		{"max_sentences", Env{Speech: speechOnly}, summaryInput(), `{"max_sentences":51}`, []string{"max_sentences", "1..50"}},
		{"max_keywords", Env{Speech: speechOnly}, summaryInput(), `{"max_keywords":-1}`, []string{"max_keywords"}},
		{"min_chapter", Env{Speech: speechOnly}, summaryInput(), `{"min_chapter":-5}`, []string{"min_chapter"}},
		{"llm without chat", Env{Speech: speechOnly}, summaryInput(), `{"method":"llm"}`, []string{"no chat endpoint configured (ai.chat.url in the config)"}},
		{"unknown engine", Env{Speech: speechOnly}, summaryInput(), `{"engine":"vosk"}`, []string{`"vosk"`, "pocketsphinx, whisper-local"}},
		{"no engines", Env{}, summaryInput(), `{}`, []string{"no speech engine"}},
		{"no audio", Env{Speech: speechOnly}, noAudio, `{}`, []string{"no audio stream"}},
		{"engine finds no audio", Env{Speech: map[string]speech.Engine{"pocketsphinx": &summaryFakeEngine{
			name: "pocketsphinx", err: fmt.Errorf("pocketsphinx: %w", speech.ErrNoAudio)}}}, summaryInput(), `{}`, []string{"no audio stream"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSummaryTask(t, tc.env, tc.in, tc.params)
			if !errors.Is(r.err, ErrBadInput) {
				t.Fatalf("got %v, want ErrBadInput", r.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %q lacks %q", r.err, w)
				}
			}
		})
	}
	if len(eng.calls()) != 0 {
		t.Errorf("the engine ran for bad input: %v", eng.calls())
	}
	if err := Summary().(ParamsChecker).CheckParams(json.RawMessage(`{"method":"x"}`)); !errors.Is(err, ErrBadInput) {
		t.Errorf("CheckParams: %v", err)
	}
}

func TestSummaryEngineFailure(t *testing.T) {
	eng := &summaryFakeEngine{name: "pocketsphinx", err: &speech.HTTPError{URL: "http://x", Status: 502, Body: "bad gateway"}}
	r := runSummaryTask(t, Env{Speech: map[string]speech.Engine{"pocketsphinx": eng}}, summaryInput(), `{}`)
	if r.err == nil || errors.Is(r.err, ErrBadInput) || !strings.Contains(r.err.Error(), "502") {
		t.Errorf("got %v, want a retryable error with 502", r.err)
	}
}

// TestSummaryPocketsphinx transcribes a clip of flite speech with the
// real pocketsphinx engine and sums it up.
func TestSummaryPocketsphinx(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	if _, err := os.Stat("/usr/share/pocketsphinx/model/en-us"); err != nil {
		t.Skip("no pocketsphinx-en-us model")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "talk.mp4")
	graph := "flite=text='The weather is nice today':voice=slt,aresample=16000,adelay=delays=1000:all=1[s0];" +
		"flite=text='I would like a cup of coffee':voice=slt,aresample=16000,adelay=delays=6000:all=1[s1];" +
		"[s0][s1]amix=inputs=2:normalize=0:duration=longest,apad=whole_dur=10,aformat=channel_layouts=stereo:sample_rates=48000[a]"
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10:d=10",
		"-filter_complex", graph, "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-t", "10", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v\n%s", err, out)
	}
	in, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	env := Env{Speech: map[string]speech.Engine{"pocketsphinx": &speech.Pocketsphinx{}}}
	r := runSummaryTask(t, env, in, `{"min_chapter":5}`)
	if r.err != nil {
		t.Fatal(r.err)
	}
	found := 0
	for _, w := range []string{"weather", "nice", "coffee", "cup"} {
		if slices.Contains(r.result.Keywords, w) {
			found++
		}
	}
	if found < 2 || r.result.Summary == "" {
		t.Errorf("summary %q keywords %q: want the spoken words", r.result.Summary, r.result.Keywords)
	}
}
