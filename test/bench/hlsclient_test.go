//go:build bench

package bench

// An LL-HLS client that follows a media playlist the way hls.js does in
// low-latency mode: it requests the part named by EXT-X-PRELOAD-HINT and,
// at the same time, reloads the playlist with _HLS_msn/_HLS_part for that
// part; both requests block on the server until the part exists. Every
// listed part after the one it is at is fetched, so it never skips media.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pos is a part's position: media sequence number and index in its segment.
type pos struct{ msn, part int }

func (p pos) less(q pos) bool { return p.msn < q.msn || p.msn == q.msn && p.part < q.part }

type listedPart struct {
	pos
	uri string
}

// playlist is what the follower reads from an LL-HLS media playlist.
type playlist struct {
	partTarget time.Duration
	mapURI     string
	parts      []listedPart // every listed part, in order
	complete   map[int]int  // complete segment MSN -> its number of parts
	hint       listedPart   // the preload-hinted part
	hasHint    bool
	ended      bool
}

// has reports whether part p is listed.
func (pl *playlist) has(p pos) bool {
	for i := len(pl.parts) - 1; i >= 0; i-- {
		if pl.parts[i].pos == p {
			return true
		}
	}
	return false
}

// skipped reports whether part p will never exist: its segment is complete
// with fewer parts.
func (pl *playlist) skipped(p pos) bool {
	n, ok := pl.complete[p.msn]
	return ok && p.part >= n
}

func parseAttrs(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				v, rest = rest[1:], ""
			} else {
				v, rest = rest[1:1+end], rest[2+end:]
			}
			rest = strings.TrimPrefix(rest, ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		out[strings.TrimSpace(k)] = v
		s = rest
	}
	return out
}

func parsePlaylist(body string) (*playlist, error) {
	if !strings.HasPrefix(body, "#EXTM3U") {
		return nil, fmt.Errorf("not a playlist: %.80q", body)
	}
	pl := &playlist{complete: map[int]int{}}
	msn, n := -1, 0 // current segment and its parts so far
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		tag, val, _ := strings.Cut(line, ":")
		switch {
		case line == "":
		case tag == "#EXT-X-MEDIA-SEQUENCE":
			msn, _ = strconv.Atoi(val)
		case tag == "#EXT-X-PART-INF":
			f, _ := strconv.ParseFloat(parseAttrs(val)["PART-TARGET"], 64)
			pl.partTarget = time.Duration(f * float64(time.Second))
		case tag == "#EXT-X-MAP":
			pl.mapURI = parseAttrs(val)["URI"]
		case tag == "#EXT-X-PART":
			pl.parts = append(pl.parts, listedPart{pos{msn, n}, parseAttrs(val)["URI"]})
			n++
		case tag == "#EXT-X-PRELOAD-HINT":
			a := parseAttrs(val)
			if a["TYPE"] == "PART" {
				pl.hint, pl.hasHint = listedPart{pos{msn, n}, a["URI"]}, true
			}
		case tag == "#EXT-X-ENDLIST":
			pl.ended = true
		case strings.HasPrefix(line, "#"):
		default: // a segment URI ends the segment
			pl.complete[msn] = n
			msn, n = msn+1, 0
		}
	}
	if msn < 0 {
		return nil, errors.New("playlist has no EXT-X-MEDIA-SEQUENCE")
	}
	return pl, nil
}

// clientStats counts what a group of followers did. Every field is safe
// for concurrent use.
type clientStats struct {
	Playlists   atomic.Int64 // playlist responses (200)
	Parts       atomic.Int64 // part responses (200)
	Bytes       atomic.Int64
	Failed      atomic.Int64 // transport errors and non-200 answers
	Aborted     atomic.Int64 // hinted parts the server never made, cancelled by us
	CatchUp     atomic.Int64 // parts fetched after the playlist listed them (the reader was behind)
	Resyncs     atomic.Int64 // parts that fell out of the playlist before the reader got them
	Early       atomic.Int64 // blocking reloads answered without the part they asked for
	Dropped     atomic.Int64 // followers that gave up
	mu          sync.Mutex
	failSamples []string
	first       map[partKey]time.Time // first delivery of each part, over all readers
	spread      []time.Duration       // each delivery's delay behind the first
}

