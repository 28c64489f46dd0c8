package recorder

import (
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
)

func ticks(d time.Duration, timescale uint32) int64 {
	ts := int64(timescale)
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

func fromTicks(t int64, timescale uint32) time.Duration {
	ts := int64(timescale)
	return time.Duration(t/ts)*time.Second + time.Duration(t%ts)*time.Second/time.Duration(ts)
}

func timescaleOf(t *stream.Track) uint32 {
	if t.ClockRate > 0 {
		return uint32(t.ClockRate)
	}
	return 90000
}

// trackWriter gathers one track's samples for the next fragment. A sample
// is held back until the next one arrives, because only then is its
// duration known.
type trackWriter struct {
	track     *stream.Track
	timescale uint32
	base      time.Duration // media time that is 0 in the archive

	pending    *fmp4.Sample
	pendingDTS int64
	lastDur    int64
	nextAudio  int64 // expected DTS of the next audio frame, -1 when unknown
	samples    []*fmp4.Sample
	fragBase   int64 // DTS of samples[0]
	end        int64 // DTS after the last finalized sample
	started    bool
	first      int64 // DTS of the first sample written
}

func newTrackWriter(t *stream.Track, base time.Duration) *trackWriter {
	return &trackWriter{track: t, timescale: timescaleOf(t), base: base, nextAudio: -1}
}

// audioFrameTicks is the fixed length of one audio frame, or 0.
func (tw *trackWriter) audioFrameTicks(payload []byte) int64 {
	switch c := tw.track.Codec.(type) {
	case *codecs.MPEG4Audio:
		if c.Config.FrameLengthFlag {
			return 960
		}
		return 1024
	case *codecs.Opus:
		if tw.timescale == 48000 {
			return opus.PacketDuration2(payload)
		}
	}
	return 0
}

// push adds an access unit; it reports false when the unit is dropped
// because it starts before the archive or goes back in time.
func (tw *trackWriter) push(au *stream.AccessUnit) bool {
	if au.DTS < tw.base {
		return false
	}
	dts := ticks(au.DTS-tw.base, tw.timescale)
	if frame := tw.audioFrameTicks(au.Payload); frame > 0 {
		// Container timestamps of audio are rounded to milliseconds: keep
		// sample-exact spacing while the source stays within one frame.
		if tw.nextAudio >= 0 && abs(dts-tw.nextAudio) < frame {
			dts = tw.nextAudio
		}
		tw.nextAudio = dts + frame
	}
	if tw.pending != nil {
		d := dts - tw.pendingDTS
		if d <= 0 {
			return false
		}
		tw.finalize(d)
	}
	if !tw.started {
		tw.started, tw.first = true, dts
	}
	tw.pending = &fmp4.Sample{
		PTSOffset:       int32(ticks(au.PTS-au.DTS, tw.timescale)),
		IsNonSyncSample: !au.Key,
		Payload:         au.Payload,
	}
	tw.pendingDTS = dts
	return true
}

func (tw *trackWriter) finalize(d int64) {
	if len(tw.samples) == 0 {
		tw.fragBase = tw.pendingDTS
	}
	tw.pending.Duration = uint32(d)
	tw.samples = append(tw.samples, tw.pending)
	tw.lastDur = d
	tw.end = tw.pendingDTS + d
	tw.pending = nil
}

// flushPending closes the held-back sample: at end, when given, is where
// the next sample would start (in media time); otherwise the last
// duration is reused (the fixed frame length for audio).
func (tw *trackWriter) flushPending(at time.Duration, exact bool) {
	if tw.pending == nil {
		return
	}
	var d int64
	if exact && at > tw.base {
		d = ticks(at-tw.base, tw.timescale) - tw.pendingDTS
	}
	if d <= 0 {
		if frame := tw.audioFrameTicks(tw.pending.Payload); frame > 0 {
			d = frame
		} else if tw.lastDur > 0 {
			d = tw.lastDur
		} else {
			d = int64(tw.timescale) / 30
		}
	}
	tw.finalize(d)
}

// span is the length of the finalized samples of the next fragment.
func (tw *trackWriter) span() time.Duration {
	if len(tw.samples) == 0 {
		return 0
	}
	return fromTicks(tw.end-tw.fragBase, tw.timescale)
}

// duration is the media length written so far (finalized samples).
func (tw *trackWriter) duration() time.Duration {
	if !tw.started {
		return 0
	}
	return fromTicks(tw.end, tw.timescale)
}

// fragmentEncoder turns the tracks' finalized samples into one fragment
// (moof+mdat with a traf per track).
type fragmentEncoder struct {
	seq uint32
	buf seekablebuffer.Buffer
}

// encode returns the fragment, or nil when no track has samples. The
// returned bytes are valid until the next call. The payloads are copied
// once, into the fragment.
func (fe *fragmentEncoder) encode(tracks []*trackWriter) ([]byte, error) {
	var parts []*fmp4.PartTrack
	for i, tw := range tracks {
		if len(tw.samples) == 0 {
			continue
		}
		parts = append(parts, &fmp4.PartTrack{ID: i + 1, BaseTime: uint64(tw.fragBase), Samples: tw.samples})
	}
	if len(parts) == 0 {
		return nil, nil
	}
	fe.seq++
	fe.buf.Reset()
	if err := (fmp4.Part{SequenceNumber: fe.seq, Tracks: parts}).Marshal(&fe.buf); err != nil {
		return nil, fmt.Errorf("encode fragment %d: %w", fe.seq, err)
	}
	for _, tw := range tracks {
		clear(tw.samples)
		tw.samples = tw.samples[:0]
	}
	return fe.buf.Bytes(), nil
}

// encodeInit returns the ftyp+moov of an archive with tracks.
func encodeInit(tracks []*stream.Track) ([]byte, error) {
	init := fmp4.Init{}
	for i, t := range tracks {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: i + 1, TimeScale: timescaleOf(t), Codec: t.Codec})
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("encode archive header: %w", err)
	}
	return buf.Bytes(), nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
