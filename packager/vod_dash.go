package packager

import (
	"fmt"
	"html"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// renderMPD renders a static MPD over the same segments as the HLS
// playlists: one Period per period with media, contiguous on the
// presentation timeline, and one AdaptationSet per track (with
// VOD.Variants, one for all video tracks, a Representation each),
// addressed by segment number through a SegmentTimeline.
func (l *vodLayout) renderMPD(q string) []byte {
	xq := html.EscapeString(q)
	var b strings.Builder
	b.Grow(4096)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"`)
	fmt.Fprintf(&b, ` type="static" mediaPresentationDuration="%s" minBufferTime="%s" maxSegmentDuration="%s">`+"\n",
		isoDuration(l.duration), isoDuration(l.target), isoDuration(l.maxSegment()))
	for _, pl := range l.periods {
		if pl.segments() == 0 {
			continue
		}
		fmt.Fprintf(&b, `  <Period id="%d" start="%s">`+"\n", pl.index, isoStart(pl.presStart))
		videoSet := -1 // with variants, the track whose set holds every video track
		for t, tm := range pl.tms {
			kind := "audio"
			if tm.track.IsVideo() {
				kind = "video"
			}
			reps := []int{t}
			if l.variants && kind == "video" {
				if videoSet >= 0 {
					continue
				}
				videoSet = t
				for u := t + 1; u < len(pl.tms); u++ {
					if pl.tms[u].track.IsVideo() {
						reps = append(reps, u)
					}
				}
			}
			fmt.Fprintf(&b, `    <AdaptationSet id="%d" contentType="%s" mimeType="%s" segmentAlignment="true" startWithSAP="1">`+"\n", t, kind, tm.mime)
			for _, u := range reps {
				r := pl.dashRep(u, xq)
				writeRep(&b, &r)
			}
			b.WriteString("    </AdaptationSet>\n")
		}
		b.WriteString("  </Period>\n")
	}
	b.WriteString("</MPD>\n")
	return []byte(b.String())
}

// maxSegment is the longest segment of any track.
func (l *vodLayout) maxSegment() time.Duration {
	longest := l.target
	for _, pl := range l.periods {
		for t := range pl.tms {
			for seg := range pl.segments() {
				_, d := pl.span(t, seg)
				longest = max(longest, d)
			}
		}
	}
	return longest
}

// startTicks is the first DTS of the driving track in timescale ts, exact
// when ts is the driving track's.
func (pl *vodPeriodLayout) startTicks(ts uint32) int64 {
	from := pl.p.Timescales[pl.driver]
	t := pl.p.Samples[pl.driver][0].DTS
	return t/int64(from)*int64(ts) + t%int64(from)*int64(ts)/int64(from)
}

// dashRep describes track of the period; xq is the XML-escaped query the
// media URLs carry. A segment without samples of the track keeps its place
// in the timeline (segment numbers are shared by all tracks), with the
// driving track's span.
func (pl *vodPeriodLayout) dashRep(track int, xq string) dashRep {
	tm := pl.tms[track]
	ts := tm.timescale
	r := dashRep{
		id:        fmt.Sprint(track),
		video:     tm.track.IsVideo(),
		mime:      tm.mime,
		codecs:    tm.codecs,
		timescale: ts,
		pto:       pl.startTicks(ts),
		init:      vodFile{kind: fileInit, track: track, period: pl.index}.name() + xq,
		media:     vodSegmentTemplate(track, pl.index) + xq,
	}
	if r.video {
		r.width, r.height = tm.track.Resolution()
	} else {
		r.rate, r.channels = tm.track.AudioFormat()
		r.channels = max(r.channels, 1)
	}
	for seg := range pl.segments() {
		samples := pl.samples(track, seg)
		var s dashS
		if len(samples) > 0 {
			s = dashS{samples[0].DTS, sampleTicks(samples)}
			if d := stream.FromTicks(s.d, ts); d > 0 {
				r.bandwidth = max(r.bandwidth, int(float64(fragmentBytes(samples)*8)/d.Seconds()))
			}
		} else {
			start, d := pl.span(track, seg)
			s = dashS{stream.Ticks(start, ts), stream.Ticks(d, ts)}
		}
		r.timeline = append(r.timeline, s)
	}
	return r
}
