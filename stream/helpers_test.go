package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/test/testutil"
)

// waitTimeout bounds every wait in these tests. It is a deadlock detector,
// not a performance threshold: anything healthy finishes far sooner.
const waitTimeout = 10 * time.Second

// checkGoroutines fails the test if goroutines started during it are still
// running once every cleanup registered after it has run. Call it first.
func checkGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d running, %d at start\n%s", n, base, buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// newTestHub returns a hub that logs into the returned buffer and is closed
// when the test ends.
func newTestHub(t testing.TB, cfg HubConfig) (*Hub, *testutil.LogBuffer) {
	t.Helper()
	logs := &testutil.LogBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h := NewHub(cfg)
	t.Cleanup(h.Close)
	return h, logs
}

func videoTrack() *Track {
	return &Track{Codec: &codecs.H264{SPS: []byte{0x67}, PPS: []byte{0x68}}, ClockRate: 90000}
}

func audioTrack() *Track {
	return &Track{
		Codec: &codecs.MPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{
			Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 2, ChannelCount: 2,
		}},
		ClockRate: 48000,
	}
}

// frame returns the n-th 30 fps video access unit, or the n-th audio one.
func frame(t *Track, n int, key bool) *AccessUnit {
	var dts time.Duration
	if t.IsVideo() {
		dts = time.Duration(n) * time.Second / 30
	} else {
		dts = time.Duration(n) * 1024 * time.Second / 48000
		key = true
	}
	return &AccessUnit{Track: t, DTS: dts, PTS: dts, Key: key, Payload: make([]byte, 100)}
}

func mustPublish(t testing.TB, h *Hub, name string, opts PublishOptions, tracks ...*Track) *Publisher {
	t.Helper()
	p, err := h.Publish(name, tracks, opts)
	if err != nil {
		t.Fatalf("Publish(%q): %v", name, err)
	}
	return p
}

func mustReader(t testing.TB, s *Stream) *Reader {
	t.Helper()
	r, err := s.NewReader("test", "127.0.0.1:1")
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

func read(t testing.TB, r *Reader) (Item, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	it, err := r.Read(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reader %d: Read blocked for %v", r.Info().ID, waitTimeout)
	}
	return it, err
}

func mustRead(t testing.TB, r *Reader) Item {
	t.Helper()
	it, err := read(t, r)
	if err != nil {
		t.Fatalf("reader %d: Read: %v", r.Info().ID, err)
	}
	return it
}

func expectSession(t testing.TB, r *Reader, id int) *Session {
	t.Helper()
	it := mustRead(t, r)
	if it.Session == nil || it.AU != nil {
		t.Fatalf("reader %d: got %s, want session %d", r.Info().ID, describe(it), id)
	}
	if it.Session.ID != id {
		t.Fatalf("reader %d: got session %d, want %d", r.Info().ID, it.Session.ID, id)
	}
	return it.Session
}

func expectAU(t testing.TB, r *Reader, want *AccessUnit) {
	t.Helper()
	it := mustRead(t, r)
	if it.AU != want {
		t.Fatalf("reader %d: got %s, want %s", r.Info().ID, describe(it), describe(Item{AU: want}))
	}
}

// expectErr reads once and checks that the reader reports want.
func expectErr(t testing.TB, r *Reader, want error) {
	t.Helper()
	it, err := read(t, r)
	if !errors.Is(err, want) {
		t.Fatalf("reader %d: got %s, err %v; want error %v", r.Info().ID, describe(it), err, want)
	}
}

func expectNoItem(t testing.TB, r *Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if it, err := r.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reader %d: got %s, err %v; want nothing queued", r.Info().ID, describe(it), err)
	}
}

func expectClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("%s not closed after %v", what, waitTimeout)
	}
}

func expectOpen(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s closed", what)
	default:
	}
}

func describe(it Item) string {
	switch {
	case it.Session != nil:
		return fmt.Sprintf("session %d", it.Session.ID)
	case it.AU != nil:
		kind, key := "audio", ""
		if it.AU.Track.IsVideo() {
			kind = "video"
		}
		if it.AU.Key {
			key = " key"
		}
		return fmt.Sprintf("%s %v%s", kind, it.AU.DTS, key)
	}
	return "empty item"
}
