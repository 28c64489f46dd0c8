package packager

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// mediaPlaylist is a rendered LL-HLS media playlist of one track.
type mediaPlaylist struct {
	body []byte
}

// File names below a stream's folder. The muxer prefix keeps URLs unique
// across restarts of a stream with the same name, so caches never mix them.
func (m *muxer) initName(track int, p *period) string {
	return fmt.Sprintf("%s_%d_init%d.mp4", m.prefix, track, p.id)
}

func (m *muxer) segmentName(track int, msn uint64) string {
	return fmt.Sprintf("%s_%d_%d.m4s", m.prefix, track, msn)
}

func (m *muxer) partName(track int, msn uint64, idx int) string {
	return fmt.Sprintf("%s_%d_%d_%d.m4s", m.prefix, track, msn, idx)
}

func mediaPlaylistName(track int) string {
	return "t" + strconv.Itoa(track) + ".m3u8"
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 5, 64)
}

// renderMediaPlaylists renders the media playlist of every track of the
// current period. Called with mu held for writing, after each change, so
// that requests only copy a pointer.
func (m *muxer) renderMediaPlaylists() []*mediaPlaylist {
	if m.period == nil {
		return nil
	}
	out := make([]*mediaPlaylist, len(m.period.tracks))
	for i := range m.period.tracks {
		out[i] = &mediaPlaylist{body: m.renderMediaPlaylist(i)}
	}
	return out
}

// listedSegments returns the window of segments a playlist shows: the last
// PlaylistSegments complete ones (or, with a DVR window, as many as cover
// it) and the one in progress.
func (m *muxer) listedSegments() []*segment {
	return m.segments[m.firstListed():]
}

// firstListed is the index in m.segments of the first listed segment.
func (m *muxer) firstListed() int {
	segs := m.segments
	complete := len(segs)
	if complete > 0 && !segs[complete-1].complete {
		complete--
	}
	first := max(0, complete-m.cfg.PlaylistSegments)
	if w := m.cfg.DVRWindow; w > 0 {
		var covered time.Duration
		i := complete
		for i > 0 && covered < w {
			i--
			covered += segs[i].duration()
		}
		first = min(first, i)
	}
	return first
}

func (m *muxer) renderMediaPlaylist(track int) []byte {
	segs := m.listedSegments()
	partTarget := m.cfg.PartDuration

	target := int(math.Ceil(m.cfg.SegmentDuration.Seconds()))
	for _, s := range segs {
		if s.complete && track < len(s.tracks) {
			tm := s.period.tracks[track]
			d := stream.FromTicks(s.tracks[track].duration(), tm.timescale)
			target = max(target, int(math.Round(d.Seconds()+0.4999)))
		}
	}

	var b bytes.Buffer
	b.Grow(2048 + 128*len(segs))
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	holdBack := time.Duration(3*target) * time.Second
	partHoldBack := 3 * partTarget
	if m.captioned() {
		// Live captions come a segment and the recognition time after
		// the media: players must stay that far behind to show them.
		partHoldBack = holdBack
	}
	fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%s,HOLD-BACK=%s\n",
		seconds(partHoldBack), seconds(holdBack))
	fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%s\n", seconds(partTarget))
	m.writeSequences(&b, segs)

	// Parts are listed for the segments of roughly the last three target
	// durations, as LL-HLS asks.
	partsFrom := len(segs) - 4
	var curInit *period
	for i, s := range segs {
		if s.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if s.period != curInit {
			curInit = s.period
			if track < len(s.period.tracks) {
				fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s\"\n", m.initName(track, s.period))
			}
		}
		var ts *trackSegment
		var timescale uint32 = 90000
		if track < len(s.tracks) {
			ts = s.tracks[track]
			timescale = s.period.tracks[track].timescale
		}
		if i < partsFrom && s.complete && ts != nil {
			b.Write(m.segmentLines(track, s))
			continue
		}
		writeDateTime(&b, s)
		if i >= partsFrom && ts != nil {
			for j, p := range ts.parts {
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%s,URI=\"%s\"", seconds(stream.FromTicks(p.duration, timescale)), m.partName(track, s.msn, j))
				if p.independent {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteByte('\n')
			}
		}
		if !s.complete {
			break
		}
		m.writeSegmentLine(&b, track, s, ts, timescale)
	}
	if m.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
		return b.Bytes()
	}
	hintMSN, hintPart := m.nextMSN, 0
	if cur := m.current(); cur != nil {
		hintMSN = cur.msn
		if track < len(cur.tracks) {
			hintPart = len(cur.tracks[track].parts)
		}
	}
	fmt.Fprintf(&b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"%s\"\n", m.partName(track, hintMSN, hintPart))
	return b.Bytes()
}

