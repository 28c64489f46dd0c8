package admission

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/test/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/web/admission."))
}

var cam1 = Request{
	Stream:     "live/cam1",
	App:        "live",
	Protocol:   "rtmp",
	RemoteAddr: "203.0.113.7:50412",
	Params:     map[string][]string{"ladder": {"x"}},
}

// hook serves one fixed answer and records the requests it got.
type hook struct {
	srv    *httptest.Server
	status int
	body   string
	got    chan *http.Request
	bodies chan []byte
}

func newHook(t *testing.T, status int, body string) *hook {
	t.Helper()
	h := &hook{status: status, body: body, got: make(chan *http.Request, 10), bodies: make(chan []byte, 10)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.got <- r
		h.bodies <- b
		w.WriteHeader(h.status)
		_, _ = io.WriteString(w, h.body)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) client() *Client { return &Client{URL: h.srv.URL + "/publish", HTTP: h.srv.Client()} }

func TestRequestShape(t *testing.T) {
	h := newHook(t, http.StatusOK, "")
	if _, err := h.client().Check(context.Background(), cam1); err != nil {
		t.Fatal(err)
	}
	r, b := <-h.got, <-h.bodies
	if r.Method != http.MethodPost || r.URL.Path != "/publish" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"stream": "live/cam1", "app": "live", "protocol": "rtmp", "remote_addr": "203.0.113.7:50412",
		"params": map[string]any{"ladder": []any{"x"}}}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("body %s", b)
	}

	// No params are sent as {}, not null.
	if _, err := h.client().Check(context.Background(), Request{Stream: "live/x"}); err != nil {
		t.Fatal(err)
	}
	<-h.got
	if b := <-h.bodies; !strings.Contains(string(b), `"params":{}`) {
		t.Errorf("body %s", b)
	}
}

func TestAnswers(t *testing.T) {
	big := strings.Repeat(" ", MaxAnswerSize) + `{"ladder": "hd"}`
	cases := []struct {
		name    string
		status  int
		body    string
		ladder  string
		refused string // the reason, when refused
		err     string // any other error
	}{
		{name: "empty", status: 200},
		{name: "no content", status: 204},
		{name: "whitespace", status: 200, body: " \n"},
		{name: "ladder", status: 200, body: `{"ladder": "hd"}`, ladder: "hd"},
		{name: "empty ladder", status: 200, body: `{"ladder": ""}`},
		{name: "other fields", status: 201, body: `{"ok": true, "ladder": "sd", "extra": [1]}`, ladder: "sd"},
		{name: "null", status: 200, body: `null`},
		{name: "refused with reason", status: 403, body: `{"reason": "camera is banned"}`, refused: "camera is banned"},
		{name: "refused with text", status: 401, body: "bad token\n", refused: "bad token"},
		{name: "refused silently", status: 403, refused: "status 403 Forbidden"},
		{name: "refused with other JSON", status: 403, body: `{"error": "x"}`, refused: "status 403 Forbidden"},
		{name: "refused with control characters", status: 403, body: "line1\nline2\x1b[31m", refused: "line1 line2 [31m"},
		{name: "refused at length", status: 403, body: strings.Repeat("é", 400), refused: strings.Repeat("é", 250) + "..."},
		{name: "server error", status: 500, body: "database down", err: "admission webhook answered 500 Internal Server Error: database down"},
		{name: "not found", status: 404, err: "admission webhook answered 404 Not Found"},
		{name: "redirect", status: 302, err: "answered 302"},
		{name: "bad JSON", status: 200, body: `{"ladder": `, err: "is not a JSON object"},
		{name: "wrong type", status: 200, body: `{"ladder": 5}`, err: "is not a JSON object"},
		{name: "list", status: 200, body: `["hd"]`, err: "is not a JSON object"},
		{name: "too large", status: 200, body: big, err: "answer larger than 65536 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHook(t, c.status, c.body)
			d, err := h.client().Check(context.Background(), cam1)
			switch {
			case c.refused != "":
				if !errors.Is(err, ErrRefused) || !errors.Is(err, auth.ErrAdmissionRefused) {
					t.Fatalf("err = %v, want a refusal", err)
				}
				if want := "refused by admission: " + c.refused; err.Error() != want {
					t.Errorf("err = %q, want %q", err, want)
				}
			case c.err != "":
				if err == nil || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want an error with %q that is not a refusal", err, c.err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if d.Ladder != c.ladder {
					t.Errorf("ladder = %q, want %q", d.Ladder, c.ladder)
				}
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	c := &Client{URL: srv.URL, Timeout: 100 * time.Millisecond, HTTP: srv.Client()}
	start := time.Now()
	_, err := c.Check(context.Background(), cam1)
	if err == nil || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s with a 100ms timeout", d)
	}

	// The caller's context bounds it too.
	c.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Check(ctx, cam1); err == nil {
		t.Error("no error past the context's deadline")
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &Client{URL: "http://user:secret@" + addr + "/hook?token=secret"}
	_, err = c.Check(context.Background(), cam1)
	if err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q shows the URL's secrets", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the webhook", err)
	}

	if _, err := (&Client{URL: "::bad"}).Check(context.Background(), cam1); err == nil {
		t.Error("bad URL accepted")
	}
}

func TestAdmitter(t *testing.T) {
	pr := auth.PublishRequest{
		Name: "live/cam1", Protocol: "rtmp", RemoteAddr: "203.0.113.7:50412",
		App:    auth.App{Name: "live"},
		Params: url.Values{"ladder": {"mine"}, "record": {"true"}},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	h := newHook(t, 200, `{"ladder": "hd"}`)
	params, err := h.client().Admitter(false, log)(context.Background(), pr)
	if err != nil {
		t.Fatal(err)
	}
	if want := (url.Values{"ladder": {"hd"}, "record": {"true"}}); !reflect.DeepEqual(params, want) {
		t.Errorf("params = %v, want %v", params, want)
	}
	if pr.Params.Get("ladder") != "mine" {
		t.Error("the publisher's params were modified")
	}
	var sent Request
	if err := json.Unmarshal(<-h.bodies, &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Stream != "live/cam1" || sent.App != "live" || sent.Protocol != "rtmp" || sent.RemoteAddr != pr.RemoteAddr || sent.Params["ladder"][0] != "mine" {
		t.Errorf("sent %+v", sent)
	}

	// No ladder picked: the publisher's own stays.
	h = newHook(t, 204, "")
	params, err = h.client().Admitter(false, log)(context.Background(), pr)
	if err != nil || params.Get("ladder") != "mine" {
		t.Errorf("params = %v, %v", params, err)
	}

	// Refused: refused whatever on_error says.
	h = newHook(t, 403, "banned")
	for _, allow := range []bool{false, true} {
		_, err = h.client().Admitter(allow, log)(context.Background(), pr)
		if !errors.Is(err, auth.ErrAdmissionRefused) || !strings.Contains(err.Error(), "banned") {
			t.Errorf("allow=%v: err = %v", allow, err)
		}
	}

	// Failed: on_error decides.
	h = newHook(t, 500, "oops")
	params, err = h.client().Admitter(true, log)(context.Background(), pr)
	if err != nil || !reflect.DeepEqual(params, pr.Params) {
		t.Errorf("allow on error: %v, %v", params, err)
	}
	_, err = h.client().Admitter(false, log)(context.Background(), pr)
	if !errors.Is(err, auth.ErrAdmissionRefused) || !strings.Contains(err.Error(), "the webhook failed") || !strings.Contains(err.Error(), "500") {
		t.Errorf("deny on error: %v", err)
	}
}
