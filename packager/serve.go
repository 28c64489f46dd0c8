package packager

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// ServeHTTP serves playlists, manifests, init segments, segments and parts
// from memory. Media bytes are written as stored: never copied per player.
func (p *Packager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowPlayback(w, r) {
		return
	}
	dir, file := path.Split(strings.TrimPrefix(r.URL.Path, "/"))
	name := strings.TrimSuffix(dir, "/")
	if err := stream.ValidateName(name); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	mf, ok := parseFileName(file)
	if !ok {
		httpError(w, http.StatusNotFound, "no such file")
		return
	}
	m := p.muxer(name)
	if m == nil {
		httpError(w, http.StatusNotFound, "stream "+name+" not found")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), p.cfg.BlockTimeout)
	defer cancel()
	switch mf.kind {
	case fileMultivariant:
		p.serveMultivariant(ctx, w, r, m)
	case fileMPD:
		p.serveMPD(ctx, w, r, m)
	case fileMediaPlaylist:
		p.serveMediaPlaylist(ctx, w, r, m, mf.track)
	case fileSubsPlaylist:
		p.serveSubsPlaylist(ctx, w, r, m)
	default:
		if mf.prefix != m.prefix {
			httpError(w, http.StatusNotFound, "no such file: the stream restarted")
			return
		}
		if mf.kind == fileSubsSegment {
			p.serveSubsSegment(w, r, m, mf.msn)
			return
		}
		p.serveMedia(ctx, w, r, m, mf)
	}
}

// allowPlayback sets the CORS headers of playback responses and answers
// what is no GET or HEAD. It reports whether the request goes on.
func allowPlayback(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, Content-Type")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Date")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
	return false
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"error\":%q,\"code\":%d}\n", msg, code)
}

func (p *Packager) write(w http.ResponseWriter, r *http.Request, m *muxer, contentType, cacheControl string, chunks ...[]byte) {
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("Content-Length", strconv.Itoa(n))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	for _, c := range chunks {
		if _, err := w.Write(c); err != nil {
			return
		}
	}
	m.stream.AddBytesOut(n)
}

const (
	cachePlaylist = "no-cache"
	// Media files never change once listed, and names are unique per muxer.
	cacheMedia = "public, max-age=3600"
	mimeHLS    = "application/vnd.apple.mpegurl"
)

func (p *Packager) serveMultivariant(ctx context.Context, w http.ResponseWriter, r *http.Request, m *muxer) {
	if !m.waitFor(ctx, func() bool { return m.period != nil }) {
		httpError(w, http.StatusServiceUnavailable, "stream has no media yet")
		return
	}
	m.mu.RLock()
	body := p.renderLadderMultivariant(m)
	if body == nil {
		body = m.renderMultivariant()
	}
	m.mu.RUnlock()
	body = withSubtitles(body, p.subsMedia(m.name, ""))
	p.write(w, r, m, mimeHLS, cachePlaylist, body)
}

// hasCompleteSegment is true once a player can start: one whole segment.
func (m *muxer) hasCompleteSegment() bool {
	return len(m.segments) > 1 || len(m.segments) == 1 && m.segments[0].complete
}

func (p *Packager) serveMPD(ctx context.Context, w http.ResponseWriter, r *http.Request, m *muxer) {
	if !m.waitFor(ctx, m.hasCompleteSegment) {
		httpError(w, http.StatusServiceUnavailable, "stream has no complete segment yet")
		return
	}
	m.mu.RLock()
	body := p.renderLadderMPD(m, time.Now())
	if body == nil {
		body = m.renderMPD(time.Now())
	}
	m.mu.RUnlock()
	p.write(w, r, m, "application/dash+xml", cachePlaylist, body)
}

