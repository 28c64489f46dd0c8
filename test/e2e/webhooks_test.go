package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// End-to-end tests of job webhooks: a receiver that is down at first gets
// every event later, exactly once per event id, in order and signed; and
// events waiting when mps is killed are delivered after it restarts.

// hookRequest is one request the receiver got.
type hookRequest struct {
	At        time.Time
	Path      string
	ID        string // X-MPS-Event-Id
	Type      string // X-MPS-Event-Type
	Attempt   int    // X-MPS-Delivery-Attempt
	Signature string
	Body      []byte
	Event     hookBody
	Status    int // what the receiver answered
}

// hookBody is a webhook body.
type hookBody struct {
	ID   string         `json:"id"`
	Type string         `json:"type"`
	Time time.Time      `json:"time"`
	Data map[string]any `json:"data"`
}

// hookReceiver records every request and answers 503 while it is down.
type hookReceiver struct {
	mu   sync.Mutex
	down bool
	reqs []hookRequest
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	req := hookRequest{At: time.Now(), Path: r.URL.Path, ID: r.Header.Get("X-MPS-Event-Id"), Type: r.Header.Get("X-MPS-Event-Type"),
		Signature: r.Header.Get("X-MPS-Signature"), Body: body}
	req.Attempt, _ = strconv.Atoi(r.Header.Get("X-MPS-Delivery-Attempt"))
	_ = json.Unmarshal(body, &req.Event)
	h.mu.Lock()
	defer h.mu.Unlock()
	req.Status = http.StatusNoContent
	if h.down || r.Method != http.MethodPost {
		req.Status = http.StatusServiceUnavailable
	}
	h.reqs = append(h.reqs, req)
	w.WriteHeader(req.Status)
}