type partKey struct {
	track int
	pos
}

func newClientStats() *clientStats { return &clientStats{first: map[partKey]time.Time{}} }

func (s *clientStats) fail(format string, args ...any) {
	s.Failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failSamples) < 10 {
		s.failSamples = append(s.failSamples, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

// delivered records a part's arrival for the fan-out spread.
func (s *clientStats) delivered(track int, p pos, at time.Time) {
	k := partKey{track, p}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.first[k]; ok {
		s.spread = append(s.spread, at.Sub(t))
	} else {
		s.first[k] = at
	}
}

// ResetSpread forgets the spread measured so far (not the first deliveries).
func (s *clientStats) ResetSpread() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spread = s.spread[:0]
}

// FailSamples returns the first few failures.
func (s *clientStats) FailSamples() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failSamples...)
}

// Spread returns how far each delivery of a part trailed its first delivery.
func (s *clientStats) Spread() dist {
	s.mu.Lock()
	defer s.mu.Unlock()
	return summarize(s.spread)
}

// follower follows one media playlist.
type follower struct {
	client *http.Client
	url    string // the media playlist
	track  int    // 0 video, 1 audio
	stats  *clientStats
	// onPart, if set, gets every part: its bytes, when it was complete,
	// and whether it came through the preload hint.
	onPart func(p pos, data []byte, at time.Time, hinted bool)
}

// get fetches u. A cancelled request returns ctx's error.
func (f *follower) get(ctx context.Context, u string) ([]byte, error) {
	return f.fetch(ctx, u, true)
}

// fetch fetches u; unless keep is set, the body is read and dropped
// without being held, which keeps the load generator's CPU low.
func (f *follower) fetch(ctx context.Context, u string, keep bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return nil, fmt.Errorf("GET %s: %s: %.120s", u, resp.Status, b)
	}
	var b []byte
	var n int64
	if keep {
		b, err = io.ReadAll(resp.Body)
		n = int64(len(b))
	} else {
		n, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return nil, err
	}
	f.stats.Bytes.Add(n)
	return b, nil
}

func (f *follower) resolve(ref string) string {
	base, err := url.Parse(f.url)
	if err != nil {
		return ref
	}
	u, err := base.Parse(ref)
	if err != nil {
		return ref
	}
	return u.String()
}

// playlist loads the media playlist, blocking for part p when p.msn >= 0.
func (f *follower) playlist(ctx context.Context, p pos) (*playlist, error) {
	u := f.url
	if p.msn >= 0 {
		u += fmt.Sprintf("?_HLS_msn=%d&_HLS_part=%d", p.msn, p.part)
	}
	b, err := f.get(ctx, u)
	if err != nil {
		return nil, err
	}
	f.stats.Playlists.Add(1)
	return parsePlaylist(string(b))
}

// part fetches one part and reports it.
func (f *follower) part(ctx context.Context, lp listedPart, hinted bool) error {
	b, err := f.fetch(ctx, f.resolve(lp.uri), f.onPart != nil)
	if err != nil {
		return err
	}
	at := time.Now()
	f.stats.Parts.Add(1)
	f.stats.delivered(f.track, lp.pos, at)
	if f.onPart != nil {
		f.onPart(lp.pos, b, at, hinted)
	}
	return nil
}

// maxConsecutiveFailures ends a follower whose requests keep failing.
const maxConsecutiveFailures = 20

