package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// orderStore records the keys of the successful Puts of the store it wraps.
type orderStore struct {
	Store
	mu   sync.Mutex
	puts []string
}

func (o *orderStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	err := o.Store.Put(ctx, key, r, size)
	if err == nil {
		o.mu.Lock()
		o.puts = append(o.puts, key)
		o.mu.Unlock()
	}
	return err
}

func (o *orderStore) order() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.puts...)
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// spoolFile writes a local file of random bytes and returns its path and
// content.
func spoolFile(t *testing.T, dir, name string, size int) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkObjects checks that st holds want (key → content) byte for byte.
func checkObjects(t *testing.T, st Store, want map[string][]byte) {
	t.Helper()
	for k, b := range want {
		rc, _, err := st.Get(context.Background(), k)
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s: %d bytes read back, want %d identical (err %v)", k, len(got), len(b), err)
		}
	}
}

// markers counts the queue entries on disk.
func markers(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+markerExt))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

func TestSpoolLocal(t *testing.T) {
	dst := &orderStore{Store: &Local{Dir: t.TempDir()}}
	spoolDir, src := t.TempDir(), t.TempDir()
	sp, err := NewSpool(spoolDir, dst, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ctx := context.Background()
	want := map[string][]byte{}
	var order, paths []string
	for i := range 20 {
		p, b := spoolFile(t, src, fmt.Sprintf("f%d", i), 1000+i*997)
		key := fmt.Sprintf("rec/cam1/%02d.mp4", i)
		if err := sp.Add(ctx, p, key, i%2 == 0); err != nil {
			t.Fatal(err)
		}
		want[key] = b
		order = append(order, key)
		paths = append(paths, p)
	}
	if err := sp.Wait(waitCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkObjects(t, dst, want)
	if got := dst.order(); strings.Join(got, " ") != strings.Join(order, " ") {
		t.Fatalf("upload order %v, want %v", got, order)
	}
	for i, p := range paths {
		_, err := os.Stat(p)
		if removed := errors.Is(err, os.ErrNotExist); removed != (i%2 == 0) {
			t.Fatalf("%s: removed %v, removeAfter %v", p, removed, i%2 == 0)
		}
	}
	st := sp.Stats()
	if st.Queued != 0 || st.QueuedBytes != 0 || st.Uploaded != 20 || st.Failing || st.LastError != "" {
		t.Fatalf("stats %+v", st)
	}
	if n := markers(t, spoolDir); n != 0 {
		t.Fatalf("%d queue entries left", n)
	}
}

func TestSpoolAddErrors(t *testing.T) {
	sp, err := NewSpool(t.TempDir(), &Local{Dir: t.TempDir()}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, _ := spoolFile(t, t.TempDir(), "f", 10)
	if err := sp.Add(ctx, p, "../x", false); err == nil {
		t.Fatal("invalid key accepted")
	}
	if err := sp.Add(ctx, filepath.Join(t.TempDir(), "missing"), "x", false); err == nil {
		t.Fatal("missing file accepted")
	}
	if err := sp.Add(ctx, t.TempDir(), "x", false); err == nil {
		t.Fatal("directory accepted")
	}
	sp.Close()
	sp.Close() // twice is fine
	if err := sp.Add(ctx, p, "x", false); !errors.Is(err, ErrSpoolClosed) {
		t.Fatalf("add after close: %v", err)
	}
	if _, err := NewSpool(t.TempDir(), nil, 0, nil); err == nil {
		t.Fatal("nil store accepted")
	}
}

// The S3 server is killed while files keep coming: the spool grows and
// reports failing, logs the outage once; the server comes back a few
// seconds later and everything drains in order, byte for byte.
func TestSpoolS3Outage(t *testing.T) {
	s3, srv := newS3(t, "spool")
	dst := &orderStore{Store: s3}
	logs := &logBuffer{}
	spoolDir, src := t.TempDir(), t.TempDir()
	sp, err := NewSpool(spoolDir, dst, 0, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ctx := context.Background()
	want := map[string][]byte{}
	var order []string
	add := func(i int, key string) {
		t.Helper()
		p, b := spoolFile(t, src, fmt.Sprintf("f%d", i), 100000+i*1000)
		if err := sp.Add(ctx, p, key, true); err != nil {
			t.Fatal(err)
		}
		want[key] = b
		order = append(order, key)
	}
	for i := range 5 {
		add(i, fmt.Sprintf("live/cam1/%03d.m4s", i))
	}
	if err := sp.Wait(waitCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	for i := 5; i < 15; i++ {
		add(i, fmt.Sprintf("live/cam1/%03d.m4s", i))
	}
	add(15, "live/cam1/005.m4s") // the same key again: the later Add wins
	if st := sp.Stats(); st.Queued != 11 || st.QueuedBytes == 0 {
		t.Fatalf("stats while down: %+v", st)
	}
	// Until the spool has noticed.
	deadline := waitCtx(t, time.Minute)
	for !sp.Stats().Failing {
		select {
		case <-deadline.Done():
			t.Fatalf("spool never reported failing: %+v", sp.Stats())
		case <-time.After(50 * time.Millisecond):
		}
	}
	st := sp.Stats()
	if st.LastError == "" || st.Queued != 11 || st.Uploaded != 5 {
		t.Fatalf("stats while failing: %+v", st)
	}
	t.Logf("while down: %+v", st)
	time.Sleep(3 * time.Second) // a few seconds of outage, several retries
	add(16, "live/cam1/016.m4s")
	if got := sp.Stats().Queued; got != 12 {
		t.Fatalf("queued %d while down, want 12", got)
	}
	srv.Start()

	if err := sp.Wait(waitCtx(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	st = sp.Stats()
	if st.Failing || st.Uploaded != 17 || st.Queued != 0 {
		t.Fatalf("stats after recovery: %+v", st)
	}
	if got := dst.order(); strings.Join(got, " ") != strings.Join(order, " ") {
		t.Fatalf("upload order\n got %v\nwant %v", got, order)
	}
	checkObjects(t, s3, want)
	if n := logs.count("spool uploads failing"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, logs)
	}
	if n := logs.count("spool uploads recovered"); n != 1 {
		t.Fatalf("recovery logged %d times, want once:\n%s", n, logs)
	}
	if ents, _ := os.ReadDir(src); len(ents) != 0 {
		t.Fatalf("uploaded local files not removed: %d left", len(ents))
	}
}

// Close with a queue (the store down), NewSpool on the same directory:
// the queue resumes, in order.
func TestSpoolRestart(t *testing.T) {
	s3, srv := newS3(t, "")
	spoolDir, src := t.TempDir(), t.TempDir()
	ctx := context.Background()
	srv.Stop()
	dst := &orderStore{Store: s3}
	sp, err := NewSpool(spoolDir, dst, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	var order []string
	for i := range 10 {
		p, b := spoolFile(t, src, fmt.Sprintf("f%d", i), 50000)
		key := fmt.Sprintf("r/%02d", i)
		if err := sp.Add(ctx, p, key, i < 5); err != nil {
			t.Fatal(err)
		}
		want[key] = b
		order = append(order, key)
	}
	sp.Close()
	if err := sp.Wait(ctx); !errors.Is(err, ErrSpoolClosed) {
		t.Fatalf("wait after close: %v", err)
	}
	if n := markers(t, spoolDir); n != 10 {
		t.Fatalf("%d entries on disk after close, want 10", n)
	}
	// A marker write interrupted by a crash is cleaned up.
	os.WriteFile(filepath.Join(spoolDir, "00000000000000000099.json.tmp"), []byte("{"), 0o644)

	srv.Start()
	sp, err = NewSpool(spoolDir, dst, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if st := sp.Stats(); st.Queued+int(st.Uploaded) != 10 {
		t.Fatalf("resumed stats %+v", st)
	}
	// New entries go after the resumed ones.
	p, b := spoolFile(t, src, "late", 1234)
	if err := sp.Add(ctx, p, "r/late", false); err != nil {
		t.Fatal(err)
	}
	want["r/late"] = b
	order = append(order, "r/late")
	if err := sp.Wait(waitCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := dst.order(); strings.Join(got, " ") != strings.Join(order, " ") {
		t.Fatalf("upload order\n got %v\nwant %v", got, order)
	}
	checkObjects(t, s3, want)
	if ents, _ := os.ReadDir(spoolDir); len(ents) != 0 {
		t.Fatalf("spool dir not empty: %v", ents)
	}
}

// Close while uploading (the store up), NewSpool again: nothing is lost.
func TestSpoolRestartMidQueue(t *testing.T) {
	s3, _ := newS3(t, "")
	spoolDir, src := t.TempDir(), t.TempDir()
	ctx := context.Background()
	want := map[string][]byte{}
	sp, err := NewSpool(spoolDir, s3, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		p, b := spoolFile(t, src, fmt.Sprintf("f%d", i), 1<<20)
		key := fmt.Sprintf("m/%02d", i)
		if err := sp.Add(ctx, p, key, true); err != nil {
			t.Fatal(err)
		}
		want[key] = b
	}
	sp.Close()
	first := sp.Stats()
	t.Logf("closed with %+v", first)
	sp, err = NewSpool(spoolDir, s3, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if got := sp.Stats().Queued; int64(got) != 20-first.Uploaded {
		t.Fatalf("resumed %d entries, want %d", got, 20-first.Uploaded)
	}
	if err := sp.Wait(waitCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkObjects(t, s3, want)
}

func TestSpoolFull(t *testing.T) {
	s3, srv := newS3(t, "")
	srv.Stop()
	src := t.TempDir()
	sp, err := NewSpool(t.TempDir(), s3, 1000000, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ctx := context.Background()
	big, _ := spoolFile(t, src, "big", 1000001)
	if err := sp.Add(ctx, big, "big", false); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("file past the bound: %v", err)
	}
	for i := range 3 {
		p, _ := spoolFile(t, src, fmt.Sprintf("f%d", i), 300000)
		if err := sp.Add(ctx, p, fmt.Sprintf("f%d", i), false); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := spoolFile(t, src, "f3", 300000)
	if err := sp.Add(ctx, p, "f3", false); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("4th file: %v", err)
	}
	if st := sp.Stats(); st.Queued != 3 || st.QueuedBytes != 900000 {
		t.Fatalf("stats %+v", st)
	}
	small, _ := spoolFile(t, src, "small", 100000)
	if err := sp.Add(ctx, small, "small", false); err != nil {
		t.Fatalf("a file that fits: %v", err)
	}
	srv.Start()
	if err := sp.Wait(waitCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := sp.Add(ctx, p, "f3", false); err != nil {
		t.Fatalf("after draining: %v", err)
	}
}

// An entry whose local file disappeared is dropped (logged), and the queue
// goes on; a queue entry that cannot be read is set aside.
func TestSpoolMissingFile(t *testing.T) {
	s3, srv := newS3(t, "")
	srv.Stop()
	src := t.TempDir()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	spoolDir := t.TempDir()
	sp, err := NewSpool(spoolDir, s3, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p1, _ := spoolFile(t, src, "gone", 100)
	p2, b2 := spoolFile(t, src, "kept", 100)
	if err := sp.Add(ctx, p1, "gone", false); err != nil {
		t.Fatal(err)
	}
	if err := sp.Add(ctx, p2, "kept", false); err != nil {
		t.Fatal(err)
	}
	// Closed before the file goes (an upload in progress holds it open).
	sp.Close()
	os.Remove(p1)
	os.WriteFile(filepath.Join(spoolDir, "00000000000000000777.json"), []byte("{"), 0o644)
	srv.Start()
	sp, err = NewSpool(spoolDir, s3, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if err := sp.Wait(waitCtx(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	st := sp.Stats()
	if st.Dropped != 1 || st.Uploaded != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkObjects(t, s3, map[string][]byte{"kept": b2})
	if _, err := s3.Stat(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat gone: %v", err)
	}
	if !strings.Contains(logs.String(), "spool upload dropped") || !strings.Contains(logs.String(), "unreadable queue entry") {
		t.Fatalf("drop or bad entry not logged:\n%s", logs)
	}
	if _, err := os.Stat(filepath.Join(spoolDir, "00000000000000000777.json.bad")); err != nil {
		t.Fatalf("bad entry not set aside: %v", err)
	}
}

// Wait ends with its context.
func TestSpoolWaitContext(t *testing.T) {
	s3, srv := newS3(t, "")
	srv.Stop()
	sp, err := NewSpool(t.TempDir(), s3, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	p, _ := spoolFile(t, t.TempDir(), "f", 10)
	if err := sp.Add(context.Background(), p, "f", false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := sp.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait: %v", err)
	}
}
