package stream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSlowReaderDropped: one reader never reads, another keeps up while the
// publisher writes far more than a queue holds. The publisher never blocks,
// the fast reader gets everything in order, the slow one is dropped with
// ErrSlowReader after it drains what was queued.
func TestSlowReaderDropped(t *testing.T) {
	checkGoroutines(t)
	const (
		queue = 64
		total = 5000
		batch = queue / 2
	)
	h, logs := newTestHub(t, HubConfig{ReaderQueue: queue, GOPCacheLimit: 8})
	v := videoTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v)
	s := p.Stream()
	slow := mustReader(t, s)
	fast := mustReader(t, s)
	if cap(slow.queue) != queue {
		t.Fatalf("queue capacity %d, want %d", cap(slow.queue), queue)
	}

	aus := make([]*AccessUnit, total)
	for i := range aus {
		aus[i] = frame(v, i, i%30 == 0)
	}

	// The fast reader acknowledges every batch, and the publisher waits for
	// that before the next batch, so it can never outrun the fast reader:
	// that queue holds at most the session item and one batch. These waits
	// are on the test's side, between WriteUnit calls.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acks := make(chan int, total/batch+1)
	fastErr := make(chan error, 1)
	go func() {
		fastErr <- func() error {
			it, err := fast.Read(ctx)
			if err != nil || it.Session == nil || it.Session.ID != 1 {
				return fmt.Errorf("first item %s, err %v; want session 1", describe(it), err)
			}
			for i := range total {
				it, err := fast.Read(ctx)
				if err != nil {
					return fmt.Errorf("item %d: %w", i, err)
				}
				if it.AU != aus[i] {
					return fmt.Errorf("item %d: got %s, want %s", i, describe(it), describe(Item{AU: aus[i]}))
				}
				if (i+1)%batch == 0 {
					acks <- i + 1
				}
			}
			return nil
		}()
	}()

	pubDone := make(chan error, 1)
	go func() {
		pubDone <- func() error {
			for i, au := range aus {
				p.WriteUnit(au)
				if (i+1)%batch == 0 {
					// Wait until the fast reader has this batch.
					select {
					case <-acks:
					case err := <-fastErr:
						return fmt.Errorf("fast reader stopped: %v", err)
					case <-time.After(waitTimeout):
						return fmt.Errorf("fast reader stuck after %d writes", i+1)
					}
				}
			}
			return nil
		}()
	}()
	select {
	case err := <-pubDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("publisher blocked: WriteUnit stalls on a reader")
	}
	select {
	case err := <-fastErr:
		if err != nil {
			t.Fatalf("fast reader: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("fast reader did not get every access unit")
	}

	// The slow reader was dropped; it drains a full queue, then sees why.
	if got := s.Readers(); len(got) != 1 || got[0].ID != fast.Info().ID {
		t.Fatalf("Readers() = %+v, want only the fast reader", got)
	}
	expectSession(t, slow, 1)
	for i := range queue - 1 {
		expectAU(t, slow, aus[i])
	}
	expectErr(t, slow, ErrSlowReader)
	expectErr(t, slow, ErrSlowReader)
	slow.Close() // after the drop: harmless
	log := logs.String()
	if !strings.Contains(log, "reader dropped") || !strings.Contains(log, ErrSlowReader.Error()) ||
		!strings.Contains(log, fmt.Sprintf("reader=%d", slow.Info().ID)) {
		t.Errorf("drop not logged with a reason:\n%s", log)
	}
	if s.State() != StateLive {
		t.Fatalf("state = %s", s.State())
	}
}

// TestStalledReadersNeverBlockPublisher: with no reader reading at all, the
// publisher still writes everything, and each reader is dropped once its
// queue is full.
func TestStalledReadersNeverBlockPublisher(t *testing.T) {
	checkGoroutines(t)
	const queue = 32
	h, _ := newTestHub(t, HubConfig{ReaderQueue: queue, GOPCacheLimit: 4})
	a := audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, a)
	s := p.Stream()
	readers := []*Reader{mustReader(t, s), mustReader(t, s), mustReader(t, s)}
	aus := make([]*AccessUnit, 10000)
	for i := range aus {
		aus[i] = frame(a, i, true)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, au := range aus {
			p.WriteUnit(au)
		}
	}()
	expectClosed(t, done, "publisher loop (WriteUnit blocked)")
	if n := len(s.Readers()); n != 0 {
		t.Fatalf("%d readers still attached", n)
	}
	for _, r := range readers {
		expectSession(t, r, 1)
		for _, au := range aus[:queue-1] {
			expectAU(t, r, au)
		}
		expectErr(t, r, ErrSlowReader)
	}
	// A new reader can still attach, and the stream goes on.
	r := mustReader(t, s)
	expectSession(t, r, 1)
	au := frame(a, len(aus), true)
	p.WriteUnit(au)
	expectAU(t, r, au)
}

