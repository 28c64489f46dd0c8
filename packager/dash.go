package packager

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// isoDuration formats d as an xs:duration such as PT2.000S.
func isoDuration(d time.Duration) string {
	return fmt.Sprintf("PT%.3fS", d.Seconds())
}

// isoStart formats a Period start to the microsecond, so that contiguous
// periods meet exactly.
func isoStart(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', 6, 64)
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return "PT" + s + "S"
}

func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// dashS is one S element of a SegmentTimeline.
type dashS struct{ t, d int64 }

// dashRep is one Representation of one Period, copied out of a muxer so that
// it can be written without the muxer's lock.
type dashRep struct {
	id            string
	video         bool
	mime          string
	codecs        string
	bandwidth     int
	width, height int
	rate          int
	channels      int
	timescale     uint32
	pto           int64
	init, media   string
	startNumber   uint64
	timeline      []dashS
}

// audioKey groups audio renditions that a player can treat as one.
func (r *dashRep) audioKey() string {
	return fmt.Sprintf("%s/%d/%d", r.codecs, r.rate, r.channels)
}

// dashRep describes track of m over segs, complete segments of one of m's
// periods. The period starts at ref's first sample: that is its
// presentationTimeOffset. dir prefixes the media URLs (relative to the MPD).
// Called with m.mu held.
func (m *muxer) dashRep(id string, track int, segs []*segment, ref *period, dir string) dashRep {
	p := segs[0].period
	tm := p.tracks[track]
	r := dashRep{
		id:          id,
		video:       tm.track.IsVideo(),
		mime:        tm.mime,
		codecs:      tm.codecs,
		bandwidth:   m.bandwidthIn(p, track),
		timescale:   tm.timescale,
		pto:         stream.Ticks(ref.mediaStart, tm.timescale),
		init:        dir + m.initName(track, p),
		media:       dir + fmt.Sprintf("%s_%d_$Number$.m4s", m.prefix, track),
		startNumber: segs[0].msn,
	}
	if r.video {
		r.width, r.height = tm.track.Resolution()
	} else {
		r.rate, r.channels = tm.track.AudioFormat()
		r.channels = max(r.channels, 1)
	}
	next := int64(-1)
	for _, s := range segs {
		ts := s.tracks[track]
		start, d := ts.start(), ts.duration()
		if len(ts.parts) == 0 {
			if next < 0 {
				next = stream.Ticks(s.start, tm.timescale)
			}
			start, d = next, stream.Ticks(m.cfg.SegmentDuration, tm.timescale)
		}
		r.timeline = append(r.timeline, dashS{start, d})
		next = start + d
	}
	return r
}

// completeListed returns the complete segments of the playlist window.
func (m *muxer) completeListed() []*segment {
	var complete []*segment
	for _, s := range m.listedSegments() {
		if s.complete {
			complete = append(complete, s)
		}
	}
	return complete
}

// byPeriod splits segments into runs of one period each.
func byPeriod(segs []*segment) [][]*segment {
	var out [][]*segment
	for i := 0; i < len(segs); {
		j := i
		for j < len(segs) && segs[j].period == segs[i].period {
			j++
		}
		out = append(out, segs[i:j])
		i = j
	}
	return out
}

