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
	// ReaderQueue is the number of access units a reader may lag behind
	// before it is dropped. Default 2048.
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
// period is continued; a live one is refused unless opts.Takeover is set.
func (h *Hub) Publish(name string, tracks []*Track, opts PublishOptions) (*Publisher, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("publish %s: no supported tracks", name)
	}
	for i, t := range tracks {
		t.Index = i
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHubClosed
	}
	s, exists := h.streams[name]
	created := false
	if !exists {
		s = newStream(h, name)
		h.streams[name] = s
		created = true
	}
	observers := h.observers
	h.mu.Unlock()

	if created {
		for _, fn := range observers {
			fn(s)
		}
	}
	p, err := s.startSession(tracks, opts)
	if err != nil {
		return nil, err
	}
	h.log.Info("publish", "stream", name, "protocol", opts.Protocol, "remote", opts.RemoteAddr,
		"session", p.session.ID, "tracks", trackNames(tracks), "continued", !created)
	return p, nil
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

// Kick disconnects the publisher of name. The stream then waits out its
// grace period like after any other disconnect.
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
