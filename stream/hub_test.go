package stream

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestPublishAndRead(t *testing.T) {
	checkGoroutines(t)
	h, logs := newTestHub(t, HubConfig{})
	v, a := videoTrack(), audioTrack()
	p := mustPublish(t, h, "live/cam1", PublishOptions{Protocol: "rtmp", RemoteAddr: "10.0.0.1:5000"}, v, a)
	if v.Index != 0 || a.Index != 1 {
		t.Fatalf("track indexes = %d, %d; want 0, 1", v.Index, a.Index)
	}
	s, err := h.Get("live/cam1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Stream() != s || s.Name() != "live/cam1" || s.State() != StateLive {
		t.Fatalf("stream %q state %s", s.Name(), s.State())
	}
	if p.Session() != s.Session() || p.Session().ID != 1 || p.Session().Protocol != "rtmp" {
		t.Fatalf("session = %+v", s.Session())
	}
	r := mustReader(t, s)
	sess := expectSession(t, r, 1)
	if len(sess.Tracks) != 2 || sess.Tracks[0] != v || sess.Tracks[1] != a {
		t.Fatalf("session tracks = %v", sess.Tracks)
	}
	var aus []*AccessUnit
	for i := range 10 {
		aus = append(aus, frame(v, i, i == 0), frame(a, i, true))
	}
	for _, au := range aus {
		p.WriteUnit(au)
	}
	for _, au := range aus {
		expectAU(t, r, au)
	}
	expectNoItem(t, r)

	if got := h.Streams(); len(got) != 1 || got[0] != s {
		t.Fatalf("Streams() = %v", got)
	}
	if !strings.Contains(logs.String(), "stream=live/cam1") {
		t.Errorf("publish not logged with the stream name:\n%s", logs)
	}
}