// renderMPD renders a DASH manifest over the same segments as HLS: one
// Period per publishing session, one AdaptationSet per track, and a
// SegmentTimeline addressed by segment number. Periods are contiguous on the
// presentation timeline, and each one's presentationTimeOffset is the media
// time of its first sample. Called with mu read-locked.
func (m *muxer) renderMPD(now time.Time) []byte {
	complete := m.completeListed()
	var b strings.Builder
	b.Grow(4096)
	m.writeMPDHeader(&b, complete, now, 0)
	for _, segs := range byPeriod(complete) {
		p := segs[0].period
		fmt.Fprintf(&b, `  <Period id="%d" start="%s">`+"\n", p.id, isoStart(p.presStart))
		for i, tm := range p.tracks {
			kind := "audio"
			if tm.track.IsVideo() {
				kind = "video"
			}
			r := m.dashRep(fmt.Sprint(i), i, segs, p, "")
			fmt.Fprintf(&b, `    <AdaptationSet id="%d" contentType="%s" mimeType="%s" segmentAlignment="true" startWithSAP="1">`+"\n", i, kind, tm.mime)
			writeRep(&b, &r)
			b.WriteString("    </AdaptationSet>\n")
		}
		b.WriteString("  </Period>\n")
	}
	writeMPDFooter(&b, m.ended, now)
	return []byte(b.String())
}

// writeMPDHeader writes the MPD element for m's complete listed segments;
// extraSeg raises maxSegmentDuration (renditions may cut a little later).
func (m *muxer) writeMPDHeader(b *strings.Builder, complete []*segment, now time.Time, extraSeg time.Duration) {
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"`)
	maxSeg := max(m.cfg.SegmentDuration, extraSeg)
	var total time.Duration
	for _, s := range complete {
		d := s.duration()
		maxSeg = max(maxSeg, d)
		total += d
	}
	if m.ended {
		end := time.Duration(0)
		if n := len(complete); n > 0 {
			end = complete[n-1].period.presEnd()
		}
		fmt.Fprintf(b, ` type="static" mediaPresentationDuration="%s" minBufferTime="%s">`+"\n",
			isoDuration(end), isoDuration(m.cfg.SegmentDuration))
		return
	}
	fmt.Fprintf(b, ` type="dynamic" availabilityStartTime="%s" publishTime="%s" minimumUpdatePeriod="%s" minBufferTime="%s" timeShiftBufferDepth="%s" suggestedPresentationDelay="%s" maxSegmentDuration="%s">`+"\n",
		isoTime(m.ast), isoTime(now), isoDuration(m.cfg.SegmentDuration), isoDuration(m.cfg.SegmentDuration),
		isoDuration(total), isoDuration(2*m.cfg.SegmentDuration), isoDuration(maxSeg))
}

func writeMPDFooter(b *strings.Builder, ended bool, now time.Time) {
	if !ended {
		fmt.Fprintf(b, `  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="%s"/>`+"\n", isoTime(now))
	}
	b.WriteString("</MPD>\n")
}

// writeRep writes one Representation with its SegmentTemplate.
func writeRep(b *strings.Builder, r *dashRep) {
	fmt.Fprintf(b, `      <Representation id="%s" codecs="%s" bandwidth="%d"`, r.id, r.codecs, r.bandwidth)
	if r.video {
		if r.width > 0 {
			fmt.Fprintf(b, ` width="%d" height="%d"`, r.width, r.height)
		}
		b.WriteString(">\n")
	} else {
		fmt.Fprintf(b, ` audioSamplingRate="%d">`+"\n", r.rate)
		fmt.Fprintf(b, `        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="%d"/>`+"\n", r.channels)
	}
	fmt.Fprintf(b, `        <SegmentTemplate timescale="%d" presentationTimeOffset="%d" initialization="%s" media="%s" startNumber="%d">`+"\n",
		r.timescale, r.pto, r.init, r.media, r.startNumber)
	b.WriteString("          <SegmentTimeline>\n")
	next := int64(-1)
	for _, s := range r.timeline {
		if s.t != next {
			fmt.Fprintf(b, `            <S t="%d" d="%d"/>`+"\n", s.t, s.d)
		} else {
			fmt.Fprintf(b, `            <S d="%d"/>`+"\n", s.d)
		}
		next = s.t + s.d
	}
	b.WriteString("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n")
}

// duration of a segment on the driving track.
func (s *segment) duration() time.Duration {
	d := s.period.driver()
	return stream.FromTicks(s.tracks[d].duration(), s.period.tracks[d].timescale)
}