// run follows the playlist until ctx ends or the stream ends.
func (f *follower) run(ctx context.Context) {
	var pl *playlist
	var err error
	for pl == nil || !pl.hasHint {
		if pl, err = f.playlist(ctx, pos{-1, 0}); err != nil {
			if ctx.Err() != nil {
				return
			}
			f.stats.fail("track %d start: %v", f.track, err)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if pl.ended {
			return
		}
	}
	if pl.mapURI != "" {
		if _, err := f.fetch(ctx, f.resolve(pl.mapURI), false); err != nil && ctx.Err() == nil {
			f.stats.fail("track %d init: %v", f.track, err)
		}
	}

	next := pl.hint
	failures := 0
	failed := func(format string, args ...any) bool {
		if ctx.Err() != nil {
			return true
		}
		f.stats.fail(format, args...)
		failures++
		if failures >= maxConsecutiveFailures {
			f.stats.Dropped.Add(1)
			return true
		}
		return false
	}
	for ctx.Err() == nil {
		// The hinted part and the blocking reload for it, side by side.
		hctx, hcancel := context.WithCancel(ctx)
		hdone := make(chan error, 1)
		hint := next
		started := time.Now()
		go func() { hdone <- f.part(hctx, hint, true) }()
		pl, err := f.playlist(ctx, next.pos)
		if err != nil {
			hcancel()
			<-hdone
			if failed("track %d playlist for %d.%d: %v", f.track, next.msn, next.part, err) {
				return
			}
			continue
		}
		switch {
		case pl.has(next.pos):
			if err := <-hdone; err != nil {
				if failed("track %d hinted part %d.%d (after %v): %v", f.track, next.msn, next.part, time.Since(started).Round(time.Millisecond), err) {
					hcancel()
					return
				}
			} else {
				failures = 0
			}
		case pl.skipped(next.pos):
			// The segment ended before this part: it will never exist.
			hcancel()
			if <-hdone != nil {
				f.stats.Aborted.Add(1)
			}
		default:
			// The playlist has moved past the part (the reader fell behind),
			// or the blocking reload answered before listing it.
			hcancel()
			<-hdone
			if len(pl.parts) > 0 && next.less(pl.parts[0].pos) {
				f.stats.Resyncs.Add(1)
			} else if !pl.ended {
				f.stats.Early.Add(1)
			}
		}
		hcancel()
		// Everything listed after the hinted part.
		for _, lp := range pl.parts {
			if !hint.less(lp.pos) || ctx.Err() != nil {
				continue
			}
			f.stats.CatchUp.Add(1)
			if err := f.part(ctx, lp, false); err != nil {
				if failed("track %d part %d.%d: %v", f.track, lp.msn, lp.part, err) {
					return
				}
			}
		}
		if pl.ended || !pl.hasHint {
			return
		}
		next = pl.hint
	}
}

// startReader starts one player: it loads the multivariant playlist, then
// follows each media playlist it lists (video and audio).
func startReader(ctx context.Context, wg *sync.WaitGroup, client *http.Client, indexURL string, stats *clientStats) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		var body []byte
		for {
			b, err := (&follower{client: client, stats: stats}).get(ctx, indexURL)
			if err == nil {
				body = b
				break
			}
			if ctx.Err() != nil {
				return
			}
			stats.fail("multivariant: %v", err)
			time.Sleep(500 * time.Millisecond)
		}
		uris := mediaPlaylists(string(body))
		base, _ := url.Parse(indexURL)
		for i, uri := range uris {
			u, err := base.Parse(uri)
			if err != nil {
				stats.fail("multivariant URI %q: %v", uri, err)
				continue
			}
			f := &follower{client: client, url: u.String(), track: min(i, 1), stats: stats}
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.run(ctx)
			}()
		}
	}()
}

// mediaPlaylists returns the media playlist URIs of a multivariant playlist:
// the variant first, then the renditions (EXT-X-MEDIA URI).
func mediaPlaylists(body string) []string {
	var variants, renditions []string
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA:"):
			if u := parseAttrs(strings.TrimPrefix(line, "#EXT-X-MEDIA:"))["URI"]; u != "" {
				renditions = append(renditions, u)
			}
		case line != "" && !strings.HasPrefix(line, "#"):
			variants = append(variants, line)
		}
	}
	return append(variants, renditions...)
}

// newHTTPClient returns a client whose pool keeps a connection per
// concurrent request, as that many players would.
func newHTTPClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns
	tr.MaxIdleConnsPerHost = conns
	tr.DisableCompression = true
	// A hang guard only: the server holds blocking requests for at most
	// three segment durations.
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
