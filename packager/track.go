package packager

import (
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/mps-dev/mps/stream"
)

// pendingSample is the newest sample of a track. It is held back until the
// next one arrives, because only then is its duration known.
type pendingSample struct {
	dts       int64
	ptsOffset int32
	key       bool
	payload   []byte
}

// trackMuxer turns one track's access units into CMAF parts.
type trackMuxer struct {
	track     *stream.Track
	timescale uint32
	init      []byte
	mime      string
	codecs    string

	pending      *pendingSample
	spare        *pendingSample // reused, so steady state allocates no holder per frame
	lastDuration int64
	nextAudioDTS int64 // expected DTS of the next audio frame, -1 when unknown
	samples      []*fmp4.Sample
	sampleBuf    []fmp4.Sample
	partBase     int64
	endTicks     int64
	sequence     uint32
}

func newTrackMuxer(t *stream.Track) (*trackMuxer, error) {
	timescale := t.Timescale()
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: timescale, Codec: t.Codec}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("init segment for %s track: %w", t.CodecName(), err)
	}
	mime := "audio/mp4"
	if t.IsVideo() {
		mime = "video/mp4"
	}
	return &trackMuxer{
		track:        t,
		timescale:    timescale,
		init:         buf.Bytes(),
		mime:         mime,
		codecs:       codecString(t.Codec),
		nextAudioDTS: -1,
	}, nil
}

// push adds an access unit. It returns false when the unit goes back in time
// and was dropped.
func (tm *trackMuxer) push(au *stream.AccessUnit, offset time.Duration) bool {
	dts := stream.Ticks(au.DTS+offset, tm.timescale)
	if frame := tm.track.FrameTicks(au.Payload); frame > 0 {
		// Container timestamps of audio are rounded to milliseconds; keep
		// sample-exact spacing while the source stays within one frame.
		if tm.nextAudioDTS >= 0 && abs(dts-tm.nextAudioDTS) < frame {
			dts = tm.nextAudioDTS
		}
		tm.nextAudioDTS = dts + frame
	}
	if tm.pending != nil {
		d := dts - tm.pending.dts
		if d <= 0 {
			return false
		}
		tm.finalize(d)
	}
	ps := tm.spare
	if ps == nil {
		ps = &pendingSample{}
	}
	tm.spare = nil
	*ps = pendingSample{
		dts:       dts,
		ptsOffset: int32(stream.Ticks(au.PTS-au.DTS, tm.timescale)),
		key:       au.Key,
		payload:   au.Payload,
	}
	tm.pending = ps
	return true
}

func (tm *trackMuxer) finalize(duration int64) {
	p := tm.pending
	tm.pending, tm.spare = nil, p
	if len(tm.samples) == 0 {
		tm.partBase = p.dts
	}
	tm.lastDuration = duration
	tm.endTicks = p.dts + duration
	// Samples live in a reused array; the part encoder copies their
	// payloads, so the array is free again after each cut.
	n := len(tm.samples)
	if n == len(tm.sampleBuf) {
		tm.sampleBuf = append(tm.sampleBuf, make([]fmp4.Sample, max(16, n))...)
		for i := range tm.samples {
			tm.samples[i] = &tm.sampleBuf[i]
		}
	}
	tm.sampleBuf[n] = fmp4.Sample{
		Duration:        uint32(duration),
		PTSOffset:       p.ptsOffset,
		IsNonSyncSample: !p.key,
		Payload:         p.payload,
	}
	tm.samples = append(tm.samples, &tm.sampleBuf[n])
	p.payload = nil
}

// flushPending closes the held-back sample with the last known duration;
// used when a session or the stream ends.
func (tm *trackMuxer) flushPending() {
	if tm.pending == nil {
		return
	}
	d := tm.lastDuration
	if d <= 0 {
		d = int64(tm.timescale) / 30
	}
	tm.finalize(d)
}

// cutPart encodes the samples gathered so far as one CMAF chunk (moof+mdat).
// It returns nil when there is nothing to cut.
func (tm *trackMuxer) cutPart() (*part, error) {
	if len(tm.samples) == 0 {
		return nil, nil
	}
	tm.sequence++
	var dur int64
	for _, s := range tm.samples {
		dur += int64(s.Duration)
	}
	p := fmp4.Part{
		SequenceNumber: tm.sequence,
		Tracks:         []*fmp4.PartTrack{{ID: 1, BaseTime: uint64(tm.partBase), Samples: tm.samples}},
	}
	var buf seekablebuffer.Buffer
	if err := p.Marshal(&buf); err != nil {
		return nil, fmt.Errorf("encode part of %s track: %w", tm.track.CodecName(), err)
	}
	out := &part{
		data:        buf.Bytes(),
		start:       tm.partBase,
		duration:    dur,
		samples:     len(tm.samples),
		independent: !tm.samples[0].IsNonSyncSample,
	}
	clear(tm.sampleBuf[:len(tm.samples)])
	tm.samples = tm.samples[:0]
	return out, nil
}

// end is the time just after the newest sample.
func (tm *trackMuxer) end() time.Duration {
	t := tm.endTicks
	if tm.pending != nil {
		t = max(t, tm.pending.dts+max(tm.lastDuration, 0))
	}
	return stream.FromTicks(t, tm.timescale)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