func TestStreamsSorted(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	for _, n := range []string{"live/c", "live/a", "app/z", "live/b"} {
		mustPublish(t, h, n, PublishOptions{}, audioTrack())
	}
	var names []string
	for _, s := range h.Streams() {
		names = append(names, s.Name())
	}
	if got := strings.Join(names, ","); got != "app/z,live/a,live/b,live/c" {
		t.Fatalf("Streams() = %s", got)
	}
	if _, err := h.Get("live/nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
}

func TestPublishRefusals(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	for _, name := range []string{"", "live/../etc", "/live/x", "live//x", "live/x y", "live/%2e", "live/é"} {
		if _, err := h.Publish(name, []*Track{videoTrack()}, PublishOptions{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := h.Publish("live/x", nil, PublishOptions{}); err == nil {
		t.Error("Publish without tracks succeeded")
	}
	if _, err := h.Publish("live/x", []*Track{nil}, PublishOptions{}); err == nil {
		t.Error("Publish with a nil track succeeded")
	}
	if _, err := h.Publish("live/x", []*Track{{}}, PublishOptions{}); err == nil {
		t.Error("Publish with a track without codec succeeded")
	}
	if n := len(h.Streams()); n != 0 {
		t.Fatalf("refused publishes left %d streams", n)
	}
}

func TestSecondPublisherRefused(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	p1 := mustPublish(t, h, "live/x", PublishOptions{}, videoTrack())
	if _, err := h.Publish("live/x", []*Track{videoTrack()}, PublishOptions{}); !errors.Is(err, ErrAlreadyPublishing) {
		t.Fatalf("second Publish = %v, want ErrAlreadyPublishing", err)
	}
	expectOpen(t, p1.Done(), "first publisher's Done")
	if p1.Err() != nil {
		t.Fatalf("first publisher Err = %v", p1.Err())
	}
	if p1.Stream().Session().ID != 1 {
		t.Fatalf("session changed to %d", p1.Stream().Session().ID)
	}
}

func TestTakeover(t *testing.T) {
	checkGoroutines(t)
	h, logs := newTestHub(t, HubConfig{})
	v1 := videoTrack()
	p1 := mustPublish(t, h, "live/x", PublishOptions{RemoteAddr: "old"}, v1)
	s := p1.Stream()
	r := mustReader(t, s)
	expectSession(t, r, 1)
	k1 := frame(v1, 0, true)
	p1.WriteUnit(k1)
	expectAU(t, r, k1)

	v2 := videoTrack()
	p2 := mustPublish(t, h, "live/x", PublishOptions{RemoteAddr: "new", Takeover: true}, v2)
	expectClosed(t, p1.Done(), "old publisher's Done")
	if !errors.Is(p1.Err(), ErrTakenOver) {
		t.Fatalf("old publisher Err = %v, want ErrTakenOver", p1.Err())
	}
	if p2.Stream() != s || s.State() != StateLive || s.Session().ID != 2 {
		t.Fatalf("after takeover: same stream %v, state %s, session %d", p2.Stream() == s, s.State(), s.Session().ID)
	}
	expectOpen(t, p2.Done(), "new publisher's Done")

	// The old publisher's late writes and Close do not reach the stream.
	p1.WriteUnit(frame(v1, 1, false))
	p1.Close(io.EOF)
	if !errors.Is(p1.Err(), ErrTakenOver) {
		t.Fatalf("old publisher Err after Close = %v, want ErrTakenOver", p1.Err())
	}
	if s.State() != StateLive {
		t.Fatalf("old publisher's Close changed the state to %s", s.State())
	}
	sess := expectSession(t, r, 2)
	if sess.RemoteAddr != "new" || sess.Tracks[0] != v2 {
		t.Fatalf("session 2 = %+v", sess)
	}
	k2 := frame(v2, 0, true)
	p2.WriteUnit(k2)
	expectAU(t, r, k2)
	expectNoItem(t, r)
	if !strings.Contains(logs.String(), ErrTakenOver.Error()) {
		t.Errorf("takeover not logged:\n%s", logs)
	}
}

func TestKick(t *testing.T) {
	checkGoroutines(t)
	h, logs := newTestHub(t, HubConfig{GracePeriod: time.Minute})
	v := videoTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v)
	s := p.Stream()
	r := mustReader(t, s)
	expectSession(t, r, 1)

	if err := h.Kick("live/x"); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, p.Done(), "kicked publisher's Done")
	if !errors.Is(p.Err(), ErrKicked) {
		t.Fatalf("Err = %v, want ErrKicked", p.Err())
	}
	if s.State() != StateReconnecting {
		t.Fatalf("state after kick = %s, want reconnecting", s.State())
	}
	// A kicked publisher that keeps writing reaches nobody.
	p.WriteUnit(frame(v, 0, true))
	expectNoItem(t, r)
	if err := h.Kick("live/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Kick = %v, want ErrNotFound", err)
	}
	if err := h.Kick("live/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Kick(unknown) = %v, want ErrNotFound", err)
	}
	p.Close(io.EOF)
	p.Close(nil)
	if !errors.Is(p.Err(), ErrKicked) {
		t.Fatalf("Err after Close = %v, want ErrKicked", p.Err())
	}
	if !strings.Contains(logs.String(), "reason=\""+ErrKicked.Error()+"\"") {
		t.Errorf("kick not logged with its reason:\n%s", logs)
	}
	// The stream waits in its grace period: the publisher may come back.
	p2 := mustPublish(t, h, "live/x", PublishOptions{}, v)
	if p2.Stream() != s {
		t.Fatal("publish after kick made a new stream")
	}
	expectSession(t, r, 2)
}

func TestKickWithoutGraceEnds(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{GracePeriod: -1})
	p := mustPublish(t, h, "live/x", PublishOptions{}, audioTrack())
	s := p.Stream()
	if err := h.Kick("live/x"); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, p.Done(), "Done")
	expectClosed(t, s.Ended(), "Ended")
	if !errors.Is(p.Err(), ErrKicked) {
		t.Fatalf("Err = %v, want ErrKicked", p.Err())
	}
}

