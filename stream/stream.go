package stream

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// State is the life-cycle state of a stream.
type State string

// Stream states.
const (
	StateLive         State = "live"
	StateReconnecting State = "reconnecting"
	StateEnded        State = "ended"
)

// Session is one publisher's connection. A stream has a new session after
// each reconnect; readers see it as a discontinuity.
type Session struct {
	ID         int
	Tracks     []*Track
	Protocol   string
	RemoteAddr string
	Started    time.Time
}

// Stream is a named live stream: one publisher at a time, many readers.
type Stream struct {
	hub     *Hub
	name    string
	created time.Time

	mu         sync.Mutex
	state      State
	session    *Session
	publisher  *Publisher
	sessions   int
	readers    []*Reader // Reader.index is the position here
	nextReader int
	hasVideo   bool // the session has a video track
	gop        []*AccessUnit
	gopValid   bool // gop starts on a video keyframe (or has no video)
	graceTimer *time.Timer
	ended      chan struct{}

	stats streamStats
}

func newStream(h *Hub, name string) *Stream {
	return &Stream{
		hub:     h,
		name:    name,
		created: time.Now(),
		state:   StateReconnecting,
		ended:   make(chan struct{}),
	}
}

// Name returns the stream's full name, such as "live/cam1".
func (s *Stream) Name() string { return s.name }

// Ended is closed when the stream has ended for good.
func (s *Stream) Ended() <-chan struct{} { return s.ended }

// State returns the stream's state.
func (s *Stream) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Session returns the current (or last) publishing session.
func (s *Stream) Session() *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.session
}

// AddBytesOut counts bytes delivered to players of this stream.
func (s *Stream) AddBytesOut(n int) { s.stats.bytesOut.Add(uint64(n)) }

func (s *Stream) startSession(tracks []*Track, opts PublishOptions) (*Publisher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case StateEnded:
		return nil, fmt.Errorf("publish %s: %w", s.name, ErrStreamEnded)
	case StateLive:
		if !opts.Takeover {
			return nil, fmt.Errorf("publish %s: %w", s.name, ErrAlreadyPublishing)
		}
		old := s.publisher
		old.stop(ErrTakenOver)
		s.hub.log.Info("unpublish", "stream", s.name, "protocol", old.session.Protocol, "remote", old.session.RemoteAddr,
			"session", old.session.ID, "reason", ErrTakenOver.Error())
	}
	if s.graceTimer != nil {
		s.graceTimer.Stop()
		s.graceTimer = nil
	}
	s.sessions++
	s.session = &Session{
		ID:         s.sessions,
		Tracks:     tracks,
		Protocol:   opts.Protocol,
		RemoteAddr: opts.RemoteAddr,
		Started:    time.Now(),
	}
	s.state = StateLive
	clear(s.gop)
	s.gop = s.gop[:0]
	s.hasVideo = hasVideo(tracks)
	s.gopValid = !s.hasVideo
	s.stats.startSession(tracks)
	p := &Publisher{stream: s, session: s.session, done: make(chan struct{})}
	s.publisher = p
	it := Item{Session: s.session}
	for i := 0; i < len(s.readers); {
		r := s.readers[i]
		// Timestamps restart and decoders reset: wait for a keyframe again.
		r.waitKey = s.hasVideo
		if s.push(r, it) {
			i++
		}
	}
	return p, nil
}

// write fans au out to every reader. Called by the publisher only.
func (s *Stream) write(p *Publisher, au *AccessUnit) {
	if au == nil || au.Track == nil || au.Track.Codec == nil {
		return
	}
	video := au.Track.IsVideo()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publisher != p {
		return
	}
	s.stats.record(au)
	if s.hasVideo {
		if video && au.Key {
			clear(s.gop)
			s.gop = s.gop[:0]
			s.gopValid = true
		}
		if s.gopValid {
			if len(s.gop) < s.hub.cfg.GOPCacheLimit {
				s.gop = append(s.gop, au)
			} else {
				// Too long a GOP: stop caching until the next keyframe;
				// readers that join meanwhile wait for that keyframe.
				clear(s.gop)
				s.gop = s.gop[:0]
				s.gopValid = false
			}
		}
	}
	it := Item{AU: au}
	// push may drop r, which moves the last reader into slot i.
	for i := 0; i < len(s.readers); {
		r := s.readers[i]
		if r.waitKey && video {
			if !au.Key {
				i++
				continue
			}
			r.waitKey = false
		}
		if s.push(r, it) {
			i++
		}
	}
}

// push queues it for r without blocking; a full queue drops the reader.
// It reports whether r is still attached. Called with s.mu held.
func (s *Stream) push(r *Reader, it Item) bool {
	select {
	case r.queue <- it:
		return true
	default:
		s.dropLocked(r, ErrSlowReader)
		s.hub.log.Warn("reader dropped", "stream", s.name, "reader", r.info.ID, "kind", r.info.Kind,
			"remote", r.info.RemoteAddr, "reason", ErrSlowReader.Error(), "queue", cap(r.queue))
		return false
	}
}

// dropLocked detaches r: its queue is closed so that Read returns what is
// left in it and then err. Called with s.mu held; a no-op for a detached r.
func (s *Stream) dropLocked(r *Reader, err error) {
	i := r.index
	if i < 0 || i >= len(s.readers) || s.readers[i] != r {
		return
	}
	last := len(s.readers) - 1
	s.readers[i] = s.readers[last]
	s.readers[i].index = i
	s.readers[last] = nil
	s.readers = s.readers[:last]
	r.index = -1
	r.err = err
	close(r.queue)
}

