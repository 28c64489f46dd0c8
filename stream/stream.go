package stream

import (
	"errors"
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
	readers    map[*Reader]struct{}
	nextReader int
	gop        []*AccessUnit
	gopValid   bool
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
		readers: make(map[*Reader]struct{}),
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
		s.publisher.stop(ErrTakenOver)
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
	s.gop = s.gop[:0]
	s.gopValid = !hasVideo(tracks)
	s.stats.startSession(tracks)
	p := &Publisher{stream: s, session: s.session, done: make(chan struct{})}
	s.publisher = p
	for r := range s.readers {
		s.push(r, Item{Session: s.session})
	}
	return p, nil
}

// write fans au out to every reader. Called by the publisher only.
func (s *Stream) write(p *Publisher, au *AccessUnit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publisher != p {
		return
	}
	s.stats.record(au)
	if au.Track.IsVideo() && au.Key {
		clear(s.gop)
		s.gop = s.gop[:0]
		s.gopValid = true
	}
	if s.gopValid && hasVideo(s.session.Tracks) {
		if len(s.gop) < s.hub.cfg.GOPCacheLimit {
			s.gop = append(s.gop, au)
		} else {
			clear(s.gop)
			s.gop = s.gop[:0]
			s.gopValid = false
		}
	}
	it := Item{AU: au}
	for r := range s.readers {
		s.push(r, it)
	}
}

// push queues it for r without blocking; a full queue drops the reader.
// Called with s.mu held.
func (s *Stream) push(r *Reader, it Item) {
	select {
	case r.queue <- it:
	default:
		s.dropLocked(r, ErrSlowReader)
		s.hub.log.Warn("reader dropped", "stream", s.name, "reader", r.info.ID, "kind", r.info.Kind,
			"remote", r.info.RemoteAddr, "reason", ErrSlowReader.Error(), "queue", cap(r.queue))
	}
}

func (s *Stream) dropLocked(r *Reader, err error) {
	if _, ok := s.readers[r]; !ok {
		return
	}
	delete(s.readers, r)
	r.err = err
	close(r.queue)
}

// unpublish is called when p's connection ends.
func (s *Stream) unpublish(p *Publisher, reason error) {
	s.mu.Lock()
	if s.publisher != p {
		s.mu.Unlock()
		return
	}
	s.publisher = nil
	s.state = StateReconnecting
	grace := s.hub.cfg.GracePeriod
	s.hub.log.Info("unpublish", "stream", s.name, "protocol", p.session.Protocol, "remote", p.session.RemoteAddr,
		"session", p.session.ID, "reason", errString(reason), "grace", grace)
	if grace > 0 {
		s.graceTimer = time.AfterFunc(grace, func() { s.graceExpired(p.session) })
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.end(ErrStreamEnded)
}

func (s *Stream) graceExpired(last *Session) {
	s.mu.Lock()
	stillWaiting := s.state == StateReconnecting && s.session == last
	s.mu.Unlock()
	if stillWaiting {
		s.end(ErrStreamEnded)
	}
}

// end finishes the stream: readers drain their queues and then see reason.
func (s *Stream) end(reason error) {
	s.mu.Lock()
	if s.state == StateEnded {
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
	}
	for r := range s.readers {
		s.dropLocked(r, ErrStreamEnded)
	}
	s.gop = nil
	close(s.ended)
	s.mu.Unlock()
	s.hub.remove(s)
	s.hub.log.Info("stream ended", "stream", s.name, "reason", errString(reason))
}

func (s *Stream) kick() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publisher == nil {
		return fmt.Errorf("kick %s: no publisher connected: %w", s.name, ErrNotFound)
	}
	s.publisher.stop(ErrKicked)
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

// WriteUnit hands au to every reader. It never blocks on a reader.
func (p *Publisher) WriteUnit(au *AccessUnit) { p.stream.write(p, au) }

// AddBytesIn counts bytes received from the encoder, for statistics.
func (p *Publisher) AddBytesIn(n int) { p.stream.stats.bytesIn.Add(uint64(n)) }

// Done is closed when the hub wants the publisher gone (kicked, taken
// over, or server shutdown). The ingest code must then close its connection.
func (p *Publisher) Done() <-chan struct{} { return p.done }

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
// The stream waits for a reconnect during the grace period.
func (p *Publisher) Close(reason error) {
	if p.closed.Swap(true) {
		return
	}
	if r := p.Err(); r != nil && !errors.Is(reason, r) {
		reason = r
	}
	p.stop(reason)
	p.stream.unpublish(p, reason)
}