// writeSequences writes the media and discontinuity sequence numbers of a
// playlist listing segs.
func (m *muxer) writeSequences(b *bytes.Buffer, segs []*segment) {
	msn := m.nextMSN
	discSeq := m.cc
	if len(segs) > 0 {
		msn = segs[0].msn
		discSeq = segs[0].cc
		if segs[0].discontinuity {
			discSeq--
		}
	}
	fmt.Fprintf(b, "#EXT-X-MEDIA-SEQUENCE:%d\n", msn)
	if discSeq > 0 {
		fmt.Fprintf(b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", discSeq)
	}
}

func writeDateTime(b *bytes.Buffer, s *segment) {
	b.WriteString("#EXT-X-PROGRAM-DATE-TIME:")
	b.WriteString(s.dateTime.UTC().Format("2006-01-02T15:04:05.000Z"))
	b.WriteByte('\n')
}

// writeSegmentLine writes the EXTINF and URI of complete segment s, a gap
// when ts, track's share of it, holds no media.
func (m *muxer) writeSegmentLine(b *bytes.Buffer, track int, s *segment, ts *trackSegment, timescale uint32) {
	if ts == nil || len(ts.parts) == 0 {
		b.WriteString("#EXT-X-GAP\n")
		fmt.Fprintf(b, "#EXTINF:%s,\n%s\n", seconds(m.cfg.SegmentDuration), m.segmentName(track, s.msn))
		return
	}
	fmt.Fprintf(b, "#EXTINF:%s,\n%s\n", seconds(stream.FromTicks(ts.duration(), timescale)), m.segmentName(track, s.msn))
}

// segmentLines returns the date, EXTINF and URI lines of track in complete
// segment s. They never change, so they are rendered once: a long DVR
// window then costs a copy per playlist update. Called with mu held for
// writing.
func (m *muxer) segmentLines(track int, s *segment) []byte {
	ts := s.tracks[track]
	if ts.lines == nil {
		var b bytes.Buffer
		writeDateTime(&b, s)
		m.writeSegmentLine(&b, track, s, ts, s.period.tracks[track].timescale)
		ts.lines = b.Bytes()
	}
	return ts.lines
}

// hasPart reports whether track's playlist already lists part idx of
// segment msn, or anything later. idx < 0 asks for the whole segment.
// Called with mu held.
func (m *muxer) hasPart(track int, msn uint64, idx int) bool {
	for i := len(m.segments) - 1; i >= 0; i-- {
		s := m.segments[i]
		if track >= len(s.tracks) {
			continue
		}
		n := len(s.tracks[track].parts)
		switch {
		case s.msn > msn:
			if s.complete || n > 0 {
				return true
			}
		case s.msn == msn:
			if s.complete || idx >= 0 && n > idx {
				return true
			}
			return false
		default:
			return false
		}
	}
	return false
}

// renderMultivariant lists the stream's video variant and its audio
// rendition, each track as its own CMAF playlist.
func (m *muxer) renderMultivariant() []byte {
	p := m.period
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	video, audio := -1, -1
	for i, tm := range p.tracks {
		if tm.track.IsVideo() && video < 0 {
			video = i
		}
		if !tm.track.IsVideo() && audio < 0 {
			audio = i
		}
	}
	if video < 0 {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"\n%s\n",
			m.bandwidth(audio), p.tracks[audio].codecs, mediaPlaylistName(audio))
		return []byte(b.String())
	}
	v := p.tracks[video]
	codecs := v.codecs
	bw := m.bandwidth(video)
	audioAttr := ""
	if audio >= 0 {
		a := p.tracks[audio]
		_, ch := a.track.AudioFormat()
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s\"\n",
			max(ch, 1), mediaPlaylistName(audio))
		codecs += "," + a.codecs
		bw += m.bandwidth(audio)
		audioAttr = ",AUDIO=\"audio\""
	}
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"", bw, codecs)
	if w, h := v.track.Resolution(); w > 0 {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", w, h)
	}
	if fps := m.frameRate(video); fps > 0 {
		fmt.Fprintf(&b, ",FRAME-RATE=%.3f", fps)
	}
	b.WriteString(audioAttr)
	fmt.Fprintf(&b, "\n%s\n", mediaPlaylistName(video))
	return []byte(b.String())
}

// bandwidth is the peak segment bitrate of a track over the window, with a
// conservative guess before the first segment completes.
func (m *muxer) bandwidth(track int) int {
	return m.bandwidthIn(m.period, track)
}

// bandwidthIn is bandwidth over the segments of period p.
func (m *muxer) bandwidthIn(p *period, track int) int {
	peak := 0
	for _, s := range m.segments {
		if !s.complete || s.period != p || track >= len(s.tracks) {
			continue
		}
		ts := s.tracks[track]
		d := stream.FromTicks(ts.duration(), s.period.tracks[track].timescale).Seconds()
		if d > 0 {
			peak = max(peak, int(float64(ts.size()*8)/d))
		}
	}
	if peak == 0 {
		if p.tracks[track].track.IsVideo() {
			return 2_000_000
		}
		return 128_000
	}
	return peak
}

// frameRate is the average frame rate of the newest complete video segment.
func (m *muxer) frameRate(track int) float64 {
	for i := len(m.segments) - 1; i >= 0; i-- {
		s := m.segments[i]
		if !s.complete || s.period != m.period {
			continue
		}
		ts := s.tracks[track]
		d := stream.FromTicks(ts.duration(), s.period.tracks[track].timescale).Seconds()
		n := 0
		for _, p := range ts.parts {
			n += p.samples
		}
		if d > 0 && n > 0 {
			return math.Round(float64(n)/d*1000) / 1000
		}
	}
	return 0
}
