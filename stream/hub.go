package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Errors that ingest code and the API match with errors.Is.
var (
	ErrAlreadyPublishing = errors.New("stream is already being published")
	ErrNotFound          = errors.New("stream not found")
	ErrStreamEnded       = errors.New("stream ended")
	ErrSlowReader        = errors.New("reader fell too far behind")
	ErrKicked            = errors.New("publisher kicked")
	ErrTakenOver         = errors.New("another publisher took over the stream")
	ErrHubClosed         = errors.New("hub closed")
)

// HubConfig configures a Hub. Zero values pick the defaults.
type HubConfig struct {
	// GracePeriod is how long a stream waits for its publisher to come back
	// before it ends. Zero means the default of 10 s; negative means none.
	GracePeriod time.Duration
	// ReaderQueue is the number of items a reader may lag behind before it
	// is dropped with ErrSlowReader. Default 2048; it is raised to at least
	// GOPCacheLimit+16 so that a new reader's cached GOP always fits.
	ReaderQueue int
	// GOPCacheLimit bounds the access units kept since the last keyframe.
	// Default 1024; a longer GOP is not cached.
	GOPCacheLimit int
	Logger        *slog.Logger
}

// PublishOptions describes a publisher.
type PublishOptions struct {
	Protocol   string
	RemoteAddr string
	// Takeover lets this publisher replace a live one instead of being refused.
	Takeover bool
}

// Hub is the registry of live streams. It is safe for concurrent use.
type Hub struct {
	cfg       HubConfig
	log       *slog.Logger
	mu        sync.Mutex
	streams   map[string]*Stream
	observers []func(*Stream)
	closed    bool
}

// NewHub returns an empty hub.
func NewHub(cfg HubConfig) *Hub {
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = 10 * time.Second
	}
	if cfg.GracePeriod < 0 {
		cfg.GracePeriod = 0
	}
	if cfg.ReaderQueue <= 0 {
		cfg.ReaderQueue = 2048
	}
	if cfg.GOPCacheLimit <= 0 {
		cfg.GOPCacheLimit = 1024
	}
	if cfg.ReaderQueue < cfg.GOPCacheLimit+16 {
		cfg.ReaderQueue = cfg.GOPCacheLimit + 16
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Hub{cfg: cfg, log: log, streams: make(map[string]*Stream)}
}

// OnStreamCreated registers fn to be called for each new stream, before its
// first access unit is written, so that fn can attach a reader that sees the
// stream from its start. fn runs on the publisher's goroutine and must not block.
func (h *Hub) OnStreamCreated(fn func(*Stream)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.observers = append(h.observers, fn)
}

// Publish starts a publishing session on name. A stream waiting in its grace
// period is continued (same *Stream, readers get the new Session); a live one
// is refused with ErrAlreadyPublishing unless opts.Takeover is set, in which
// case the old publisher's Done closes with ErrTakenOver. Invalid names fail
// with ErrInvalidName. Publish sets each track's Index.
func (h *Hub) Publish(name string, tracks []*Track, opts PublishOptions) (*Publisher, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("publish %s: no supported tracks", name)
	}
	for i, t := range tracks {
		if t == nil || t.Codec == nil {
			return nil, fmt.Errorf("publish %s: track %d has no codec", name, i)
		}
	}
	for i, t := range tracks {
		t.Index = i
	}

	// A stream found in the map may end (grace expired, hub closed) before
	// startSession locks it; end removes it from the map first, so a retry
	// creates a fresh stream (or sees the hub closed).
	for attempt := 0; ; attempt++ {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrHubClosed
		}
		s, exists := h.streams[name]
		if !exists {
			s = newStream(h, name)
			h.streams[name] = s
		}
		observers := h.observers
		h.mu.Unlock()

		if !exists {
			// Observers may attach readers (s.NewReader): no lock is held here,
			// and the stream has no session yet, so those readers get the
			// session item from startSession and then every access unit.
			for _, fn := range observers {
				fn(s)
			}
		}
		p, err := s.startSession(tracks, opts)
		if errors.Is(err, ErrStreamEnded) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		h.log.Info("publish", "stream", name, "protocol", opts.Protocol, "remote", opts.RemoteAddr,
			"session", p.session.ID, "tracks", trackNames(tracks), "continued", exists)
		return p, nil
	}
}

// Get returns a stream by name.
func (h *Hub) Get(name string) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.streams[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return s, nil
}

// Streams returns the current streams ordered by name.
func (h *Hub) Streams() []*Stream {
	h.mu.Lock()
	out := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Kick disconnects the publisher of name: its Done closes with ErrKicked
// and its later writes are ignored. The stream then waits out its grace
// period like after any other disconnect. Kick returns ErrNotFound when no
// publisher is connected.
func (h *Hub) Kick(name string) error {
	s, err := h.Get(name)
	if err != nil {
		return err
	}
	return s.kick()
}

// Close ends every stream and refuses new publishers.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	streams := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		streams = append(streams, s)
	}
	h.mu.Unlock()
	for _, s := range streams {
		s.end(ErrHubClosed)
	}
}

func (h *Hub) remove(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams[s.name] == s {
		delete(h.streams, s.name)
	}
}

func trackNames(tracks []*Track) []string {
	out := make([]string, len(tracks))
	for i, t := range tracks {
		out[i] = t.CodecName()
	}
	return out
}