// gopStream publishes video+audio: V0k A0 V1 A1 V2k A2 V3 A3 and returns
// the access units written.
func gopStream(t *testing.T, h *Hub) (*Publisher, *Track, *Track, []*AccessUnit) {
	t.Helper()
	v, a := videoTrack(), audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v, a)
	var aus []*AccessUnit
	for i := range 4 {
		aus = append(aus, frame(v, i, i%2 == 0), frame(a, i, true))
	}
	for _, au := range aus {
		p.WriteUnit(au)
	}
	return p, v, a, aus
}

func TestGOPCacheNewReaderStartsOnKeyframe(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	p, v, a, aus := gopStream(t, h)
	r := mustReader(t, p.Stream())
	expectSession(t, r, 1)
	// The last keyframe and every access unit since, audio included.
	for _, au := range aus[4:] {
		expectAU(t, r, au)
	}
	expectNoItem(t, r)
	next := []*AccessUnit{frame(v, 4, false), frame(a, 4, true)}
	for _, au := range next {
		p.WriteUnit(au)
	}
	for _, au := range next {
		expectAU(t, r, au)
	}
	// Another reader after more frames gets the grown GOP.
	r2 := mustReader(t, p.Stream())
	expectSession(t, r2, 1)
	for _, au := range append(aus[4:], next...) {
		expectAU(t, r2, au)
	}
}

func TestGOPCacheLimit(t *testing.T) {
	checkGoroutines(t)
	const limit = 4
	h, _ := newTestHub(t, HubConfig{GOPCacheLimit: limit})
	v, a := videoTrack(), audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v, a)
	s := p.Stream()
	gop := []*AccessUnit{frame(v, 0, true), frame(a, 0, true), frame(v, 1, false), frame(a, 1, true)}
	for _, au := range gop {
		p.WriteUnit(au)
	}
	// Exactly the limit: cached.
	r1 := mustReader(t, s)
	expectSession(t, r1, 1)
	for _, au := range gop {
		expectAU(t, r1, au)
	}
	expectNoItem(t, r1)

	// One more: the GOP is too long to cache.
	over := frame(v, 2, false)
	p.WriteUnit(over)
	expectAU(t, r1, over)
	r2 := mustReader(t, s)
	expectSession(t, r2, 1)
	expectNoItem(t, r2)
	if n := len(s.gop); n > limit {
		t.Fatalf("GOP cache holds %d units, limit %d", n, limit)
	}

	// r2 joined mid-GOP: it skips video up to the next keyframe (audio goes
	// through), so the first video frame it sees decodes.
	rest := []*AccessUnit{frame(v, 3, false), frame(a, 2, true), frame(v, 4, true), frame(v, 5, false)}
	for _, au := range rest {
		p.WriteUnit(au)
	}
	for _, au := range rest {
		expectAU(t, r1, au)
	}
	expectAU(t, r2, rest[1])
	expectAU(t, r2, rest[2])
	expectAU(t, r2, rest[3])
	expectNoItem(t, r2)

	// The next keyframe makes the cache usable again.
	r3 := mustReader(t, s)
	expectSession(t, r3, 1)
	expectAU(t, r3, rest[2])
	expectAU(t, r3, rest[3])
	expectNoItem(t, r3)
}

