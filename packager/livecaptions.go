package packager

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/stream"
)

// LiveCaptions gives the packager the live captions of streams, which it
// serves as a WebVTT subtitles rendition of their HLS playlists: one
// WebVTT segment per media segment, listed once recognition has got past
// the segment's end. Its methods are called while a stream's playlists
// are rendered: they must be safe for concurrent use, quick, and must not
// call back into the Packager.
type LiveCaptions interface {
	// Captions says whether stream name is captioned, and in which
	// language (ISO 639-1, such as "en") and under which label.
	Captions(name string) (lang, label string, ok bool)
	// Cues returns the cues of the publishing session session of name that
	// overlap [from, to), with times counted from the session's start as
	// access unit timestamps are, and whether recognition got past to, so
	// that no other cue will come for that span.
	Cues(name string, session int, from, to time.Duration) (cues []captions.Cue, final bool)
}

// File names of the subtitles rendition.
const (
	subsPlaylistName = "subs.m3u8"
	subsGroup        = "subs"
)

// captioned reports whether m's stream, or the source it is a rendition
// of, has live captions.
func (m *muxer) captioned() bool {
	if m.cfg.Captions == nil {
		return false
	}
	name := m.name
	if m.sourceOf != nil {
		if src := m.sourceOf(); src != nil {
			name = src.name
		}
	}
	_, _, ok := m.cfg.Captions.Captions(name)
	return ok
}

// subsSegmentName is the WebVTT segment of media segment msn.
func (m *muxer) subsSegmentName(msn uint64) string {
	return fmt.Sprintf("%s_subs_%d.vtt", m.prefix, msn)
}

// subsMedia is the EXT-X-MEDIA line of the subtitles rendition of the
// stream in dir ("" or a relative folder ending in "/"), or "" when the
// stream is not captioned.
func (p *Packager) subsMedia(name, dir string) string {
	if p.cfg.Captions == nil {
		return ""
	}
	lang, label, ok := p.cfg.Captions.Captions(name)
	if !ok {
		return ""
	}
	return fmt.Sprintf("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"%s\",NAME=\"%s\",LANGUAGE=\"%s\",DEFAULT=NO,AUTOSELECT=YES,URI=\"%s%s\"\n",
		subsGroup, quoteless(label), quoteless(lang), dir, subsPlaylistName)
}

// quoteless drops what cannot appear in a quoted playlist attribute.
func quoteless(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
}

// withSubtitles adds the subtitles rendition to a multivariant playlist:
// its EXT-X-MEDIA line before the first variant, and the group on every
// EXT-X-STREAM-INF.
func withSubtitles(playlist []byte, media string) []byte {
	if media == "" {
		return playlist
	}
	var b bytes.Buffer
	added := false
	for _, line := range strings.SplitAfter(string(playlist), "\n") {
		if strings.HasPrefix(line, "#EXT-X-STREAM-INF:") {
			if !added {
				b.WriteString(media)
				added = true
			}
			line = strings.TrimSuffix(line, "\n") + ",SUBTITLES=\"" + subsGroup + "\"\n"
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

// subsCues returns the cues of complete segment s, on the media
// timeline, and whether they are final. Called with m.mu held.
func (p *Packager) subsCues(m *muxer, s *segment) ([]captions.Cue, bool) {
	if !s.complete {
		return nil, false
	}
	off := s.period.offset
	cues, final := p.cfg.Captions.Cues(m.name, s.period.session, s.start-off, s.start+s.duration()-off)
	for i := range cues {
		cues[i].Start += off
		cues[i].End += off
	}
	return cues, final
}

// renderSubsPlaylist lists the WebVTT segments of the window whose
// captions are final. Called with m.mu held.
func (p *Packager) renderSubsPlaylist(m *muxer) []byte {
	segs := m.listedSegments()
	target := int(math.Ceil(m.cfg.SegmentDuration.Seconds()))
	for _, s := range segs {
		if s.complete {
			target = max(target, int(math.Round(s.duration().Seconds()+0.4999)))
		}
	}
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	m.writeSequences(&b, segs)
	all := true
	for _, s := range segs {
		if !s.complete {
			all = false
			break
		}
		if _, final := p.subsCues(m, s); !final && !m.ended {
			all = false
			break
		}
		if s.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		writeDateTime(&b, s)
		fmt.Fprintf(&b, "#EXTINF:%s,\n%s\n", seconds(s.duration()), m.subsSegmentName(s.msn))
	}
	if m.ended && all {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

// renderSubsSegment is the WebVTT segment of segment s: the cues that
// overlap it, on the media timeline that the fMP4 segments' decode times
// use. X-TIMESTAMP-MAP ties the segment's start to its 90 kHz time, so
// that players line the cues up with the video.
func renderSubsSegment(s *segment, cues []captions.Cue) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:%d,LOCAL:%s\n\n", stream.Ticks(s.start, 90000)%(1<<33), vttTime(s.start))
	var body bytes.Buffer
	if err := captions.WriteVTT(&body, cues); err != nil {
		return nil, err
	}
	// WriteVTT starts with its own "WEBVTT" header: keep only the cues.
	rest := body.Bytes()
	if i := bytes.Index(rest, []byte("\n\n")); i >= 0 {
		rest = rest[i+2:]
	} else {
		rest = nil
	}
	b.Write(rest)
	return b.Bytes(), nil
}

// vttTime formats d as a WebVTT timestamp, hh:mm:ss.mmm.
func vttTime(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

func (p *Packager) serveSubsPlaylist(ctx context.Context, w http.ResponseWriter, r *http.Request, m *muxer) {
	if p.cfg.Captions == nil {
		httpError(w, http.StatusNotFound, "stream "+m.name+" has no live captions")
		return
	}
	if _, _, ok := p.cfg.Captions.Captions(m.name); !ok {
		httpError(w, http.StatusNotFound, "stream "+m.name+" has no live captions")
		return
	}
	if !m.waitFor(ctx, m.hasCompleteSegment) {
		httpError(w, http.StatusServiceUnavailable, "stream has no complete segment yet")
		return
	}
	m.mu.RLock()
	body := p.renderSubsPlaylist(m)
	m.mu.RUnlock()
	p.write(w, r, m, mimeHLS, cachePlaylist, body)
}

func (p *Packager) serveSubsSegment(w http.ResponseWriter, r *http.Request, m *muxer, msn uint64) {
	if p.cfg.Captions == nil {
		httpError(w, http.StatusNotFound, "stream "+m.name+" has no live captions")
		return
	}
	m.mu.RLock()
	s := m.findSegment(msn)
	var cues []captions.Cue
	final := false
	if s != nil {
		cues, final = p.subsCues(m, s)
	}
	ended := m.ended
	m.mu.RUnlock()
	if s == nil || !s.complete || !final && !ended {
		httpError(w, http.StatusNotFound, "no such subtitles segment")
		return
	}
	body, err := renderSubsSegment(s, cues)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	p.write(w, r, m, "text/vtt; charset=utf-8", cacheMedia, body)
}
