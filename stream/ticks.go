package stream

import (
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Ticks converts a duration to a timescale without overflowing for
// streams that run for months.
func Ticks(d time.Duration, timescale uint32) int64 {
	ts := int64(timescale)
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

// FromTicks converts ticks of a timescale to a duration.
func FromTicks(t int64, timescale uint32) time.Duration {
	ts := int64(timescale)
	return time.Duration(t/ts)*time.Second + time.Duration(t%ts)*time.Second/time.Duration(ts)
}

// Timescale is the track's container timescale: its clock rate, or 90000
// when that is unset.
func (t *Track) Timescale() uint32 {
	if t.ClockRate > 0 {
		return uint32(t.ClockRate)
	}
	return 90000
}

// FrameTicks is the length of an audio frame with payload in the track's
// timescale, or 0 when the codec's frames have no fixed length (video).
func (t *Track) FrameTicks(payload []byte) int64 {
	switch c := t.Codec.(type) {
	case *codecs.MPEG4Audio:
		if c.Config.FrameLengthFlag {
			return 960
		}
		return 1024
	case *codecs.Opus:
		if t.Timescale() == 48000 {
			return opus.PacketDuration2(payload)
		}
	}
	return 0
}