// serveMediaPlaylist answers LL-HLS blocking playlist reloads: with
// _HLS_msn (and _HLS_part) the answer waits until that part exists.
func (p *Packager) serveMediaPlaylist(ctx context.Context, w http.ResponseWriter, r *http.Request, m *muxer, track int) {
	q := r.URL.Query()
	msn, part := int64(-1), -1
	if v := q.Get("_HLS_msn"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			httpError(w, http.StatusBadRequest, "invalid _HLS_msn")
			return
		}
		msn = int64(n)
	}
	if v := q.Get("_HLS_part"); v != "" {
		n, ok := smallInt(v, 1<<20)
		if !ok || msn < 0 {
			httpError(w, http.StatusBadRequest, "invalid _HLS_part (it needs _HLS_msn)")
			return
		}
		part = n
	}
	m.mu.RLock()
	tooFar := msn >= 0 && uint64(msn) > m.nextMSN+2
	m.mu.RUnlock()
	if tooFar {
		httpError(w, http.StatusBadRequest, "_HLS_msn is too far in the future")
		return
	}
	cond := m.hasCompleteSegment
	if msn >= 0 {
		cond = func() bool { return m.hasPart(track, uint64(msn), part) }
	}
	ok := m.waitFor(ctx, cond)
	m.mu.RLock()
	var body []byte
	if track < len(m.playlists) {
		body = m.playlists[track].body
	}
	ended := m.ended
	m.mu.RUnlock()
	switch {
	case body == nil:
		httpError(w, http.StatusNotFound, "no such track")
	case !ok && !ended && msn < 0:
		httpError(w, http.StatusServiceUnavailable, "stream has no complete segment yet")
	case !ok && !ended:
		httpError(w, http.StatusServiceUnavailable, "timed out waiting for the requested part")
	default:
		p.write(w, r, m, mimeHLS, cachePlaylist, body)
	}
}

// findSegment returns segment msn and whether it is still in the window.
// Called with mu held.
func (m *muxer) findSegment(msn uint64) *segment {
	if len(m.segments) == 0 {
		return nil
	}
	first := m.segments[0].msn
	if msn < first || msn-first >= uint64(len(m.segments)) {
		return nil
	}
	return m.segments[msn-first]
}

func (p *Packager) serveMedia(ctx context.Context, w http.ResponseWriter, r *http.Request, m *muxer, mf mediaFile) {
	if mf.kind == fileInit {
		m.mu.RLock()
		var init []byte
		var mime string
		for _, per := range m.periods() {
			if per.id == mf.period && mf.track < len(per.tracks) {
				init, mime = per.tracks[mf.track].init, per.tracks[mf.track].mime
			}
		}
		m.mu.RUnlock()
		if init == nil {
			httpError(w, http.StatusNotFound, "no such init segment")
			return
		}
		p.write(w, r, m, mime, cacheMedia, init)
		return
	}

	// A request for the part or segment being made waits for it, as the
	// preload hint invites players to do.
	ready := func() bool {
		s := m.findSegment(mf.msn)
		if s == nil || mf.track >= len(s.tracks) {
			return false
		}
		if mf.kind == fileSegment {
			return s.complete
		}
		return len(s.tracks[mf.track].parts) > mf.part
	}
	m.mu.RLock()
	upcoming := mf.msn >= m.nextMSN-min(m.nextMSN, 1) && mf.msn <= m.nextMSN
	m.mu.RUnlock()
	if upcoming {
		// A complete segment gains no more parts: stop waiting then.
		m.waitFor(ctx, func() bool {
			s := m.findSegment(mf.msn)
			return ready() || s != nil && s.complete
		})
	}
	m.mu.RLock()
	var chunks [][]byte
	var mime string
	if ready() {
		s := m.findSegment(mf.msn)
		mime = s.period.tracks[mf.track].mime
		parts := s.tracks[mf.track].parts
		if mf.kind == filePart {
			parts = parts[mf.part : mf.part+1]
		}
		chunks = make([][]byte, len(parts))
		for i, pt := range parts {
			chunks[i] = pt.data
		}
	}
	m.mu.RUnlock()
	if chunks == nil {
		httpError(w, http.StatusNotFound, "no such segment or part")
		return
	}
	if mime == "video/mp4" {
		mime = "video/iso.segment"
	}
	p.write(w, r, m, mime, cacheMedia, chunks...)
}

// periods lists the periods still referenced, current last. Called with mu held.
func (m *muxer) periods() []*period {
	var out []*period
	for _, s := range m.segments {
		if len(out) == 0 || out[len(out)-1] != s.period {
			out = append(out, s.period)
		}
	}
	if m.period != nil && (len(out) == 0 || out[len(out)-1] != m.period) {
		out = append(out, m.period)
	}
	return out
}
