// Package livecaptions captions live streams: it reads a stream's audio
// from the hub, cuts it into short chunks at pauses, has a speech engine
// recognise each, and keeps the cues for the packager, which serves them
// as a WebVTT subtitles rendition of the stream's HLS playlists.
package livecaptions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/stream"
)

// Errors of Start and Stop.
var (
	ErrNoStream      = errors.New("no such stream")
	ErrUnknownEngine = errors.New("unknown speech engine")
	ErrNotCaptioned  = errors.New("stream is not being captioned")
	ErrClosed        = errors.New("live captions closed")
)

// ReaderKind is the reader kind of captioners in the stream info.
const ReaderKind = "captions"

// Config configures a Manager.
type Config struct {
	Hub *stream.Hub
	// Engines are the speech engines by name.
	Engines map[string]speech.Engine
	// FFmpeg decodes the streams' audio (default "ffmpeg").
	FFmpeg string
	// MaxChunk bounds the audio recognised at once, so captions trail the
	// audio by at most MaxChunk plus the recognition time. Set it to the
	// segment duration (default 2 s).
	MaxChunk time.Duration
	// Keep is how long cues stay available after they end (default
	// 10 min); it must cover the longest playlist window.
	Keep time.Duration
	// TempDir holds the audio chunks handed to engines (default the
	// system's).
	TempDir string
	Logger  *slog.Logger
}

// Options choose how a stream is captioned.
type Options struct {
	// Engine names the speech engine (default "pocketsphinx").
	Engine string `json:"engine,omitempty"`
	// Language is the spoken language, ISO 639-1 (default "en").
	Language string `json:"language,omitempty"`
	// Label names the subtitles rendition (default from the language).
	Label string `json:"label,omitempty"`
}

// Info is the state of a stream's live captions.
type Info struct {
	Options
	// State is "waiting" (no publisher or no audio yet), "running" or
	// "failed" (the last chunk failed; the next is tried again).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Cues counts the cues made so far.
	Cues int `json:"cues"`
	// Lag is how far recognition trails the audio received, in seconds.
	Lag     float64   `json:"lag"`
	Started time.Time `json:"started"`
}

// Manager runs the live captions of hub streams. It implements the
// packager's LiveCaptions.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*captioner
	closed  bool
}

// New returns a Manager; Close stops every captioner.
func New(cfg Config) *Manager {
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.MaxChunk <= 0 {
		cfg.MaxChunk = 2 * time.Second
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 10 * time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: log, ctx: ctx, cancel: cancel, streams: map[string]*captioner{}}
}

// withDefaults fills in the options left empty.
func (o Options) withDefaults() Options {
	if o.Engine == "" {
		o.Engine = "pocketsphinx"
	}
	if o.Language == "" {
		o.Language = "en"
	}
	if o.Label == "" {
		o.Label = languageLabel(o.Language)
	}
	return o
}

// languageLabel names common languages in English.
func languageLabel(lang string) string {
	names := map[string]string{"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "it": "Italiano",
		"pt": "Português", "nl": "Nederlands", "ja": "日本語", "zh": "中文", "ru": "Русский"}
	if n, ok := names[strings.ToLower(lang)]; ok {
		return n
	}
	return lang
}

// Start captions stream name, which must exist in the hub, until Stop or
// until the stream ends. Starting a captioned stream again with other
// options restarts it with those.
func (m *Manager) Start(name string, o Options) error {
	o = o.withDefaults()
	engine, ok := m.cfg.Engines[o.Engine]
	if !ok {
		known := make([]string, 0, len(m.cfg.Engines))
		for n := range m.cfg.Engines {
			known = append(known, n)
		}
		slices.Sort(known)
		return fmt.Errorf("%w %q (configured: %s)", ErrUnknownEngine, o.Engine, strings.Join(known, ", "))
	}
	st, err := m.cfg.Hub.Get(name)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNoStream, name)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	old := m.streams[name]
	if old != nil && old.opts == o {
		m.mu.Unlock()
		return nil
	}
	c := newCaptioner(m, st, o, engine)
	m.streams[name] = c
	m.wg.Add(1)
	m.mu.Unlock()
	if old != nil {
		old.stop()
	}
	go func() {
		defer m.wg.Done()
		c.run()
		m.mu.Lock()
		if m.streams[name] == c {
			delete(m.streams, name)
		}
		m.mu.Unlock()
	}()
	m.log.Info("live captions started", "stream", name, "engine", o.Engine, "language", o.Language)
	return nil
}

// Stop ends the captions of name.
func (m *Manager) Stop(name string) error {
	m.mu.Lock()
	c := m.streams[name]
	delete(m.streams, name)
	m.mu.Unlock()
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotCaptioned, name)
	}
	c.stop()
	m.log.Info("live captions stopped", "stream", name)
	return nil
}

// Info returns the state of name's captions.
func (m *Manager) Info(name string) (Info, bool) {
	c := m.get(name)
	if c == nil {
		return Info{}, false
	}
	return c.info(), true
}

func (m *Manager) get(name string) *captioner {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.streams[name]
}

// Captions implements packager.LiveCaptions.
func (m *Manager) Captions(name string) (lang, label string, ok bool) {
	c := m.get(name)
	if c == nil {
		return "", "", false
	}
	return c.opts.Language, c.opts.Label, true
}

// Cues implements packager.LiveCaptions.
func (m *Manager) Cues(name string, session int, from, to time.Duration) ([]captions.Cue, bool) {
	c := m.get(name)
	if c == nil {
		return nil, true
	}
	return c.cues(session, from, to)
}

// Close stops every captioner and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*captioner, 0, len(m.streams))
	for _, c := range m.streams {
		all = append(all, c)
	}
	m.mu.Unlock()
	m.cancel()
	for _, c := range all {
		c.stop()
	}
	m.wg.Wait()
}
