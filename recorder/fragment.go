package recorder

import (
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/mps-dev/mps/stream"
)

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
	return &trackWriter{track: t, timescale: t.Timescale(), base: base, nextAudio: -1}
}

// push adds an access unit; it reports false when the unit is dropped
// because it starts before the archive or goes back in time.
func (tw *trackWriter) push(au *stream.AccessUnit) bool {
	if au.DTS < tw.base {
		return false
	}
	dts := stream.Ticks(au.DTS-tw.base, tw.timescale)
	if frame := tw.track.FrameTicks(au.Payload); frame > 0 {
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
		PTSOffset:       int32(stream.Ticks(au.PTS-au.DTS, tw.timescale)),
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
		d = stream.Ticks(at-tw.base, tw.timescale) - tw.pendingDTS
	}
	if d <= 0 {
		if frame := tw.track.FrameTicks(tw.pending.Payload); frame > 0 {
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
	return stream.FromTicks(tw.end-tw.fragBase, tw.timescale)
}

// duration is the media length written so far (finalized samples).
func (tw *trackWriter) duration() time.Duration {
	if !tw.started {
		return 0
	}
	return stream.FromTicks(tw.end, tw.timescale)
}

// fragmentEncoder turns the tracks' finalized samples into one fragment
// (moof+mdat with a traf per track), written into a reused buffer: each
// payload is copied once, and nothing is allocated per frame.
type fragmentEncoder struct {
	seq uint32
	buf []byte
}

// Sample flags of the trun: a sync sample depends on no other; a non-sync
// one depends on others and is marked non-sync.
const (
	flagsSync    = 0x02000000
	flagsNonSync = 0x01010000
)

// encode returns the fragment, or nil when no track has samples. The
// returned bytes are valid until the next call.
func (fe *fragmentEncoder) encode(tracks []*trackWriter) ([]byte, error) {
	moofSize := 8 + 16 // moof header, mfhd
	dataSize := 0
	for _, tw := range tracks {
		if n := len(tw.samples); n > 0 {
			moofSize += 8 + 16 + 20 + 20 + 16*n // traf, tfhd, tfdt, trun
			for _, s := range tw.samples {
				dataSize += len(s.Payload)
			}
		}
	}
	if moofSize == 24 {
		return nil, nil
	}
	if uint64(moofSize)+8+uint64(dataSize) > 1<<32-1 {
		return nil, fmt.Errorf("fragment of %d bytes is too large", dataSize)
	}
	fe.seq++
	b := fe.buf[:0]
	b = box(b, moofSize, "moof")
	b = box(b, 16, "mfhd")
	b = be32(b, 0)
	b = be32(b, fe.seq)
	dataOffset := moofSize + 8
	for i, tw := range tracks {
		n := len(tw.samples)
		if n == 0 {
			continue
		}
		b = box(b, 8+16+20+20+16*n, "traf")
		b = box(b, 16, "tfhd")
		b = be32(b, 0x020000) // default-base-is-moof
		b = be32(b, uint32(i+1))
		b = box(b, 20, "tfdt")
		b = be32(b, 1<<24) // version 1: 64-bit time
		b = be32(b, uint32(uint64(tw.fragBase)>>32))
		b = be32(b, uint32(tw.fragBase))
		b = box(b, 20+16*n, "trun")
		b = be32(b, 1<<24|trunDataOffset|trunDuration|trunSize|trunFlags|trunCTS) // version 1: signed offsets
		b = be32(b, uint32(n))
		b = be32(b, uint32(dataOffset))
		for _, s := range tw.samples {
			flags := uint32(flagsSync)
			if s.IsNonSyncSample {
				flags = flagsNonSync
			}
			b = be32(b, s.Duration)
			b = be32(b, uint32(len(s.Payload)))
			b = be32(b, flags)
			b = be32(b, uint32(s.PTSOffset))
			dataOffset += len(s.Payload)
		}
	}
	b = box(b, 8+dataSize, "mdat")
	for _, tw := range tracks {
		for _, s := range tw.samples {
			b = append(b, s.Payload...)
		}
		clear(tw.samples)
		tw.samples = tw.samples[:0]
	}
	fe.buf = b
	return b, nil
}

func box(b []byte, size int, typ string) []byte {
	return append(be32(b, uint32(size)), typ...)
}

func be32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// encodeInit returns the ftyp+moov of an archive with tracks.
func encodeInit(tracks []*stream.Track) ([]byte, error) {
	init := fmp4.Init{}
	for i, t := range tracks {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: i + 1, TimeScale: t.Timescale(), Codec: t.Codec})
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