func TestGOPCacheLimitLongStream(t *testing.T) {
	checkGoroutines(t)
	// A keyframe every 100 frames with a limit of 10: the cache never grows
	// past the limit, and every reader that joins sees a keyframe first.
	const limit = 10
	h, _ := newTestHub(t, HubConfig{GOPCacheLimit: limit})
	v := videoTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v)
	s := p.Stream()
	for i := range 1000 {
		p.WriteUnit(frame(v, i, i%100 == 0))
		s.mu.Lock()
		n := len(s.gop)
		s.mu.Unlock()
		if n > limit {
			t.Fatalf("frame %d: GOP cache holds %d units", i, n)
		}
		if i%37 == 0 {
			r, err := s.NewReader("late", "")
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
			expectSession(t, r, 1)
			if it, err := r.Read(context.Background()); err == nil && !it.AU.Key {
				t.Fatalf("reader joining at frame %d starts on %s", i, describe(it))
			}
		}
	}
}

func TestAudioOnlyReaderStartsAtNextAU(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{})
	a := audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, a)
	for i := range 5 {
		p.WriteUnit(frame(a, i, true))
	}
	r := mustReader(t, p.Stream())
	expectSession(t, r, 1)
	expectNoItem(t, r)
	next := frame(a, 5, true)
	p.WriteUnit(next)
	expectAU(t, r, next)
}

func TestReaderWaitsForFirstKeyframe(t *testing.T) {
	checkGoroutines(t)
	// Some ingests (MPEG-TS over SRT) start mid-GOP: readers skip video up to
	// the first keyframe of the session.
	h, _ := newTestHub(t, HubConfig{GracePeriod: time.Minute})
	v, a := videoTrack(), audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v, a)
	s := p.Stream()
	early := mustReader(t, s)
	aus := []*AccessUnit{frame(v, 0, false), frame(a, 0, true), frame(v, 1, false), frame(v, 2, true), frame(v, 3, false)}
	for i, au := range aus {
		p.WriteUnit(au)
		if i == 1 {
			mid := mustReader(t, s)
			defer func() {
				expectSession(t, mid, 1)
				expectAU(t, mid, aus[3])
				expectAU(t, mid, aus[4])
			}()
		}
	}
	expectSession(t, early, 1)
	expectAU(t, early, aus[1])
	expectAU(t, early, aus[3])
	expectAU(t, early, aus[4])

	// After a reconnect, the same holds for the new session.
	p.Close(nil)
	p = mustPublish(t, h, "live/x", PublishOptions{}, v, a)
	p.WriteUnit(frame(v, 0, false))
	k := frame(v, 1, true)
	p.WriteUnit(k)
	expectSession(t, early, 2)
	expectAU(t, early, k)
}

// TestWriteUnitNoAllocs: fanning an access unit out allocates nothing.
func TestWriteUnitNoAllocs(t *testing.T) {
	const readers, runs = 100, 500
	h, _ := newTestHub(t, HubConfig{ReaderQueue: 2 * runs, GOPCacheLimit: 64})
	v, a := videoTrack(), audioTrack()
	p := mustPublish(t, h, "live/x", PublishOptions{}, v, a)
	for range readers {
		mustReader(t, p.Stream())
	}
	aus := make([]*AccessUnit, runs+1)
	for i := range aus {
		if i%2 == 0 {
			aus[i] = frame(v, i, i%60 == 0)
		} else {
			aus[i] = frame(a, i, true)
		}
	}
	i := 0
	allocs := testing.AllocsPerRun(runs, func() {
		p.WriteUnit(aus[i])
		i++
	})
	if allocs != 0 {
		t.Fatalf("WriteUnit to %d readers: %.1f allocs per access unit, want 0", readers, allocs)
	}
	if n := len(p.Stream().Readers()); n != readers {
		t.Fatalf("%d readers left, want %d", n, readers)
	}
}

