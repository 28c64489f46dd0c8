package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mps-dev/mps/captions"
)

// threeSentences are spoken at threeAt seconds in the captions test.
var (
	threeSentences = []string{"The weather is nice today.", "Thank you very much for your help.", "The children are playing in the park."}
	threeAt        = []float64{1, 7, 13}
)

// fakeTranscriptionServer is an OpenAI-compatible transcription endpoint
// that answers a canned transcript; no real model runs in the tests. It
// counts the requests that had the multipart fields MPS must send.
func fakeTranscriptionServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var good atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || r.URL.Path != "/v1/audio/transcriptions" || r.Header.Get("Authorization") != "Bearer k3y" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		fields := map[string]string{}
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			if p.FormName() == "file" {
				fields["file"] = string(b[:min(4, len(b))])
			} else {
				fields[p.FormName()] = string(b)
			}
		}
		if fields["file"] != "RIFF" || fields["model"] != "base.en" || fields["response_format"] != "verbose_json" {
			http.Error(w, fmt.Sprintf("missing fields: %v", fields), http.StatusBadRequest)
			return
		}
		good.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"text":"Hello from the fake model. Second phrase here.","language":"english","duration":12.0,
"segments":[{"start":2.0,"end":3.5,"text":" Hello from the fake model."},{"start":7.0,"end":8.5,"text":" Second phrase here."}]}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &good
}