func TestPublisherCloseIdempotent(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{GracePeriod: -1})
	p := mustPublish(t, h, "live/x", PublishOptions{}, audioTrack())
	p.Close(io.ErrUnexpectedEOF)
	p.Close(nil)
	expectClosed(t, p.Done(), "Done")
	if !errors.Is(p.Err(), io.ErrUnexpectedEOF) {
		t.Fatalf("Err = %v, want the Close reason", p.Err())
	}
	expectClosed(t, p.Stream().Ended(), "Ended")
	p.WriteUnit(frame(audioTrack(), 0, true)) // ignored, no panic
	p.AddBytesIn(10)
	p.Close(nil)
}

func TestGraceReconnectContinuesStream(t *testing.T) {
	checkGoroutines(t)
	// A long grace period: the test reconnects well within it.
	h, _ := newTestHub(t, HubConfig{GracePeriod: time.Minute})
	v := videoTrack()
	p1 := mustPublish(t, h, "live/x", PublishOptions{}, v)
	s := p1.Stream()
	r := mustReader(t, s)
	expectSession(t, r, 1)
	k := frame(v, 0, true)
	p1.WriteUnit(k)

	p1.Close(io.EOF)
	expectClosed(t, p1.Done(), "Done")
	if s.State() != StateReconnecting {
		t.Fatalf("state = %s, want reconnecting", s.State())
	}
	if got, err := h.Get("live/x"); err != nil || got != s {
		t.Fatalf("Get during grace = %v, %v", got, err)
	}
	expectOpen(t, s.Ended(), "Ended")
	// A reader may join during the grace period.
	late := mustReader(t, s)
	expectSession(t, late, 1)
	expectAU(t, late, k)

	v2, a2 := videoTrack(), audioTrack()
	p2 := mustPublish(t, h, "live/x", PublishOptions{Protocol: "srt"}, v2, a2)
	if p2.Stream() != s || s.State() != StateLive {
		t.Fatalf("reconnect: same stream %v, state %s", p2.Stream() == s, s.State())
	}
	k2, a := frame(v2, 0, true), frame(a2, 0, true)
	p2.WriteUnit(k2)
	p2.WriteUnit(a)
	for _, rd := range []*Reader{r, late} {
		if rd == r {
			expectAU(t, rd, k)
		}
		sess := expectSession(t, rd, 2)
		if sess.Protocol != "srt" || len(sess.Tracks) != 2 {
			t.Fatalf("session 2 = %+v", sess)
		}
		expectAU(t, rd, k2)
		expectAU(t, rd, a)
		expectNoItem(t, rd)
	}
	if s.Info().Session != 2 {
		t.Fatalf("Info().Session = %d", s.Info().Session)
	}
}

func TestGraceExpiryEndsStream(t *testing.T) {
	checkGoroutines(t)
	h, logs := newTestHub(t, HubConfig{GracePeriod: 50 * time.Millisecond})
	v := videoTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v)
	s := p.Stream()
	r := mustReader(t, s)
	aus := []*AccessUnit{frame(v, 0, true), frame(v, 1, false), frame(v, 2, false)}
	for _, au := range aus {
		p.WriteUnit(au)
	}
	p.Close(nil)
	expectClosed(t, s.Ended(), "Ended")
	if s.State() != StateEnded {
		t.Fatalf("state = %s, want ended", s.State())
	}
	// Ended closes after the name is released.
	if _, err := h.Get("live/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after end = %v, want ErrNotFound", err)
	}
	if len(h.Streams()) != 0 {
		t.Fatal("ended stream still listed")
	}
	// The reader drains what was queued, then sees the end.
	expectSession(t, r, 1)
	for _, au := range aus {
		expectAU(t, r, au)
	}
	expectErr(t, r, ErrStreamEnded)
	expectErr(t, r, ErrStreamEnded)
	if _, err := s.NewReader("test", ""); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("NewReader on ended stream = %v, want ErrStreamEnded", err)
	}
	if !strings.Contains(logs.String(), "stream ended") {
		t.Errorf("end not logged:\n%s", logs)
	}
	// The name is free again: a new publish makes a new stream.
	p2 := mustPublish(t, h, "live/x", PublishOptions{}, v)
	if p2.Stream() == s || p2.Session().ID != 1 {
		t.Fatalf("publish after end: same stream %v, session %d", p2.Stream() == s, p2.Session().ID)
	}
}

