package summary

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mps-dev/mps/speech"
)

// chatServer answers chat completions with content, after checking the
// request; it counts the requests.
func chatServer(t *testing.T, status int, content string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer sekret" {
			t.Errorf("Authorization %q", got)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Role, Content string
			} `json:"messages"`
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("request body %s: %v", body, err)
		}
		if req.Model != "test-model" {
			t.Errorf("model %q", req.Model)
		}
		if len(req.Messages) != 2 || req.Messages[0].Role != "system" || req.Messages[1].Role != "user" {
			t.Fatalf("messages %+v", req.Messages)
		}
		if !strings.Contains(req.Messages[0].Content, `"summary"`) || !strings.Contains(req.Messages[0].Content, "JSON") {
			t.Errorf("system message does not ask for JSON: %q", req.Messages[0].Content)
		}
		user := req.Messages[1].Content
		for _, want := range []string{
			"[00:00] " + pastaSentences[0] + " " + pastaSentences[1],
			"[01:20] " + footballSentences[0] + " " + footballSentences[1],
			"[02:24] ",
		} {
			if !strings.Contains(user, want) {
				t.Errorf("user message lacks %q:\n%s", want, user)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status != http.StatusOK {
			io.WriteString(w, `{"error":{"message":"model overloaded"}}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": "x", "object": "chat.completion", "model": "test-model-2024",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": content}}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func testChat(url string) *Chat {
	return &Chat{URL: url + "/v1/chat/completions", APIKey: "sekret", Model: "test-model", Timeout: 30 * time.Second}
}

func TestChatJSONAnswer(t *testing.T) {
	content := "Here you are:\n```json\n" + `{"summary": "Pasta, then football.", "keywords": ["pasta", "football"],
 "chapters": [{"start": 80, "title": "Football"}, {"start": 0, "title": "Cooking pasta"}]}` + "\n```"
	srv, calls := chatServer(t, http.StatusOK, content)
	res, err := testChat(srv.URL).Summarize(context.Background(), twoTopics())
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests", calls.Load())
	}
	want := Result{Method: MethodLLM, Summary: "Pasta, then football.", Keywords: []string{"pasta", "football"},
		Chapters: []Chapter{{Start: 0, Title: "Cooking pasta"}, {Start: sec(80), Title: "Football"}}, Model: "test-model-2024"}
	if res.Method != want.Method || res.Summary != want.Summary || !slices.Equal(res.Keywords, want.Keywords) ||
		!slices.Equal(res.Chapters, want.Chapters) || res.Model != want.Model {
		t.Errorf("got %+v\nwant %+v", res, want)
	}
}

func TestChatTextAnswer(t *testing.T) {
	srv, _ := chatServer(t, http.StatusOK, "  The video shows how to cook pasta and then talks about football.  ")
	res, err := testChat(srv.URL).Summarize(context.Background(), twoTopics())
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary != "The video shows how to cook pasta and then talks about football." {
		t.Errorf("summary %q", res.Summary)
	}
	// Keywords and chapters come from Extractive.
	ex := Extractive(twoTopics(), Options{})
	if !slices.Equal(res.Keywords, ex.Keywords) || !slices.Equal(res.Chapters, ex.Chapters) || len(res.Chapters) == 0 {
		t.Errorf("keywords %q chapters %+v, want Extractive's %q %+v", res.Keywords, res.Chapters, ex.Keywords, ex.Chapters)
	}
	if res.Method != MethodLLM {
		t.Errorf("method %q", res.Method)
	}
}

func TestChatHTTPError(t *testing.T) {
	srv, _ := chatServer(t, http.StatusInternalServerError, "")
	_, err := testChat(srv.URL).Summarize(context.Background(), twoTopics())
	var he *speech.HTTPError
	if !errors.As(err, &he) || he.Status != 500 {
		t.Fatalf("got %v, want a *speech.HTTPError with 500", err)
	}
	if !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "model overloaded") {
		t.Errorf("error %q: want the status and the body", err)
	}
}

func TestChatUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := testChat(url).Summarize(context.Background(), twoTopics())
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("got %v, want unreachable", err)
	}
}