// TestConcurrentLifecycle hammers the hub from many goroutines (run it with
// -race): publishers come, go and take over, readers join and leave, kicks
// and snapshots interleave, and finally the hub closes. Nothing may panic,
// deadlock or leak.
func TestConcurrentLifecycle(t *testing.T) {
	checkGoroutines(t)
	h, _ := newTestHub(t, HubConfig{GracePeriod: 2 * time.Millisecond, ReaderQueue: 40, GOPCacheLimit: 16})
	h.OnStreamCreated(func(s *Stream) {
		if r, err := s.NewReader("observer", ""); err == nil {
			go drain(r, nil)
		}
	})
	names := []string{"live/a", "live/b", "live/c"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var published, read atomic.Int64
	for w := range 4 {
		wg.Go(func() { // publishers
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, a := videoTrack(), audioTrack()
				p, err := h.Publish(names[rng.IntN(len(names))], []*Track{v, a}, PublishOptions{Takeover: rng.IntN(2) == 0})
				if err != nil {
					if !errors.Is(err, ErrAlreadyPublishing) && !errors.Is(err, ErrHubClosed) {
						t.Errorf("Publish: %v", err)
					}
					time.Sleep(time.Millisecond)
					continue
				}
				published.Add(1)
			write:
				for i := range rng.IntN(200) {
					if i%50 == 49 {
						// Mostly ignore Done, to exercise writes after a
						// kick or takeover; sometimes obey it.
						select {
						case <-p.Done():
							if rng.IntN(2) == 0 {
								break write
							}
						default:
						}
					}
					p.WriteUnit(frame(v, i, i%25 == 0))
					p.WriteUnit(frame(a, i, true))
					p.AddBytesIn(200)
				}
				p.Close(nil)
			}
		})
	}
	for w := range 4 {
		wg.Go(func() { // readers
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := h.Get(names[rng.IntN(len(names))])
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				r, err := s.NewReader("player", "")
				if err != nil {
					continue
				}
				n := rng.IntN(100)
				for range n {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
					_, err := r.Read(ctx)
					cancel()
					if err != nil && !errors.Is(err, context.DeadlineExceeded) {
						break
					}
					read.Add(1)
					s.AddBytesOut(100)
				}
				r.Close()
			}
		})
	}
	wg.Go(func() { // kicks and snapshots
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = h.Kick(names[i%len(names)])
			for _, s := range h.Streams() {
				_ = s.Info()
				_ = s.Readers()
				_ = s.State()
				_ = s.Session()
			}
			time.Sleep(time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	h.Close()
	close(stop)
	wg.Wait()
	if published.Load() == 0 {
		t.Fatal("no publish succeeded")
	}
	t.Logf("%d sessions, %d items read", published.Load(), read.Load())
}

// drain reads r until it errs, counting access units.
func drain(r *Reader, n *atomic.Int64) error {
	for {
		it, err := r.Read(context.Background())
		if err != nil {
			return err
		}
		if n != nil && it.AU != nil {
			n.Add(1)
		}
	}
}

// BenchmarkFanOut: one publisher, 100 readers draining in their own
// goroutines. One op is one WriteUnit; allocs/op must be 0.
func BenchmarkFanOut(b *testing.B) {
	checkGoroutines(b)
	const readers = 100
	const window = 1024 // writes the publisher may be ahead of the slowest reader
	h, _ := newTestHub(b, HubConfig{ReaderQueue: 2 * window, GOPCacheLimit: 256})
	v := videoTrack()
	p := mustPublish(b, h, "live/bench", PublishOptions{}, v)
	s := p.Stream()
	counts := make([]atomic.Int64, readers)
	errs := make(chan error, readers)
	for i := range readers {
		r := mustReader(b, s)
		go func() { errs <- drain(r, &counts[i]) }()
	}
	aus := make([]*AccessUnit, 256)
	for i := range aus {
		aus[i] = frame(v, i, i%64 == 0)
	}
	minCount := func() int64 {
		m := counts[0].Load()
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.WriteUnit(aus[i%len(aus)])
		if (i+1)%window == 0 {
			// Pace to the readers so none is dropped; this spin allocates
			// nothing.
			for minCount() < int64(i+1-window) {
				runtime.Gosched()
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(readers), "readers")
	if n := len(s.Readers()); n != readers {
		b.Fatalf("%d of %d readers dropped", readers-n, readers)
	}
	h.Close()
	for range readers {
		if err := <-errs; !errors.Is(err, ErrStreamEnded) {
			b.Fatalf("reader: %v", err)
		}
	}
}