// unpublish is called when p's connection ends.
func (s *Stream) unpublish(p *Publisher, reason error) {
	s.mu.Lock()
	if !s.unpublishLocked(p, reason) {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.end(ErrStreamEnded)
}

// unpublishLocked detaches p and starts the grace period. It reports whether
// the stream must end now (no grace period). Called with s.mu held.
func (s *Stream) unpublishLocked(p *Publisher, reason error) (endNow bool) {
	if s.publisher != p || s.state != StateLive {
		return false
	}
	s.publisher = nil
	s.state = StateReconnecting
	grace := s.hub.cfg.GracePeriod
	s.hub.log.Info("unpublish", "stream", s.name, "protocol", p.session.Protocol, "remote", p.session.RemoteAddr,
		"session", p.session.ID, "reason", errString(reason), "grace", grace)
	if grace <= 0 {
		return true
	}
	last := p.session
	s.graceTimer = time.AfterFunc(grace, func() { s.graceExpired(last) })
	return false
}

// graceExpired runs on the grace timer. The stream ends only if no
// publisher came back since last ended (the check and the end are atomic).
func (s *Stream) graceExpired(last *Session) {
	s.endIf(func() bool { return s.state == StateReconnecting && s.session == last }, ErrStreamEnded)
}

// end finishes the stream: readers drain their queues and then see
// ErrStreamEnded; a connected publisher sees reason on Done.
func (s *Stream) end(reason error) { s.endIf(nil, reason) }

func (s *Stream) endIf(cond func() bool, reason error) {
	s.mu.Lock()
	if s.state == StateEnded || (cond != nil && !cond()) {
		s.mu.Unlock()
		return
	}
	s.state = StateEnded
	if s.publisher != nil {
		s.publisher.stop(reason)
		s.publisher = nil
	}
	if s.graceTimer != nil {
		s.graceTimer.Stop()
		s.graceTimer = nil
	}
	for len(s.readers) > 0 {
		s.dropLocked(s.readers[len(s.readers)-1], ErrStreamEnded)
	}
	s.gop = nil
	// Leave the hub before Ended closes, so that whoever waits on Ended
	// finds the name free (lock order: Stream.mu, then Hub.mu).
	s.hub.remove(s)
	s.hub.log.Info("stream ended", "stream", s.name, "reason", errString(reason))
	close(s.ended)
	s.mu.Unlock()
}

// kick disconnects the publisher: its Done closes with ErrKicked, its
// further writes are ignored, and the stream enters its grace period.
func (s *Stream) kick() error {
	s.mu.Lock()
	p := s.publisher
	if p == nil {
		s.mu.Unlock()
		return fmt.Errorf("kick %s: no publisher connected: %w", s.name, ErrNotFound)
	}
	p.stop(ErrKicked)
	endNow := s.unpublishLocked(p, ErrKicked)
	s.mu.Unlock()
	if endNow {
		s.end(ErrKicked)
	}
	return nil
}

func hasVideo(tracks []*Track) bool {
	for _, t := range tracks {
		if t.IsVideo() {
			return true
		}
	}
	return false
}

func errString(err error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}

// Publisher writes one session's access units into its stream.
type Publisher struct {
	stream  *Stream
	session *Session
	once    sync.Once
	done    chan struct{}
	reason  atomic.Pointer[error]
	closed  atomic.Bool
}

// Stream returns the stream being published.
func (p *Publisher) Stream() *Stream { return p.stream }

// Session returns the publishing session.
func (p *Publisher) Session() *Session { return p.session }

// WriteUnit hands au to every reader. It never blocks on a reader: a reader
// whose queue is full is dropped with ErrSlowReader. It does not allocate.
// Writes after Close, a kick or a takeover are ignored, and so is an au
// without a track.
func (p *Publisher) WriteUnit(au *AccessUnit) { p.stream.write(p, au) }

// AddBytesIn counts bytes received from the encoder, for statistics.
func (p *Publisher) AddBytesIn(n int) { p.stream.stats.bytesIn.Add(uint64(n)) }

// Done is closed when the hub wants the publisher gone (kicked, taken
// over, or server shutdown), and by Close. The ingest code must then close
// its connection; the stream already ignores the publisher's writes.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// WhenDone calls fn (once, on its own goroutine) when Done closes, until
// the returned stop is called; stop waits for fn to have run or to be
// called off. Ingest uses it to close its connection when the hub wants
// the publisher gone, so that its blocked read returns.
func (p *Publisher) WhenDone(fn func(reason error)) (stop func()) {
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-p.done:
			fn(p.Err())
		case <-quit:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-exited
	}
}

// Err tells why Done was closed.
func (p *Publisher) Err() error {
	if v := p.reason.Load(); v != nil {
		return *v
	}
	return nil
}

func (p *Publisher) stop(reason error) {
	p.once.Do(func() {
		p.reason.Store(&reason)
		close(p.done)
	})
}

// Close ends the session because the connection ended (reason may be nil).
// The stream waits for a reconnect during the grace period. Close is
// idempotent and safe after Done has closed.
func (p *Publisher) Close(reason error) {
	if p.closed.Swap(true) {
		return
	}
	// If the hub already stopped p (kick, takeover, shutdown), that is the
	// reason to report; otherwise reason becomes Err.
	p.stop(reason)
	if r := p.Err(); r != nil {
		reason = r
	}
	p.stream.unpublish(p, reason)
}