func (h *hookReceiver) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// requests returns the requests so far to path ("" for all).
func (h *hookReceiver) requests(path string) []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookRequest
	for _, r := range h.reqs {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// accepted returns the requests answered 2xx, in arrival order.
func accepted(reqs []hookRequest) []hookRequest {
	var out []hookRequest
	for _, r := range reqs {
		if r.Status/100 == 2 {
			out = append(out, r)
		}
	}
	return out
}

// hmacHex is what X-MPS-Signature must be: "sha256=" and the hex
// HMAC-SHA256 of the body with key (computed here, not with mps's code).
func hmacHex(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// checkDeliveries checks the requests one job's notify URL got: signed
// with key, headers matching the body, every event id accepted exactly
// once, and the accepted events of job id in order (job.created first if
// want, job.progress non-decreasing, job.finished last). It returns the
// accepted events.
func checkDeliveries(t *testing.T, reqs []hookRequest, key, jobID string, wantCreated bool) []hookRequest {
	t.Helper()
	ids := map[string]int{}
	lastAttempt := map[string]int{}
	for _, r := range reqs {
		if r.Signature != hmacHex(key, r.Body) {
			t.Errorf("event %s (%s): X-MPS-Signature %q does not verify (want HMAC-SHA256 of the body with the job's key)", r.ID, r.Type, r.Signature)
		}
		if r.Signature == hmacHex(key+"x", r.Body) {
			t.Errorf("event %s: the signature verifies with a wrong key too", r.ID)
		}
		if r.ID == "" || r.ID != r.Event.ID || r.Type != r.Event.Type {
			t.Errorf("request headers id %q type %q, body id %q type %q: want them equal and set", r.ID, r.Type, r.Event.ID, r.Event.Type)
		}
		if r.Attempt <= lastAttempt[r.ID] {
			t.Errorf("event %s: X-MPS-Delivery-Attempt %d after %d", r.ID, r.Attempt, lastAttempt[r.ID])
		}
		lastAttempt[r.ID] = r.Attempt
		if _, ok := ids[r.ID]; !ok {
			ids[r.ID] = 0
		}
		if r.Status/100 == 2 {
			ids[r.ID]++
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s was accepted %d times, want exactly once", id, n)
		}
	}
	acc := accepted(reqs)
	var types []string
	lastProgress := -1.0
	for i, r := range acc {
		types = append(types, r.Type)
		if got, _ := r.Event.Data["id"].(string); got != jobID {
			t.Errorf("event %s (%s) is about job %q, want %s", r.ID, r.Type, got, jobID)
		}
		switch r.Type {
		case "job.created":
			if i != 0 {
				t.Errorf("job.created is event %d of %d, want the first", i+1, len(acc))
			}
		case "job.progress":
			p, _ := r.Event.Data["progress"].(float64)
			if p < lastProgress || p < 0 || p > 1 {
				t.Errorf("job.progress %v after %v: want 0..1, non-decreasing (events out of order?)", p, lastProgress)
			}
			lastProgress = p
		case "job.finished":
			if i != len(acc)-1 {
				t.Errorf("job.finished is event %d of %d, want the last", i+1, len(acc))
			}
			if st, _ := r.Event.Data["state"].(string); st != "succeeded" {
				t.Errorf("job.finished says state %q, want succeeded", st)
			}
			if _, ok := r.Event.Data["tasks"].([]any); !ok {
				t.Errorf("job.finished has no tasks: %v", r.Event.Data)
			}
		default:
			t.Errorf("unexpected event type %q", r.Type)
		}
		if i > 0 && r.Event.Time.Before(acc[i-1].Event.Time) {
			t.Errorf("event %s (%s) at %s was delivered after %s (%s) at %s", r.ID, r.Type, r.Event.Time, acc[i-1].ID, acc[i-1].Type, acc[i-1].Event.Time)
		}
	}
	t.Logf("accepted %d events: %v", len(acc), types)
	if len(acc) == 0 || (wantCreated && acc[0].Type != "job.created") || acc[len(acc)-1].Type != "job.finished" {
		t.Errorf("accepted events %v: want job.created ... job.finished", types)
	}
	return acc
}

// busJobEvents counts the job events of a job in GET /api/v1/events, by
// type.
func busJobEvents(t *testing.T, s *server, jobID string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, e := range s.events(t, 0, "job.", "") {
		if e.str("id") == jobID {
			n[e.Type]++
		}
	}
	return n
}

func countTypes(reqs []hookRequest) map[string]int {
	n := map[string]int{}
	for _, r := range reqs {
		n[r.Type]++
	}
	return n
}

// TestWebhookDelivery: the receiver answers 503 until the job has finished
// and a few deliveries failed; then it gets every event, exactly once per
// event id, in order, and each body is signed.
func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "clip.mp4"), clipOptions{Dur: 6})
	rcv := &hookReceiver{down: true}
	hs := newLoopbackServer(t, rcv, 0)
	s := startServer(t, serverOptions{Config: env.config("")})

	const key = "s3cr3t-key"
	ctxJSON := map[string]any{"order": 1234, "user": "ada"}
	change := s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"),
		Tasks:          []jobTask{{Type: "transcode", Template: "mp4-720p", Params: map[string]any{"video": map[string]any{"preset": "slow"}}}},
		SessionID:      "hook-1",
		SessionContext: ctxJSON,
		Notify:         map[string]string{"url": hs + "/change", "mode": "change", "key": key}})
	finish := s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"),
		Tasks:  []jobTask{{Type: "snapshot", Template: "snapshot-sample-10s"}},
		Notify: map[string]string{"url": hs + "/finish", "mode": "finish", "key": key}})

	waitJobSucceeded(t, s, change.ID, 90*time.Second)
	waitJobSucceeded(t, s, finish.ID, 90*time.Second)
	// Down until both URLs saw refusals after the jobs finished. (Each URL
	// gets its events in order, so /change retries job.created until the
	// receiver is up, and job.finished waits behind it.)
	tDone := time.Now()
	waitFor(t, 20*time.Second, "refused deliveries after the jobs finished", func() bool {
		n := 0
		for _, r := range rcv.requests("/change") {
			if r.At.After(tDone) {
				n++
			}
		}
		return n >= 2 && countTypes(rcv.requests("/finish"))["job.finished"] >= 2
	})
	refused := len(rcv.requests(""))
	tUp := time.Now()
	rcv.setDown(false)
	t.Logf("receiver up after refusing %d requests", refused)

	waitFor(t, 30*time.Second, "job.finished accepted on both URLs", func() bool {
		return countTypes(accepted(rcv.requests("/change")))["job.finished"] > 0 && countTypes(accepted(rcv.requests("/finish")))["job.finished"] > 0
	})
	t.Logf("all delivered %v after the receiver came up", time.Since(tUp).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // time for a duplicate to show
	for _, r := range accepted(rcv.requests("")) {
		if r.At.Before(tUp) {
			t.Errorf("event %s was accepted while the receiver was down", r.ID)
		}
	}

	t.Run("change", func(t *testing.T) {
		reqs := rcv.requests("/change")
		acc := checkDeliveries(t, reqs, key, change.ID, true)
		for _, r := range acc {
			if sid, _ := r.Event.Data["session_id"].(string); sid != "hook-1" {
				t.Errorf("%s: session_id %q, want hook-1", r.Type, sid)
			}
			sc, _ := json.Marshal(r.Event.Data["session_context"])
			if !strings.Contains(string(sc), `"order":1234`) || !strings.Contains(string(sc), `"user":"ada"`) {
				t.Errorf("%s: session_context %s, want %v echoed", r.Type, sc, ctxJSON)
			}
		}
		got, bus := countTypes(acc), busJobEvents(t, s, change.ID)
		t.Logf("delivered by type %v; the server's event log has %v", got, bus)
		if got["job.progress"] == 0 {
			t.Errorf("mode change delivered no job.progress")
		}
		for _, typ := range []string{"job.created", "job.progress", "job.finished"} {
			if got[typ] != bus[typ] {
				t.Errorf("%d %s events delivered, the server's event log has %d: every event must be delivered", got[typ], typ, bus[typ])
			}
		}
	})
	t.Run("finish", func(t *testing.T) {
		acc := checkDeliveries(t, rcv.requests("/finish"), key, finish.ID, false)
		if got := countTypes(acc); len(acc) != 1 || got["job.finished"] != 1 {
			t.Errorf("mode finish delivered %v, want job.finished only", got)
		}
	})
}

