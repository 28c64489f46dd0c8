// Package packager cuts CMAF segments and parts from hub streams and serves
// them as LL-HLS and DASH.
package packager

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mps-dev/mps/stream"
)

// Config configures a Packager. Zero values pick the defaults.
type Config struct {
	// SegmentDuration is the target segment length (default 2 s).
	SegmentDuration time.Duration
	// PartDuration is the LL-HLS part length (default 200 ms).
	PartDuration time.Duration
	// PlaylistSegments is how many complete segments a live playlist lists (default 6).
	PlaylistSegments int
	// DVRWindow, when set, makes live playlists and MPDs list complete
	// segments covering at least this much media (and no fewer than
	// PlaylistSegments), so that players can seek back; older segments are
	// dropped. 0 turns it off.
	DVRWindow time.Duration
	// Linger keeps an ended stream's final playlist available (default 60 s).
	Linger time.Duration
	// BlockTimeout bounds how long a blocking playlist or part request is
	// held (default three segment durations).
	BlockTimeout time.Duration
	Logger       *slog.Logger

	// Ladders, when set, tells the packager which streams are renditions of
	// which: a source's index.m3u8 and manifest.mpd then offer every
	// rendition, and renditions share their source's timeline so that
	// their segments line up.
	Ladders Ladders
	// Captions, when set, gives streams' live captions, served as a
	// subtitles rendition of their HLS playlists.
	Captions LiveCaptions
}

// Ladders describes the renditions a transcoder makes. Its methods are
// called from the packager's goroutines, also while a stream's media is
// being packaged: they must be safe for concurrent use, quick, and must not
// call back into the Packager.
type Ladders interface {
	// Variants returns the streams that the multivariant playlist and the MPD
	// of name offer, best first (the source itself is listed when the ladder
	// passes it through); nil when name has no ladder.
	Variants(name string) []string
	// SourceOf returns the stream a rendition is made from.
	SourceOf(rendition string) (source string, ok bool)
}

func (c *Config) setDefaults() {
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = 2 * time.Second
	}
	if c.PartDuration <= 0 {
		c.PartDuration = 200 * time.Millisecond
	}
	if c.PlaylistSegments <= 0 {
		c.PlaylistSegments = 6
	}
	c.DVRWindow = max(c.DVRWindow, 0)
	if c.Linger <= 0 {
		c.Linger = time.Minute
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = 3 * c.SegmentDuration
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Packager packages every stream of a hub. It is an http.Handler for paths
// such as /live/cam1/index.m3u8 and /live/cam1/manifest.mpd.
type Packager struct {
	hub    *stream.Hub
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	muxers map[string]*muxer
}

// New attaches a packager to hub: every stream published from now on is
// packaged from its first keyframe.
func New(hub *stream.Hub, cfg Config) *Packager {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Packager{hub: hub, cfg: cfg, ctx: ctx, cancel: cancel, muxers: make(map[string]*muxer)}
	hub.OnStreamCreated(p.attach)
	return p
}

func (p *Packager) attach(s *stream.Stream) {
	if p.ctx.Err() != nil {
		return
	}
	r, err := s.NewReader("packager", "")
	if err != nil {
		p.cfg.Logger.Error("packager attach", "stream", s.Name(), "error", err)
		return
	}
	m := newMuxer(s, p.cfg, p.cfg.Logger)
	if l := p.cfg.Ladders; l != nil {
		name := s.Name()
		m.sourceOf = func() *muxer {
			if src, ok := l.SourceOf(name); ok && src != name {
				return p.muxer(src)
			}
			return nil
		}
	}
	p.mu.Lock()
	p.muxers[s.Name()] = m
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		m.run(p.ctx, r)
		p.linger(m)
	}()
}

// linger keeps an ended stream's playlists for late players, then forgets it.
func (p *Packager) linger(m *muxer) {
	t := time.NewTimer(p.cfg.Linger)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.ctx.Done():
	}
	p.mu.Lock()
	if p.muxers[m.name] == m {
		delete(p.muxers, m.name)
	}
	p.mu.Unlock()
}

func (p *Packager) muxer(name string) *muxer {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.muxers[name]
}

// Close stops packaging and waits for every muxer to stop.
func (p *Packager) Close() {
	p.cancel()
	p.wg.Wait()
}