func TestGraceTimerAfterReconnectIsHarmless(t *testing.T) {
	checkGoroutines(t)
	const grace = 20 * time.Millisecond
	h, _ := newTestHub(t, HubConfig{GracePeriod: grace})
	p := mustPublish(t, h, "live/x", PublishOptions{}, audioTrack())
	s := p.Stream()
	for range 5 {
		p.Close(nil)
		p = mustPublish(t, h, "live/x", PublishOptions{}, audioTrack())
		if p.Stream() != s {
			// The grace period expired before we reconnected (a very slow
			// machine): nothing to check about stale timers then.
			t.Skip("reconnect took longer than the grace period")
		}
	}
	// Let every stopped timer's deadline pass: the stream stays live.
	time.Sleep(5 * grace)
	if s.State() != StateLive {
		t.Fatalf("state = %s, want live", s.State())
	}
	expectOpen(t, s.Ended(), "Ended")
	expectOpen(t, p.Done(), "Done")
}

func TestNoGracePeriod(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{GracePeriod: -1})
	p := mustPublish(t, h, "live/x", PublishOptions{}, audioTrack())
	s := p.Stream()
	r := mustReader(t, s)
	p.Close(nil)
	expectClosed(t, s.Ended(), "Ended")
	expectSession(t, r, 1)
	expectErr(t, r, ErrStreamEnded)
	if _, err := h.Get("live/x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
}

func TestHubClose(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{GracePeriod: time.Minute})
	live := mustPublish(t, h, "live/a", PublishOptions{}, audioTrack())
	waiting := mustPublish(t, h, "live/b", PublishOptions{}, audioTrack())
	waiting.Close(nil)
	ra := mustReader(t, live.Stream())
	rb := mustReader(t, waiting.Stream())

	h.Close()
	h.Close()
	expectClosed(t, live.Done(), "live publisher's Done")
	if !errors.Is(live.Err(), ErrHubClosed) {
		t.Fatalf("Err = %v, want ErrHubClosed", live.Err())
	}
	expectClosed(t, live.Stream().Ended(), "Ended")
	expectClosed(t, waiting.Stream().Ended(), "Ended")
	expectSession(t, ra, 1)
	expectErr(t, ra, ErrStreamEnded)
	expectSession(t, rb, 1)
	expectErr(t, rb, ErrStreamEnded)
	if _, err := h.Publish("live/c", []*Track{audioTrack()}, PublishOptions{}); !errors.Is(err, ErrHubClosed) {
		t.Fatalf("Publish after Close = %v, want ErrHubClosed", err)
	}
	if n := len(h.Streams()); n != 0 {
		t.Fatalf("%d streams after Close", n)
	}
	live.Close(nil)
}

func TestObserverAttachesReaderFromStart(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{GracePeriod: time.Minute})
	readers := make(chan *Reader, 4)
	created := 0
	h.OnStreamCreated(func(s *Stream) {
		created++
		// Observers may use the hub and the stream without deadlocking.
		if got, err := h.Get(s.Name()); err != nil || got != s {
			t.Errorf("Get from observer = %v, %v", got, err)
		}
		_ = h.Streams()
		_ = s.Info()
		r, err := s.NewReader("recorder", "")
		if err != nil {
			t.Errorf("NewReader from observer: %v", err)
			return
		}
		readers <- r
	})
	v, a := videoTrack(), audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v, a)
	r := <-readers
	defer r.Close()
	// Even audio written before the first keyframe reaches the early reader,
	// and its first video frame is a keyframe.
	aus := []*AccessUnit{frame(a, 0, true), frame(v, 0, true), frame(a, 1, true), frame(v, 1, false)}
	for _, au := range aus {
		p.WriteUnit(au)
	}
	expectSession(t, r, 1)
	for _, au := range aus {
		expectAU(t, r, au)
	}
	// A reconnect continues the stream: observers are not called again.
	p.Close(nil)
	mustPublish(t, h, "live/x", PublishOptions{}, v, a)
	if created != 1 {
		t.Fatalf("observer called %d times, want 1", created)
	}
	expectSession(t, r, 2)
}

