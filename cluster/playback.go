package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/stream"
)

// Playback modes for streams that live on another node.
const (
	ModeProxy    = "proxy"    // fetch from the owning node and stream the answer back
	ModeRedirect = "redirect" // answer 302 with the owning node's URL
)

// Headers of cluster playback.
const (
	// HeaderNode names the node that served a proxied or redirected request.
	HeaderNode = "X-MPS-Node"
	// HeaderForwarded marks a request one node proxied to another (its value
	// is the proxying node's id); such a request is always served locally,
	// so proxy loops cannot happen.
	HeaderForwarded = "X-MPS-Forwarded-By"
)

// ValidMode checks a playback mode from configuration ("" means proxy).
func ValidMode(mode string) error {
	switch mode {
	case "", ModeProxy, ModeRedirect:
		return nil
	}
	return errors.New(`cluster playback mode must be "proxy" or "redirect", not "` + mode + `"`)
}

// locateTimeout bounds the registry lookup of a playback request; when it
// fails the request is served locally.
const locateTimeout = 2 * time.Second

type ownerKey struct{}

// PlaybackHandler serves playback paths (/APP/NAME/file: the stream name is
// the path's folder, so /live/cam1/index.m3u8 is live/cam1 and
// /live/cam1/720p/t0.m3u8 is live/cam1/720p). A stream the local hub has, a
// stream the registry does not know, and a request another node forwarded
// go to local; a stream living on another node is proxied to that node
// (mode "proxy" or "": query strings kept, the answer streamed without
// buffering) or redirected to it with 302 (mode "redirect"). Either answer
// carries X-MPS-Node with the owning node's id.
func (c *Cluster) PlaybackHandler(local http.Handler, mode string) http.Handler {
	if err := ValidMode(mode); err != nil {
		c.log.Warn("unknown cluster playback mode, proxying", "mode", mode)
		mode = ModeProxy
	}
	if mode == "" {
		mode = ModeProxy
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	c.mu.Lock()
	c.transports = append(c.transports, transport)
	c.mu.Unlock()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			owner := pr.In.Context().Value(ownerKey{}).(*url.URL)
			pr.SetURL(owner)
			pr.SetXForwarded()
			pr.Out.Header.Set(HeaderForwarded, c.cfg.NodeID)
		},
		Transport:     transport,
		FlushInterval: -1, // LL-HLS parts and blocking playlists go out as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the player went away
			}
			c.log.Warn("cluster playback proxy failed", "path", r.URL.Path, "error", err)
			http.Error(w, "the node serving this stream did not answer", http.StatusBadGateway)
		},
	}
	return &playback{c: c, local: local, mode: mode, proxy: proxy}
}

type playback struct {
	c     *Cluster
	local http.Handler
	mode  string
	proxy *httputil.ReverseProxy
}

func (p *playback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	owner, ok := p.remoteOwner(r)
	if !ok {
		p.local.ServeHTTP(w, r)
		return
	}
	base, err := url.Parse(owner.Address)
	if err != nil {
		p.local.ServeHTTP(w, r)
		return
	}
	w.Header().Set(HeaderNode, owner.Node)
	if p.mode == ModeRedirect {
		target := owner.Address + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusFound)
		return
	}
	p.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ownerKey{}, base)))
}

// remoteOwner returns the other node serving the request's stream, if any.
func (p *playback) remoteOwner(r *http.Request) (StreamEntry, bool) {
	if r.Header.Get(HeaderForwarded) != "" {
		return StreamEntry{}, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return StreamEntry{}, false
	}
	name, ok := StreamName(r.URL.Path)
	if !ok {
		return StreamEntry{}, false
	}
	if hub := p.c.cfg.Hub; hub != nil {
		if _, err := hub.Get(name); err == nil {
			return StreamEntry{}, false
		}
	}
	e, found := p.c.locate.get(name, func() (StreamEntry, bool) {
		ctx, cancel := context.WithTimeout(r.Context(), locateTimeout)
		defer cancel()
		e, found, err := p.c.Locate(ctx, name)
		if err != nil {
			p.c.log.Warn("cluster playback lookup failed, serving locally", "stream", name, "error", err)
			return StreamEntry{}, false
		}
		return e, found
	})
	if !found || e.Node == p.c.cfg.NodeID || e.Address == "" {
		return StreamEntry{}, false
	}
	return e, true
}

// StreamName returns the stream a playback path belongs to: its folder
// ("/live/cam1/index.m3u8" → "live/cam1"), if that is a valid stream name.
func StreamName(urlPath string) (string, bool) {
	if !strings.HasPrefix(urlPath, "/") {
		return "", false
	}
	dir := strings.Trim(path.Dir(urlPath), "/")
	if stream.ValidateName(dir) != nil {
		return "", false
	}
	return dir, true
}

// locateCache keeps registry lookups for a short while: a player asks for
// a part or a playlist several times a second.
type locateCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]locateResult
}

type locateResult struct {
	e       StreamEntry
	found   bool
	expires time.Time
}

const locateCacheMax = 4096

func newLocateCache(ttl time.Duration) *locateCache {
	return &locateCache{ttl: ttl, m: make(map[string]locateResult)}
}

func (lc *locateCache) get(name string, lookup func() (StreamEntry, bool)) (StreamEntry, bool) {
	now := time.Now()
	lc.mu.Lock()
	if r, ok := lc.m[name]; ok && now.Before(r.expires) {
		lc.mu.Unlock()
		return r.e, r.found
	}
	lc.mu.Unlock()
	e, found := lookup()
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if len(lc.m) >= locateCacheMax {
		for k, r := range lc.m {
			if now.After(r.expires) {
				delete(lc.m, k)
			}
		}
		if len(lc.m) >= locateCacheMax {
			clear(lc.m)
		}
	}
	lc.m[name] = locateResult{e: e, found: found, expires: time.Now().Add(lc.ttl)}
	return e, found
}
