// Package stream holds the internal media model (tracks and access units)
// and the hub that fans each published stream out to its readers.
package stream

import (
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// Track is one elementary stream of a publishing session.
//
// Codec carries the codec parameters in MP4 form (SPS/PPS, AudioSpecificConfig,
// AV1 sequence header, ...), so packagers and recorders can write an init
// segment without parsing anything again.
type Track struct {
	// Index is the track's position in its session's track list.
	Index int
	Codec codecs.Codec
	// ClockRate is the timescale to use in containers: 90000 for video,
	// the sample rate for audio.
	ClockRate int
}

// IsVideo reports whether the track carries video.
func (t *Track) IsVideo() bool { return t.Codec.IsVideo() }

// CodecName is a short, human-readable codec name (h264, h265, av1, vp9, aac, opus).
func (t *Track) CodecName() string { return CodecName(t.Codec) }

// CodecName names a codec the way the API and the logs show it.
func CodecName(c codecs.Codec) string {
	switch c.(type) {
	case *codecs.H264:
		return "h264"
	case *codecs.H265:
		return "h265"
	case *codecs.AV1:
		return "av1"
	case *codecs.VP9:
		return "vp9"
	case *codecs.MPEG4Audio:
		return "aac"
	case *codecs.Opus:
		return "opus"
	case *codecs.MPEG1Audio:
		return "mp3"
	case *codecs.AC3:
		return "ac3"
	default:
		return fmt.Sprintf("%T", c)
	}
}

// Resolution returns the coded picture size of a video track, or zeros when
// it cannot be read from the codec parameters.
func (t *Track) Resolution() (width, height int) {
	switch c := t.Codec.(type) {
	case *codecs.H264:
		var sps h264.SPS
		if sps.Unmarshal(c.SPS) == nil {
			return sps.Width(), sps.Height()
		}
	case *codecs.H265:
		var sps h265.SPS
		if sps.Unmarshal(c.SPS) == nil {
			return sps.Width(), sps.Height()
		}
	case *codecs.AV1:
		var sh av1.SequenceHeader
		if sh.Unmarshal(c.SequenceHeader) == nil {
			return sh.Width(), sh.Height()
		}
	case *codecs.VP9:
		return c.Width, c.Height
	}
	return 0, 0
}

// AudioFormat returns the sample rate and channel count of an audio track.
func (t *Track) AudioFormat() (sampleRate, channels int) {
	switch c := t.Codec.(type) {
	case *codecs.MPEG4Audio:
		return c.Config.SampleRate, aacChannels(c)
	case *codecs.Opus:
		return 48000, c.ChannelCount
	}
	return t.ClockRate, 0
}

// AccessUnit is one frame of one track. Payload is in MP4 sample form:
// length-prefixed NAL units for H.264/H.265, low-overhead OBUs for AV1, a raw
// frame for audio. An AccessUnit is immutable once written to a publisher, so
// every reader shares the same one.
type AccessUnit struct {
	Track *Track
	// DTS and PTS count from the start of the publishing session.
	DTS time.Duration
	PTS time.Duration
	// Key marks a random access point. Every audio frame is one.
	Key     bool
	Payload []byte
}

// aacChannels reads the channel count whether the config was parsed (both
// fields set) or built by hand with only ChannelConfig.
func aacChannels(c *codecs.MPEG4Audio) int {
	if n := c.Config.ChannelCount; n != 0 { //nolint:staticcheck // still filled by Unmarshal
		return n
	}
	switch cc := c.Config.ChannelConfig; {
	case cc >= 1 && cc <= 6:
		return int(cc)
	case cc == 7:
		return 8
	}
	return 0
}