// TestAIJobs runs the media AI tasks as a user would, through the job
// API: captions (pocketsphinx) attached to an adaptive output that hls.js
// plays with the subtitles showing, a summary of the transcript, QC and
// highlights reports, captions from an OpenAI-compatible endpoint, and the
// bad inputs' errors.
func TestAIJobs(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeSpeechMP4(t, filepath.Join(env.Media, "talk.mp4"))
	makeSpeech(t, filepath.Join(env.Media, "three.mp4"), threeSentences, threeAt, 20)
	makeClip(t, filepath.Join(env.Media, "silent.mp4"), clipOptions{Dur: 3, NoAudio: true})
	fake, fakeHits := fakeTranscriptionServer(t)
	s := startServer(t, serverOptions{Config: env.config("") + `
ai:
  speech_engines:
    - {name: fake, url: "` + fake.URL + `/v1/audio/transcriptions", api_key: k3y, model: base.en, timeout: 20s}
    - {name: down, url: "http://127.0.0.1:9/v1/audio/transcriptions", timeout: 5s}
    - {name: wrong, url: "` + fake.URL + `/v2/nothing", api_key: k3y, timeout: 5s}
`})
	const jobTimeout = 3 * time.Minute

	three := s.mustSubmit(t, jobSpec{Input: pathInput("three.mp4"), Tasks: []jobTask{{Type: "captions", Template: "captions-en"}}})
	talk := s.mustSubmit(t, jobSpec{Input: pathInput("talk.mp4"), Tasks: []jobTask{
		{Type: "adaptive", Template: "adaptive-default"},
		{Type: "captions", Template: "captions-en"},
		{Type: "summary", Template: "summary-extractive"},
	}})
	checks := s.mustSubmit(t, jobSpec{Input: pathInput("talk.mp4"), Tasks: []jobTask{
		{Type: "qc", Template: "qc-default"},
		{Type: "highlights", Template: "highlights-default"},
	}})
	remote := s.mustSubmit(t, jobSpec{Input: pathInput("talk.mp4"), Tasks: []jobTask{
		{Type: "captions", Template: "captions-en", Params: map[string]any{"engine": "fake", "attach": false}},
	}})
	noAudio := s.mustSubmit(t, jobSpec{Input: pathInput("silent.mp4"), Tasks: []jobTask{{Type: "captions", Template: "captions-en"}}})
	down := s.mustSubmit(t, jobSpec{Input: pathInput("talk.mp4"), Tasks: []jobTask{
		{Type: "captions", Template: "captions-en", Params: map[string]any{"engine": "down"}},
	}})
	wrong := s.mustSubmit(t, jobSpec{Input: pathInput("talk.mp4"), Tasks: []jobTask{
		{Type: "captions", Template: "captions-en", Params: map[string]any{"engine": "wrong"}},
	}})

	t.Run("three sentences", func(t *testing.T) {
		j := waitJobSucceeded(t, s, three.ID, jobTimeout)
		vtt, err := captions.ParseVTT(strings.NewReader(string(s.fetchOutput(t, j.output(t, 0, "vtt")))))
		if err != nil {
			t.Fatalf("VTT does not parse: %v", err)
		}
		srt, err := captions.ParseSRT(strings.NewReader(string(s.fetchOutput(t, j.output(t, 0, "srt")))))
		if err != nil || len(srt) != len(vtt) {
			t.Fatalf("SRT: %v, %d cues for %d in the VTT", err, len(srt), len(vtt))
		}
		var heard []string
		for _, c := range vtt {
			heard = append(heard, strings.ReplaceAll(c.Text, "\n", " "))
		}
		wer := captions.WordErrorRate(strings.Join(threeSentences, " "), strings.Join(heard, " "))
		t.Logf("cues %+v; word error rate %.1f%%", vtt, 100*wer)
		if wer > 0.15 {
			t.Errorf("word error rate %.1f%%, want at most 15%%", 100*wer)
		}
		// Each sentence's first cue starts within 1 s of when it was spoken.
		for i, at := range threeAt {
			var first *captions.Cue
			for k := range vtt {
				c := &vtt[k]
				if c.Start >= time.Duration((at-1)*float64(time.Second)) && (i+1 == len(threeAt) || c.Start < time.Duration(threeAt[i+1]*float64(time.Second))-time.Second) {
					first = c
					break
				}
			}
			if first == nil {
				t.Errorf("no cue for sentence %d (spoken at %.0f s)", i+1, at)
				continue
			}
			if d := first.Start.Seconds() - at; d < -1 || d > 1 {
				t.Errorf("sentence %d spoken at %.0f s: its cue starts at %.2f s", i+1, at, first.Start.Seconds())
			}
		}
	})

	t.Run("captions and summary", func(t *testing.T) {
		j := waitJobSucceeded(t, s, talk.ID, jobTimeout)
		vtt := string(s.fetchOutput(t, j.output(t, 1, "vtt")))
		srt := string(s.fetchOutput(t, j.output(t, 1, "srt")))
		if !strings.HasPrefix(vtt, "WEBVTT") || !strings.Contains(vtt, " --> ") || !strings.Contains(srt, " --> ") {
			t.Fatalf("captions files:\n%s\n%s", vtt, srt)
		}
		low := strings.ToLower(vtt)
		if !strings.Contains(low, "weather") || !strings.Contains(low, "door") {
			t.Errorf("the captions miss the spoken words:\n%s", vtt)
		}
		var tr struct {
			Segments []struct {
				Start float64 `json:"start"`
				Text  string  `json:"text"`
			} `json:"segments"`
		}
		if err := json.Unmarshal(s.fetchOutput(t, j.output(t, 1, "transcript")), &tr); err != nil || len(tr.Segments) < 2 {
			t.Fatalf("transcript: %v %+v", err, tr)
		}
		if d := tr.Segments[0].Start - 2.25; d < -1 || d > 1 {
			t.Errorf("first phrase starts at %.2f s, spoken at 2.25 s", tr.Segments[0].Start)
		}
		// The adaptive output offers the captions as a subtitles rendition.
		pl := j.output(t, 0, "playlist")
		master := string(s.fetchOutput(t, pl))
		if !strings.Contains(master, "TYPE=SUBTITLES") || !strings.Contains(master, `SUBTITLES="subs"`) {
			t.Fatalf("adaptive playlist without subtitles:\n%s", master)
		}
		mpd := string(s.fetchOutput(t, j.output(t, 0, "manifest")))
		if !strings.Contains(mpd, `mimeType="text/vtt"`) {
			t.Errorf("MPD without a text AdaptationSet:\n%s", mpd)
		}
		t.Run("hls.js shows the captions", func(t *testing.T) {
			dir := browserDir(t)
			res := runPlayerWith(t, context.Background(), dir, "hls", s.outputURL(pl), 3, 45, nil,
				playerOptions{Args: []string{"--subtitles"}, Width: 640, Height: 360})
			if len(res.ActiveCues) == 0 || !strings.Contains(strings.ToLower(res.ActiveCues[0].Text), "weather") {
				t.Errorf("hls.js active cues %+v, want the first sentence", res.ActiveCues)
			}
		})
		sum := j.output(t, 2, "report")
		kw, _ := sum.Data["keywords"].([]any)
		if sum.Data["method"] != "extractive" || len(kw) == 0 || sum.Data["summary"] == "" {
			t.Errorf("summary data %v", sum.Data)
		}
	})

	t.Run("qc and highlights", func(t *testing.T) {
		j := waitJobSucceeded(t, s, checks.ID, jobTimeout)
		qc := j.output(t, 0, "report")
		if _, ok := qc.Data["passed"]; !ok {
			t.Errorf("qc data %v", qc.Data)
		}
		var report struct {
			Issues []struct {
				Type string `json:"type"`
			} `json:"issues"`
			Loudness struct {
				Integrated float64 `json:"integrated"`
			} `json:"loudness"`
		}
		if err := json.Unmarshal(s.fetchOutput(t, qc), &report); err != nil || report.Loudness.Integrated == 0 {
			t.Fatalf("qc.json: %v %+v", err, report)
		}
		hl := j.output(t, 1, "report")
		if _, ok := hl.Data["highlights"]; !ok {
			t.Errorf("highlights data %v", hl.Data)
		}
		t.Logf("qc issues %+v; highlights %v", report.Issues, hl.Data["highlights"])
	})

	t.Run("openai-compatible engine", func(t *testing.T) {
		j := waitJobSucceeded(t, s, remote.ID, jobTimeout)
		vtt := string(s.fetchOutput(t, j.output(t, 0, "vtt")))
		if !strings.Contains(vtt, "Hello from the fake model.") || !strings.Contains(vtt, "00:00:02.000 --> 00:00:03.500") {
			t.Errorf("VTT from the endpoint's answer:\n%s", vtt)
		}
		if fakeHits.Load() == 0 {
			t.Error("the endpoint got no well-formed request")
		}
	})

	t.Run("bad inputs", func(t *testing.T) {
		j := waitJobFinished(t, s, noAudio.ID, jobTimeout)
		if j.State != "failed" || j.Attempts != 1 || !strings.Contains(j.Error, "no audio") {
			t.Errorf("captions of a file without audio: %v", j)
		}
		j = waitJobFinished(t, s, down.ID, jobTimeout)
		if j.State == "succeeded" || !strings.Contains(j.Tasks[0].Error, "127.0.0.1:9") {
			t.Errorf("an unreachable endpoint: %v", j)
		}
		// A wrong endpoint answers 400 (the fake server's answer to any
		// other path): the task fails at once with the status.
		j = waitJobFinished(t, s, wrong.ID, jobTimeout)
		if j.State != "failed" || j.Attempts != 1 || !strings.Contains(j.Tasks[0].Error, "400") {
			t.Errorf("a wrong endpoint: %v", j)
		}
	})
}
