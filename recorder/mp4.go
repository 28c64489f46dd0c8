package recorder

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"

	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/stream"
)

// clip is the part of one archive that a time range selects.
type clip struct {
	rec     Recording
	media   *media
	tracks  []*stream.Track
	scales  []uint32
	samples [][]packager.VODSample
	start   time.Time // wall-clock time of the first sample of the driving track
}

func driverOf(tracks []*stream.Track) int {
	for i, t := range tracks {
		if t.IsVideo() {
			return i
		}
	}
	return 0
}

// selectClip picks from an archive's index the samples of [from, to): the
// driving track from its last keyframe at or before from (the cut point)
// to its last sample that starts before to, and the other tracks' samples
// that start in the same span. ok is false when nothing is selected.
func selectClip(rec Recording, ix *archiveIndex, from, to time.Time) (c clip, ok bool) {
	d := driverOf(ix.tracks)
	wall := func(track int, dts int64) time.Time {
		return rec.Start.Add(stream.FromTicks(dts, ix.timescales[track]))
	}
	lead := ix.samples[d]
	first := -1
	for i, s := range lead {
		if !s.Key {
			continue
		}
		if first >= 0 && wall(d, s.DTS).After(from) {
			break
		}
		first = i
	}
	if first < 0 {
		return c, false
	}
	last := first
	for last < len(lead) && wall(d, lead[last].DTS).Before(to) {
		last++
	}
	if last == first {
		return c, false
	}
	spanFrom := stream.FromTicks(lead[first].DTS, ix.timescales[d])
	spanTo := stream.FromTicks(lead[last-1].DTS+int64(lead[last-1].Duration), ix.timescales[d])
	c = clip{rec: rec, tracks: ix.tracks, scales: ix.timescales, samples: make([][]packager.VODSample, len(ix.tracks))}
	c.start = rec.Start.Add(spanFrom)
	for t, ss := range ix.samples {
		if t == d {
			c.samples[t] = lead[first:last]
			continue
		}
		lo := stream.Ticks(spanFrom, ix.timescales[t])
		hi := stream.Ticks(spanTo, ix.timescales[t])
		for _, s := range ss {
			if s.DTS >= lo && s.DTS < hi {
				c.samples[t] = append(c.samples[t], s)
			}
		}
	}
	return c, true
}

// sameCodecs reports whether two clips can share one MP4 header.
func sameCodecs(a, b []*stream.Track) bool {
	if len(a) != len(b) {
		return false
	}
	ia, err1 := encodeInit(a)
	ib, err2 := encodeInit(b)
	return err1 == nil && err2 == nil && bytes.Equal(ia, ib)
}

// presentation builds a plain MP4 of clips played one after the other
// (they share codec parameters). Payloads are read when written, and
// with zero payloads the same presentation measures the output size.
func presentation(clips []clip, zero bool) (*pmp4.Presentation, error) {
	tracks := clips[0].tracks
	scales := clips[0].scales
	d := driverOf(tracks)
	p := &pmp4.Presentation{}
	var total int64
	var zeros []byte
	if zero {
		var largest uint32
		for _, c := range clips {
			for _, ss := range c.samples {
				for _, s := range ss {
					largest = max(largest, s.Size)
				}
			}
		}
		zeros = make([]byte, largest)
	}
	for t, tr := range tracks {
		pt := &pmp4.Track{ID: t + 1, TimeScale: scales[t], Codec: tr.Codec}
		for _, c := range clips {
			m := c.media
			for _, s := range c.samples[t] {
				s := s
				total += int64(s.Size)
				ps := &pmp4.Sample{
					Duration:        s.Duration,
					PTSOffset:       s.PTSOffset,
					IsNonSyncSample: !s.Key,
					PayloadSize:     s.Size,
				}
				if zero {
					ps.GetPayload = func() ([]byte, error) { return zeros[:s.Size], nil }
				} else {
					ps.GetPayload = func() ([]byte, error) {
						b := make([]byte, s.Size)
						if _, err := m.ReadAt(b, s.Offset); err != nil {
							return nil, fmt.Errorf("read sample at %d: %w", s.Offset, err)
						}
						return b, nil
					}
				}
				pt.Samples = append(pt.Samples, ps)
			}
		}
		p.Tracks = append(p.Tracks, pt)
	}
	if total > math.MaxUint32-(64<<20) {
		return nil, fmt.Errorf("%w: %d bytes of media is more than one MP4 file can address", ErrInvalidRange, total)
	}
	// Start every track at the driving track's first presentation time.
	lead := clips[0].samples[d]
	if len(lead) == 0 {
		return nil, ErrNothingInRange
	}
	zeroAt := stream.FromTicks(lead[0].DTS+int64(lead[0].PTSOffset), scales[d])
	for t := range tracks {
		ss := clips[0].samples[t]
		if len(ss) == 0 {
			continue
		}
		off := stream.FromTicks(ss[0].DTS, scales[t]) - zeroAt
		p.Tracks[t].TimeOffset = int32(stream.Ticks(off, scales[t]))
	}
	return p, nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// writeMP4 writes clips as one faststart MP4 and returns its size.
func writeMP4(w io.Writer, clips []clip) (int64, error) {
	p, err := presentation(clips, false)
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{}
	if err := p.Marshal(io.MultiWriter(w, cw)); err != nil {
		return cw.n, fmt.Errorf("write mp4: %w", err)
	}
	return cw.n, nil
}

// mp4Size is the size writeMP4 will write.
func mp4Size(clips []clip) (int64, error) {
	p, err := presentation(clips, true)
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{}
	if err := p.Marshal(cw); err != nil {
		return 0, fmt.Errorf("measure mp4: %w", err)
	}
	return cw.n, nil
}