func TestReaderCloseAndContext(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	a := audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, a)
	s := p.Stream()
	r1, r2 := mustReader(t, s), mustReader(t, s)
	if r1.Info().ID == r2.Info().ID || r1.Info().Kind != "test" {
		t.Fatalf("reader infos %+v %+v", r1.Info(), r2.Info())
	}
	if got := s.Readers(); len(got) != 2 || got[0].ID != r1.Info().ID || got[1].ID != r2.Info().ID {
		t.Fatalf("Readers() = %+v", got)
	}
	r1.Close()
	r1.Close()
	if got := s.Readers(); len(got) != 1 || got[0].ID != r2.Info().ID {
		t.Fatalf("Readers() after Close = %+v", got)
	}
	au := frame(a, 0, true)
	p.WriteUnit(au)
	expectSession(t, r1, 1) // queued before Close
	expectErr(t, r1, ErrStreamEnded)
	expectSession(t, r2, 1)
	expectAU(t, r2, au)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r2.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with canceled ctx = %v", err)
	}
	// A Read blocked on an empty queue returns when its context ends.
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := r2.Read(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("blocked Read = %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("blocked Read ignored its context")
	}
	// Closing the last reader leaves the stream live.
	r2.Close()
	if s.State() != StateLive || len(s.Readers()) != 0 {
		t.Fatalf("state %s, %d readers", s.State(), len(s.Readers()))
	}
}

func TestPublishRacesGraceExpiry(t *testing.T) {
	checkGoroutines(t)
	// Reconnects land around the moment the grace period expires: each
	// Publish must either continue the stream or start a new one, never
	// fail with ErrStreamEnded.
	h, _ := newTestHub(t, HubConfig{GracePeriod: time.Millisecond})
	for i := range 200 {
		p, err := h.Publish("live/x", []*Track{audioTrack()}, PublishOptions{})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if i%3 == 0 {
			time.Sleep(time.Millisecond)
		}
		p.Close(nil)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	p := mustPublish(t, h, "live/x", PublishOptions{}, audioTrack())
	r := mustReader(t, p.Stream())
	expectSession(t, r, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := r.Read(context.Background())
		errc <- err
	}()
	r.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStreamEnded) {
			t.Fatalf("Read after Close = %v, want ErrStreamEnded", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Close did not unblock Read")
	}
}

func TestWriteUnitBadInput(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	a := audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, a)
	r := mustReader(t, p.Stream())
	expectSession(t, r, 1)
	p.WriteUnit(nil)
	p.WriteUnit(&AccessUnit{})
	p.WriteUnit(&AccessUnit{Track: &Track{}})
	// A track from outside the session (index out of range) is delivered
	// but not counted in the statistics.
	stray := &AccessUnit{Track: &Track{Index: 7, Codec: a.Codec}, Key: true}
	p.WriteUnit(stray)
	expectAU(t, r, stray)
	expectNoItem(t, r)
}

// WhenDone runs its function when the hub wants the publisher gone (a
// kick here), with the reason, and not after it was called off.
func TestPublisherWhenDone(t *testing.T) {
	h, _ := newTestHub(t, HubConfig{})
	v, a := videoTrack(), audioTrack()
	p := mustPublish(t, h, "live/w1", PublishOptions{Protocol: "test"}, v, a)
	got := make(chan error, 1)
	stop := p.WhenDone(func(reason error) { got <- reason })
	if err := h.Kick("live/w1"); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-got:
		if !errors.Is(reason, ErrKicked) {
			t.Fatalf("reason %v, want ErrKicked", reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WhenDone did not run on a kick")
	}
	stop()
	stop() // idempotent

	p2 := mustPublish(t, h, "live/w2", PublishOptions{Protocol: "test"}, v, a)
	called := false
	stop2 := p2.WhenDone(func(error) { called = true })
	stop2()
	p2.Close(nil)
	if called {
		t.Fatal("WhenDone ran after it was called off")
	}
}
