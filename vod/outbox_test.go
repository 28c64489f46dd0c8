package vod

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
)

// outboxTestConfig retries fast.
func outboxTestConfig() OutboxConfig {
	return OutboxConfig{
		Timeout:      5 * time.Second,
		MaxAttempts:  50,
		BackoffMin:   5 * time.Millisecond,
		BackoffMax:   40 * time.Millisecond,
		PollInterval: 10 * time.Millisecond,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

func openOutboxDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := openDB(path)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func newTestOutbox(t *testing.T, db *sql.DB, cfg OutboxConfig) *Outbox {
	t.Helper()
	o, err := NewOutbox(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pendingOf(t *testing.T, o *Outbox) int {
	t.Helper()
	n, err := o.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// noOutboxGoroutines fails when a goroutine of the outbox still runs a
// moment after Close.
func noOutboxGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "vod.(*Outbox)") {
				left = g
				break
			}
		}
		if left == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox goroutine still running after Close:\n%s", left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hookReceiver is a webhook receiver that checks every request and keeps
// the events it accepted, in order of arrival.
type hookReceiver struct {
	t   *testing.T
	key string
	// status decides the answer to the n-th request (from 1).
	status func(n int) int
	delay  time.Duration

	mu       sync.Mutex
	requests []string // event ids, every request
	attempts []int    // X-MPS-Delivery-Attempt, every request
	accepted []WebhookBody
	bad      []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var ev WebhookBody
	var problems []string
	if err := json.Unmarshal(body, &ev); err != nil {
		problems = append(problems, "body: "+err.Error())
	}
	if r.Method != http.MethodPost {
		problems = append(problems, "method "+r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		problems = append(problems, "content type "+ct)
	}
	if id := r.Header.Get(HeaderEventID); id != ev.ID || !strings.HasPrefix(id, "evt_") || len(id) != 20 {
		problems = append(problems, fmt.Sprintf("event id header %q, body %q", id, ev.ID))
	}
	if typ := r.Header.Get(HeaderEventType); typ != ev.Type {
		problems = append(problems, fmt.Sprintf("event type header %q, body %q", typ, ev.Type))
	}
	sig := r.Header.Get(HeaderSignature)
	switch {
	case h.key == "" && sig != "":
		problems = append(problems, "signature without a key")
	case h.key != "" && !Verify(h.key, body, sig):
		problems = append(problems, "bad signature "+sig)
	}
	attempt, _ := strconv.Atoi(r.Header.Get(HeaderAttempt))

	h.mu.Lock()
	h.requests = append(h.requests, ev.ID)
	h.attempts = append(h.attempts, attempt)
	h.bad = append(h.bad, problems...)
	n := len(h.requests)
	h.mu.Unlock()

	if h.delay > 0 {
		select {
		case <-time.After(h.delay):
		case <-r.Context().Done():
			return
		}
	}
	code := http.StatusNoContent
	if h.status != nil {
		code = h.status(n)
	}
	if code/100 == 2 {
		h.mu.Lock()
		h.accepted = append(h.accepted, ev)
		h.mu.Unlock()
	}
	w.WriteHeader(code)
	if code/100 != 2 {
		_, _ = io.WriteString(w, "boom")
	}
}

func (h *hookReceiver) acceptedIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, len(h.accepted))
	for i, e := range h.accepted {
		ids[i] = e.ID
	}
	return ids
}

func (h *hookReceiver) requestIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// check fails on malformed requests and unless the receiver accepted
// exactly want, in that order.
func (h *hookReceiver) check(t *testing.T, want []string) {
	t.Helper()
	h.mu.Lock()
	bad := slices.Clone(h.bad)
	h.mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("bad requests: %v", bad)
	}
	if got := h.acceptedIDs(); !slices.Equal(got, want) {
		t.Errorf("accepted events\n got %v\nwant %v", got, want)
	}
}

func testEvent(i int) events.Event {
	return events.Event{Type: EventJobProgress, Time: time.Now(), Stream: "live/cam1",
		Data: map[string]any{"id": "job_1", "n": i}}
}

func TestOutboxSignKnownAnswer(t *testing.T) {
	// RFC 4231, test case 2.
	key, body := "Jefe", []byte("what do ya want for nothing?")
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got := Sign(key, body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !Verify(key, body, want) {
		t.Error("Verify rejects the right signature")
	}
	for name, c := range map[string]struct {
		key    string
		body   string
		header string
	}{
		"wrong key":      {"jefe", string(body), want},
		"tampered body":  {key, "what do ya want for nothing!", want},
		"no prefix":      {key, string(body), strings.TrimPrefix(want, "sha256=")},
		"other prefix":   {key, string(body), "sha1=" + strings.TrimPrefix(want, "sha256=")},
		"bad hex":        {key, string(body), "sha256=zz"},
		"empty":          {key, string(body), ""},
		"truncated hash": {key, string(body), want[:len(want)-2]},
	} {
		if Verify(c.key, []byte(c.body), c.header) {
			t.Errorf("%s: Verify accepts it", name)
		}
	}
}

func TestOutboxReceiverDownThenUp(t *testing.T) {
	const key = "s3cret"
	db := openOutboxDB(t, filepath.Join(t.TempDir(), "mps.db"))
	defer db.Close()

	// A answers 503 to its first requests, then fails every 4th.
	a := &hookReceiver{t: t, key: key, status: func(n int) int {
		if n <= 5 {
			return http.StatusServiceUnavailable
		}
		if n%4 == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}}
	srvA := httptest.NewServer(a)
	defer srvA.Close()

	// B does not listen at first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addrB := ln.Addr().String()
	_ = ln.Close()
	b := &hookReceiver{t: t}

	o := newTestOutbox(t, db, outboxTestConfig())
	ctx := context.Background()
	var wantA, wantB []string
	enqueue := func(i int) {
		id, err := o.Enqueue(ctx, srvA.URL+"/hook?token=x", key, testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		wantA = append(wantA, id)
		id, err = o.Enqueue(ctx, "http://"+addrB+"/hook", "", testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		wantB = append(wantB, id)
	}
	for i := range 5 {
		enqueue(i) // stored before the outbox runs
	}
	o.Start(ctx)
	defer o.Close()
	for i := 5; i < 10; i++ {
		enqueue(i)
	}
	time.Sleep(100 * time.Millisecond)
	if got := len(b.acceptedIDs()); got != 0 {
		t.Fatalf("B got %d events while down", got)
	}

	// B comes up.
	var lnB net.Listener
	waitUntil(t, 5*time.Second, "B's port", func() bool {
		lnB, err = net.Listen("tcp", addrB)
		return err == nil
	})
	srvB := httptest.NewUnstartedServer(b)
	_ = srvB.Listener.Close()
	srvB.Listener = lnB
	srvB.Start()
	defer srvB.Close()

	waitUntil(t, 10*time.Second, "every event delivered", func() bool { return pendingOf(t, o) == 0 })
	time.Sleep(100 * time.Millisecond) // ten polls: nothing is sent again
	a.check(t, wantA)
	b.check(t, wantB)
	if n := len(a.requestIDs()); n <= len(wantA) {
		t.Errorf("A had %d requests for %d events; expected retries", n, len(wantA))
	}
	if !slices.ContainsFunc(a.attempts, func(n int) bool { return n > 1 }) {
		t.Errorf("no request with %s > 1: %v", HeaderAttempt, a.attempts)
	}

	// Bodies carry the event.
	got := a.accepted[3]
	if got.Type != EventJobProgress || got.Stream != "live/cam1" || got.Data["n"] != float64(3) || got.Time.IsZero() {
		t.Errorf("body: %+v", got)
	}
	d, err := o.Status(ctx, wantA[0])
	if err != nil || d.State != DeliveryDelivered || d.Attempts < 2 || d.DoneAt == nil {
		t.Errorf("status of the first event: %+v, %v", d, err)
	}
	o.Close()
	noOutboxGoroutines(t)
}

func TestOutboxRestartLosesNothing(t *testing.T) {
	const key = "k"
	path := filepath.Join(t.TempDir(), "mps.db")
	var mu sync.Mutex
	down := 0 // answer 503 to this many requests
	h := &hookReceiver{t: t, key: key, delay: 30 * time.Millisecond, status: func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if down > 0 {
			down--
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx := context.Background()

	db := openOutboxDB(t, path)
	o := newTestOutbox(t, db, outboxTestConfig())
	var want []string
	for i := range 10 {
		id, err := o.Enqueue(ctx, srv.URL, key, testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	o.Start(ctx)
	waitUntil(t, 5*time.Second, "three deliveries", func() bool { return len(h.acceptedIDs()) >= 3 })
	// Events from the bus, buffered when Close is called, are stored too.
	bus := events.NewBus(0)
	cancel := bus.Subscribe(o.Sink(srv.URL, key, nil))
	for i := 10; i < 13; i++ {
		bus.Publish(testEvent(i))
	}
	cancel()
	o.Close() // with a request in flight, most likely
	noOutboxGoroutines(t)
	before := len(h.acceptedIDs())
	if before >= 10 {
		t.Fatalf("all %d delivered before the restart; the test needs fewer", before)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The next run: the receiver fails at first, more events come.
	mu.Lock()
	down = 2
	mu.Unlock()
	db = openOutboxDB(t, path)
	defer db.Close()
	o = newTestOutbox(t, db, outboxTestConfig())
	defer func() { o.Close() }()
	if n := pendingOf(t, o); n != 13-before {
		t.Fatalf("after reopening: %d pending, want %d", n, 13-before)
	}
	for i := 13; i < 15; i++ {
		if _, err := o.Enqueue(ctx, srv.URL, key, testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	o.Start(ctx)
	waitUntil(t, 10*time.Second, "every event delivered", func() bool { return pendingOf(t, o) == 0 })
	time.Sleep(100 * time.Millisecond)

	got := h.acceptedIDs()
	if len(got) != 15 {
		t.Fatalf("accepted %d events, want 15: %v", len(got), got)
	}
	h.check(t, append(want, got[10:]...))
	for i, e := range h.accepted {
		if e.Data["n"] != float64(i) {
			t.Errorf("event %d has n=%v: out of order", i, e.Data["n"])
		}
	}
}

func TestOutboxMaxAttempts(t *testing.T) {
	db := openOutboxDB(t, filepath.Join(t.TempDir(), "mps.db"))
	defer db.Close()
	h := &hookReceiver{t: t, status: func(int) int { return http.StatusInternalServerError }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	cfg := outboxTestConfig()
	cfg.MaxAttempts = 3
	o := newTestOutbox(t, db, cfg)
	defer func() { o.Close() }()
	ctx := context.Background()
	var ids []string
	for i := range 2 {
		id, err := o.Enqueue(ctx, srv.URL, "", testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	o.Start(ctx)
	waitUntil(t, 5*time.Second, "both given up", func() bool { return pendingOf(t, o) == 0 })
	time.Sleep(150 * time.Millisecond) // several backoffs: no more attempts

	for _, id := range ids {
		d, err := o.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != DeliveryFailed || d.Attempts != 3 || d.LastError != "HTTP 500: boom" || d.DoneAt == nil {
			t.Errorf("delivery %s: %+v", id, d)
		}
	}
	// In order: the second event is tried only once the first is given up.
	want := []string{ids[0], ids[0], ids[0], ids[1], ids[1], ids[1]}
	if got := h.requestIDs(); !slices.Equal(got, want) {
		t.Errorf("requests\n got %v\nwant %v", got, want)
	}
	if want := []int{1, 2, 3, 1, 2, 3}; !slices.Equal(h.attempts, want) {
		t.Errorf("attempt headers %v, want %v", h.attempts, want)
	}
	h.check(t, nil)

	// A new run does not pick failed rows up again.
	o.Close()
	o = newTestOutbox(t, db, cfg)
	o.Start(ctx)
	time.Sleep(100 * time.Millisecond)
	if n := len(h.requestIDs()); n != 6 {
		t.Errorf("%d requests after a restart, want 6", n)
	}
}

func TestOutboxSlowReceiverDoesNotBlockOthers(t *testing.T) {
	db := openOutboxDB(t, filepath.Join(t.TempDir(), "mps.db"))
	defer db.Close()
	release := make(chan struct{})
	slow := &hookReceiver{t: t}
	srvSlow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		slow.ServeHTTP(w, r)
	}))
	defer srvSlow.Close()
	fast := &hookReceiver{t: t}
	srvFast := httptest.NewServer(fast)
	defer srvFast.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/"
	_ = ln.Close()

	o := newTestOutbox(t, db, outboxTestConfig())
	defer o.Close()
	ctx := context.Background()
	o.Start(ctx)
	var wantSlow, wantFast []string
	for i := range 3 {
		id, err := o.Enqueue(ctx, srvSlow.URL, "", testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		wantSlow = append(wantSlow, id)
		if _, err := o.Enqueue(ctx, dead, "", testEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // the slow request is in flight
	for i := range 5 {
		id, err := o.Enqueue(ctx, srvFast.URL, "", testEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		wantFast = append(wantFast, id)
	}
	waitUntil(t, 2*time.Second, "the fast receiver's events", func() bool { return len(fast.acceptedIDs()) == 5 })
	fast.check(t, wantFast)
	if n := len(slow.acceptedIDs()); n != 0 {
		t.Fatalf("slow receiver answered %d", n)
	}
	close(release)
	waitUntil(t, 5*time.Second, "the slow receiver's events", func() bool { return len(slow.acceptedIDs()) == 3 })
	slow.check(t, wantSlow)
	waitUntil(t, 5*time.Second, "only the dead receiver's 3 left", func() bool { return pendingOf(t, o) == 3 })
}

func TestOutboxSinkFiltersAndPrunes(t *testing.T) {
	db := openOutboxDB(t, filepath.Join(t.TempDir(), "mps.db"))
	defer db.Close()
	h := &hookReceiver{t: t, key: "k"}
	srv := httptest.NewServer(h)
	defer srv.Close()
	cfg := outboxTestConfig()
	cfg.Retention = 50 * time.Millisecond
	o := newTestOutbox(t, db, cfg)
	defer o.Close()
	ctx := context.Background()
	o.Start(ctx)

	bus := events.NewBus(0)
	defer bus.Subscribe(o.Sink(srv.URL, "k", func(e events.Event) bool { return e.Type != "skip" }))()
	for i := range 6 {
		e := testEvent(i)
		if i%3 == 2 {
			e.Type = "skip"
		}
		bus.Publish(e)
	}
	waitUntil(t, 5*time.Second, "four events", func() bool { return len(h.acceptedIDs()) == 4 })
	time.Sleep(50 * time.Millisecond)
	h.mu.Lock()
	var ns []any
	for _, e := range h.accepted {
		ns = append(ns, e.Data["n"])
	}
	h.mu.Unlock()
	if want := []any{0.0, 1.0, 3.0, 4.0}; !slices.Equal(ns, want) {
		t.Errorf("got events %v, want %v", ns, want)
	}
	h.check(t, h.acceptedIDs())

	id := h.acceptedIDs()[0]
	if _, err := o.Status(ctx, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	o.prune(ctx)
	if _, err := o.Status(ctx, id); !errors.Is(err, ErrNoDelivery) {
		t.Errorf("after the retention: %v, want ErrNoDelivery", err)
	}

	if _, err := o.Enqueue(ctx, "ftp://example.com/", "", testEvent(0)); err == nil {
		t.Error("an ftp URL was accepted")
	}
	if _, err := o.Enqueue(ctx, srv.URL, "", events.Event{}); err == nil {
		t.Error("an event without a type was accepted")
	}
}

func TestOutboxBackoff(t *testing.T) {
	o := &Outbox{cfg: OutboxConfig{BackoffMin: time.Second, BackoffMax: 10 * time.Minute}}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: 512 * time.Second, 11: 10 * time.Minute, 60: 10 * time.Minute} {
		got := o.backoff(n)
		if got < want*9/10 || got > want*11/10 || got > 10*time.Minute {
			t.Errorf("backoff(%d) = %v, want about %v", n, got, want)
		}
	}
}
