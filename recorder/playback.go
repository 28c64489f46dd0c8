package recorder

import (
	"fmt"
	"io"
	"time"

	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/stream"
)

// MaxRange bounds the time range of a playback or an export.
const MaxRange = 7 * 24 * time.Hour

// Playback is a time range of recordings ready to be served as VOD.
// Close releases its files.
type Playback struct {
	VOD   *packager.VOD
	clips []clip
}

// Close closes the archives the playback reads.
func (p *Playback) Close() { closeClips(p.clips) }

func closeClips(clips []clip) {
	for _, c := range clips {
		if c.media != nil {
			_ = c.media.Close()
		}
	}
}

// clips opens the archives of name's rendition that overlap [from, to)
// and selects their samples, oldest first.
func (r *Recorder) clips(name, rendition string, from, to time.Time) ([]clip, error) {
	if err := stream.ValidateName(name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoRecording, err)
	}
	if rendition == "" {
		rendition = RenditionSource
	}
	if from.IsZero() || to.IsZero() || !to.After(from) {
		return nil, fmt.Errorf("%w: end must be after start", ErrInvalidRange)
	}
	if to.Sub(from) > MaxRange {
		return nil, fmt.Errorf("%w: longer than %s", ErrInvalidRange, MaxRange)
	}
	known := false
	entries := r.cat.entries(func(rec *Recording) bool {
		if rec.Stream != name {
			return false
		}
		known = true
		return rec.Rendition == rendition && rec.Start.Before(to) && !rec.End.Before(from)
	})
	if !known {
		return nil, fmt.Errorf("no recordings of %s: %w", name, ErrNoRecording)
	}
	var out []clip
	for _, e := range entries {
		rec := r.cat.snapshot(e)
		m, err := openMedia(e.abs, rec.Format)
		if err != nil {
			r.log.Warn("recording unreadable", "id", rec.ID, "path", rec.Path, "error", err)
			continue
		}
		ix, err := r.index.get(e.abs, m)
		if err != nil {
			_ = m.Close()
			r.log.Warn("recording unreadable", "id", rec.ID, "path", rec.Path, "error", err)
			continue
		}
		c, ok := selectClip(rec, ix, from, to)
		if !ok {
			_ = m.Close()
			continue
		}
		c.media = m
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s from %s to %s: %w", name, from.Format(time.RFC3339), to.Format(time.RFC3339), ErrNothingInRange)
	}
	return out, nil
}

// Playback returns the recordings of name's rendition ("source" when
// empty) in [start, end) as a VOD of one period per archive. It starts on
// the last keyframe at or before start.
func (r *Recorder) Playback(name, rendition string, start, end time.Time) (*Playback, error) {
	clips, err := r.clips(name, rendition, start, end)
	if err != nil {
		return nil, err
	}
	v := &packager.VOD{SegmentDuration: r.cfg.SegmentDuration}
	for _, c := range clips {
		v.Periods = append(v.Periods, packager.VODPeriod{
			Tracks: c.tracks, Timescales: c.scales, Samples: c.samples, Start: c.start, Media: c.media,
		})
	}
	return &Playback{VOD: v, clips: clips}, nil
}

// Export is an MP4 of a time range, ready to be written.
type Export struct {
	// Start and End are the actual cut: Start is the last keyframe at or
	// before the requested start; End is where the last frame before the
	// requested end ends.
	Start, End time.Time
	// Size is the number of bytes WriteTo writes.
	Size  int64
	clips []clip
}

// WriteTo writes the MP4.
func (x *Export) WriteTo(w io.Writer) (int64, error) { return writeMP4(w, x.clips) }

// Close closes the archives the export reads.
func (x *Export) Close() { closeClips(x.clips) }

// Export prepares a faststart MP4 of name's rendition in [start, end),
// remuxed without re-encoding and cut on keyframes (see Export.Start).
// Archives in the range must share codec parameters.
func (r *Recorder) Export(name, rendition string, start, end time.Time) (*Export, error) {
	clips, err := r.clips(name, rendition, start, end)
	if err != nil {
		return nil, err
	}
	for _, c := range clips[1:] {
		if !sameCodecs(clips[0].tracks, c.tracks) {
			closeClips(clips)
			return nil, fmt.Errorf("%w at %s: export the parts before and after it separately",
				ErrRangeTooComplex, c.start.Format(time.RFC3339))
		}
	}
	size, err := mp4Size(clips)
	if err != nil {
		closeClips(clips)
		return nil, err
	}
	last := clips[len(clips)-1]
	d := driverOf(last.tracks)
	lead := last.samples[d]
	endTicks := lead[len(lead)-1].DTS + int64(lead[len(lead)-1].Duration)
	x := &Export{
		Start: clips[0].start,
		End:   last.rec.Start.Add(stream.FromTicks(endTicks, last.scales[d])),
		Size:  size,
		clips: clips,
	}
	return x, nil
}
