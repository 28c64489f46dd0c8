package packager

import (
	"fmt"
	"strings"
	"time"
)

// isoDuration formats d as an xs:duration such as PT2.000S.
func isoDuration(d time.Duration) string {
	return fmt.Sprintf("PT%.3fS", d.Seconds())
}

func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// renderMPD renders a DASH manifest over the same segments as HLS: one
// Period per publishing session, one AdaptationSet per track, and a
// SegmentTimeline addressed by segment number. Called with mu read-locked.
func (m *muxer) renderMPD(now time.Time) []byte {
	segs := m.listedSegments()
	var complete []*segment
	for _, s := range segs {
		if s.complete {
			complete = append(complete, s)
		}
	}
	var b strings.Builder
	b.Grow(4096)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"`)
	maxSeg := m.cfg.SegmentDuration
	var total time.Duration
	for _, s := range complete {
		d := s.duration()
		maxSeg = max(maxSeg, d)
		total += d
	}
	if m.ended {
		end := time.Duration(0)
		if n := len(complete); n > 0 {
			end = complete[n-1].start + complete[n-1].duration()
		}
		fmt.Fprintf(&b, ` type="static" mediaPresentationDuration="%s" minBufferTime="%s">`+"\n",
			isoDuration(end), isoDuration(m.cfg.SegmentDuration))
	} else {
		fmt.Fprintf(&b, ` type="dynamic" availabilityStartTime="%s" publishTime="%s" minimumUpdatePeriod="%s" minBufferTime="%s" timeShiftBufferDepth="%s" suggestedPresentationDelay="%s" maxSegmentDuration="%s">`+"\n",
			isoTime(m.ast), isoTime(now), isoDuration(m.cfg.SegmentDuration), isoDuration(m.cfg.SegmentDuration),
			isoDuration(total), isoDuration(2*m.cfg.SegmentDuration), isoDuration(maxSeg))
	}
	for i := 0; i < len(complete); {
		j := i
		for j < len(complete) && complete[j].period == complete[i].period {
			j++
		}
		m.renderPeriod(&b, complete[i:j])
		i = j
	}
	if !m.ended {
		fmt.Fprintf(&b, `  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="%s"/>`+"\n", isoTime(now))
	}
	b.WriteString("</MPD>\n")
	return []byte(b.String())
}

func (m *muxer) renderPeriod(b *strings.Builder, segs []*segment) {
	p := segs[0].period
	fmt.Fprintf(b, `  <Period id="%d" start="%s">`+"\n", p.id, isoDuration(p.offset))
	for i, tm := range p.tracks {
		kind := "audio"
		if tm.track.IsVideo() {
			kind = "video"
		}
		fmt.Fprintf(b, `    <AdaptationSet id="%d" contentType="%s" mimeType="%s" segmentAlignment="true" startWithSAP="1">`+"\n", i, kind, tm.mime)
		fmt.Fprintf(b, `      <Representation id="%d" codecs="%s" bandwidth="%d"`, i, tm.codecs, m.bandwidth(i))
		if tm.track.IsVideo() {
			if w, h := tm.track.Resolution(); w > 0 {
				fmt.Fprintf(b, ` width="%d" height="%d"`, w, h)
			}
		} else {
			rate, ch := tm.track.AudioFormat()
			fmt.Fprintf(b, ` audioSamplingRate="%d">`+"\n", rate)
			fmt.Fprintf(b, `        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="%d"/>`+"\n", max(ch, 1))
			b.WriteString("        ")
		}
		if tm.track.IsVideo() {
			b.WriteString(">\n        ")
		}
		fmt.Fprintf(b, `<SegmentTemplate timescale="%d" presentationTimeOffset="%d" initialization="%s" media="%s" startNumber="%d">`+"\n",
			tm.timescale, ticks(p.offset, tm.timescale), m.initName(i, p), fmt.Sprintf("%s_%d_$Number$.m4s", m.prefix, i), segs[0].msn)
		b.WriteString("          <SegmentTimeline>\n")
		next := int64(-1)
		for _, s := range segs {
			ts := s.tracks[i]
			start, d := ts.start(), ts.duration()
			if len(ts.parts) == 0 {
				start, d = next, ticks(m.cfg.SegmentDuration, tm.timescale)
			}
			if start != next {
				fmt.Fprintf(b, `            <S t="%d" d="%d"/>`+"\n", start, d)
			} else {
				fmt.Fprintf(b, `            <S d="%d"/>`+"\n", d)
			}
			next = start + d
		}
		b.WriteString("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n")
	}
	b.WriteString("  </Period>\n")
}

// duration of a segment on the driving track.
func (s *segment) duration() time.Duration {
	d := s.period.driver()
	return fromTicks(s.tracks[d].duration(), s.period.tracks[d].timescale)
}