// newLoopbackServer serves h on 127.0.0.1:port (a free one with 0) until
// the test ends, and returns its base URL.
func newLoopbackServer(t *testing.T, h http.Handler, port int) string {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listen on port %d: %v", port, err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestWebhookRestart: nothing listens at the notify URL while the job runs;
// mps is killed with the events waiting in its outbox, the receiver comes
// up, mps restarts on the same database, and every event arrives once.
func TestWebhookRestart(t *testing.T) {
	t.Parallel()
	env := newJobEnv(t)
	makeClip(t, filepath.Join(env.Media, "clip.mp4"), clipOptions{Dur: 4})
	port := testutil.FreePort(t)
	hookURL := fmt.Sprintf("http://127.0.0.1:%d/hook", port)
	cfg := env.config("")
	s1 := startServer(t, serverOptions{Config: cfg})
	const key = "restart-key"
	j := s1.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"),
		Tasks:  []jobTask{{Type: "transcode", Template: "mp4-720p"}},
		Notify: map[string]string{"url": hookURL, "mode": "change", "key": key}})
	waitJobSucceeded(t, s1, j.ID, 90*time.Second)
	bus := busJobEvents(t, s1, j.ID)
	// The outbox has tried the URL (and failed: nothing listens); the
	// events are stored in the outbox by a background writer within
	// moments of the job's end.
	s1.waitLog(t, 20*time.Second, "webhook delivery failed", fmt.Sprintf("127.0.0.1:%d", port))
	time.Sleep(time.Second)
	t.Logf("events of the job before the kill: %v", bus)
	s1.kill()

	rcv := &hookReceiver{}
	newLoopbackServer(t, rcv, port)
	s2 := startServer(t, serverOptions{Config: cfg})
	waitFor(t, 30*time.Second, "job.finished delivered after the restart", func() bool {
		return countTypes(accepted(rcv.requests("/hook")))["job.finished"] > 0
	})
	time.Sleep(2 * time.Second) // time for a duplicate to show
	acc := checkDeliveries(t, rcv.requests("/hook"), key, j.ID, true)
	got := countTypes(acc)
	for _, typ := range []string{"job.created", "job.progress", "job.finished"} {
		if got[typ] != bus[typ] {
			t.Errorf("after the restart %d %s events arrived; before the kill the server had emitted %d", got[typ], typ, bus[typ])
		}
	}
	if j2 := s2.job(t, j.ID); j2.State != "succeeded" {
		t.Errorf("after the restart the job is %v, want still succeeded", j2)
	}
}