func TestChatTimeout(t *testing.T) {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer srv.Close()
	defer close(done)
	c := testChat(srv.URL)
	c.Timeout = 200 * time.Millisecond
	_, err := c.Summarize(context.Background(), twoTopics())
	if err == nil || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("got %v, want a timeout", err)
	}
	// A canceled context ends the request too.
	c.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if _, err := c.Summarize(ctx, twoTopics()); err == nil {
		t.Error("canceled: no error")
	}
}

func TestChatBadAnswers(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"not json":   func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") },
		"no choices": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"choices":[]}`) },
		"empty": func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"choices":[{"message":{"content":" "}}]}`)
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			if _, err := testChat(srv.URL).Summarize(context.Background(), twoTopics()); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestChatEmptyTranscriptNoRequest(t *testing.T) {
	srv, calls := chatServer(t, http.StatusOK, "x")
	res, err := testChat(srv.URL).Summarize(context.Background(), &speech.Transcript{Segments: []speech.Segment{{Text: " "}}})
	if err != nil || res.Summary != "" || calls.Load() != 0 {
		t.Errorf("got %+v %v after %d requests", res, err, calls.Load())
	}
	if _, err := (&Chat{}).Summarize(context.Background(), twoTopics()); err == nil {
		t.Error("no URL: no error")
	}
}

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		in       string
		ok       bool
		summary  string
		keywords []string
		chapters []Chapter
	}{
		{`{"summary":"S","keywords":["a","b","A"],"chapters":[{"start":0,"title":"x"}]}`, true, "S", []string{"a", "b"}, []Chapter{{0, "x"}}},
		{"```\n{\"summary\":\"S\"}\n```", true, "S", []string{}, []Chapter{}},
		{"Sure! {\"Summary\": [\"One.\", \"Two.\"], \"keywords\": \"x, y\"} Hope it helps.", true, "One. Two.", []string{"x", "y"}, []Chapter{}},
		{`{"summary":"S","chapters":[{"start":"01:30","title":"b"},{"time":"0:00","name":"a"},{"start":-5,"title":"bad"},{"start":3,"title":""}]}`,
			true, "S", []string{}, []Chapter{{0, "a"}, {sec(90), "b"}}},
		{`{"summary":"S","chapters":[{"start":"1:00:00","title":"h"},{"start":"12.5s","title":"f"}]}`, true, "S", []string{}, []Chapter{{sec(12.5), "f"}, {time.Hour, "h"}}},
		{`{"summary":""}`, false, "", nil, nil},
		{`{"text":"S"}`, false, "", nil, nil},
		{`just words`, false, "", nil, nil},
		{`{"summary": "broken`, false, "", nil, nil},
	} {
		a, ok := parseAnswer(tc.in)
		if ok != tc.ok {
			t.Errorf("parseAnswer(%q) ok = %v", tc.in, ok)
			continue
		}
		if !ok {
			continue
		}
		if a.summary != tc.summary || !slices.Equal(a.keywords, tc.keywords) || !slices.Equal(a.chapters, tc.chapters) {
			t.Errorf("parseAnswer(%q) = %+v, want %q %q %+v", tc.in, a, tc.summary, tc.keywords, tc.chapters)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	f.Add(`{"summary":"S","keywords":["a"],"chapters":[{"start":0,"title":"x"}]}`)
	f.Add("```json\n{\"summary\":\"S\",\"chapters\":[{\"start\":\"1:02:03\",\"title\":\"t\"}]}\n```")
	f.Add("text {\"summary\": [\"a\"], \"keywords\": \"b, c\"} more")
	f.Add("```\nnot json\n```")
	f.Add(`{"summary":"S","chapters":[{"start":1e300,"title":"x"},{"start":"::","title":"y"}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		a, ok := parseAnswer(in)
		if !ok {
			return
		}
		if strings.TrimSpace(a.summary) == "" || a.summary != strings.TrimSpace(a.summary) {
			t.Fatalf("summary %q", a.summary)
		}
		for i, c := range a.chapters {
			if c.Start < 0 || c.Title == "" || i > 0 && c.Start <= a.chapters[i-1].Start {
				t.Fatalf("chapters %+v", a.chapters)
			}
		}
		for _, k := range a.keywords {
			if k == "" {
				t.Fatalf("empty keyword in %q", a.keywords)
			}
		}
		// The chapters marshal to JSON and back.
		b, err := json.Marshal(a.chapters)
		if err != nil {
			t.Fatal(err)
		}
		var back []Chapter
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	})
}
