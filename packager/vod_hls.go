package packager

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// vodTrackStats sums up one track of a VOD over all its periods.
type vodTrackStats struct {
	peak, average int // bits per second
	codecs        []string
	width, height int
	channels      int
	frameRate     float64
}

// track returns track i as the first period that has it carries it.
func (l *vodLayout) track(i int) *stream.Track {
	for _, pl := range l.periods {
		if i < len(pl.tms) {
			return pl.tms[i].track
		}
	}
	return nil
}

// firstTracks returns the first video and the first audio track, or -1.
func (l *vodLayout) firstTracks() (video, audio int) {
	video, audio = -1, -1
	for i := range l.tracks {
		switch t := l.track(i); {
		case t.IsVideo() && video < 0:
			video = i
		case !t.IsVideo() && audio < 0:
			audio = i
		}
	}
	return video, audio
}

func (l *vodLayout) stats(track int) vodTrackStats {
	var st vodTrackStats
	var bytes, frames int
	var dur time.Duration
	for _, pl := range l.periods {
		if track >= len(pl.tms) {
			continue
		}
		tm := pl.tms[track]
		if c := tm.codecs; c != "" && !slices.Contains(st.codecs, c) {
			st.codecs = append(st.codecs, c)
		}
		if w, h := tm.track.Resolution(); w*h > st.width*st.height {
			st.width, st.height = w, h
		}
		if _, ch := tm.track.AudioFormat(); ch > st.channels {
			st.channels = ch
		}
		for seg := range pl.segments() {
			samples := pl.samples(track, seg)
			if len(samples) == 0 {
				continue
			}
			size := fragmentBytes(samples)
			d := stream.FromTicks(sampleTicks(samples), pl.p.Timescales[track])
			if d > 0 {
				st.peak = max(st.peak, int(math.Ceil(float64(size*8)/d.Seconds())))
			}
			bytes += size
			frames += len(samples)
			dur += d
		}
	}
	if dur > 0 {
		st.average = int(math.Ceil(float64(bytes*8) / dur.Seconds()))
		st.frameRate = math.Round(float64(frames)/dur.Seconds()*1000) / 1000
	}
	st.peak = max(st.peak, st.average)
	return st
}

// videoVariants returns the video tracks the presentation offers: every
// video track with Variants, else the first one (none for audio only).
func (l *vodLayout) videoVariants() []int {
	var out []int
	for i := range l.tracks {
		if t := l.track(i); t.IsVideo() {
			out = append(out, i)
			if !l.variants {
				break
			}
		}
	}
	return out
}

// renderMultivariant offers one variant per video variant track (see
// VOD.Variants), each with the first audio track as its audio rendition,
// or the audio alone.
func (l *vodLayout) renderMultivariant(q string) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	videos := l.videoVariants()
	_, audio := l.firstTracks()
	if len(videos) == 0 {
		a := l.stats(audio)
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"%s\"\n%s%s\n",
			a.peak, a.average, strings.Join(a.codecs, ","), mediaPlaylistName(audio), q)
		return []byte(b.String())
	}
	var a vodTrackStats
	if audio >= 0 {
		a = l.stats(audio)
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s%s\"\n",
			max(a.channels, 1), mediaPlaylistName(audio), q)
	}
	for _, video := range videos {
		v := l.stats(video)
		bw, avg, codecs := v.peak, v.average, slices.Clone(v.codecs)
		if audio >= 0 {
			bw += a.peak
			avg += a.average
			codecs = append(codecs, a.codecs...)
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"%s\"", bw, avg, strings.Join(codecs, ","))
		if v.width > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.width, v.height)
		}
		if v.frameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", v.frameRate)
		}
		if audio >= 0 {
			b.WriteString(",AUDIO=\"audio\"")
		}
		fmt.Fprintf(&b, "\n%s%s\n", mediaPlaylistName(video), q)
	}
	return []byte(b.String())
}

// targetDuration is the longest segment of track, rounded up to seconds.
func (l *vodLayout) targetDuration(track int) int {
	longest := time.Second
	for _, pl := range l.periods {
		for seg := range pl.segments() {
			_, d := pl.span(track, seg)
			longest = max(longest, d)
		}
	}
	return int((longest + time.Second - 1) / time.Second)
}

// renderMediaPlaylist lists every segment of track, period after period.
// A segment without samples of the track, or a period without the track,
// is listed as a gap.
func (l *vodLayout) renderMediaPlaylist(track int, q string) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n", l.targetDuration(track))
	first := true
	for _, pl := range l.periods {
		if pl.segments() == 0 {
			continue
		}
		if !first {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		first = false
		has := track < len(pl.tms)
		if has {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s%s\"\n", vodFile{kind: fileInit, track: track, period: pl.index}.name(), q)
		}
		for seg := range pl.segments() {
			start, d := pl.span(track, seg)
			if t := pl.dateTime(start); !t.IsZero() {
				fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", t.UTC().Format("2006-01-02T15:04:05.000Z"))
			}
			if !has || len(pl.samples(track, seg)) == 0 {
				b.WriteString("#EXT-X-GAP\n")
			}
			fmt.Fprintf(&b, "#EXTINF:%s,\n%s%s\n", seconds(d), vodFile{kind: fileSegment, track: track, period: pl.index, index: seg}.name(), q)
		}
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return []byte(b.String())
}
