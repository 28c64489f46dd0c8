package packager

import (
	"github.com/bluenviron/gohlslib/v2/pkg/codecparams"
	hlscodecs "github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// codecString returns the RFC 6381 codecs parameter for HLS and DASH.
func codecString(c codecs.Codec) string {
	var hc hlscodecs.Codec
	switch c := c.(type) {
	case *codecs.H264:
		hc = &hlscodecs.H264{SPS: c.SPS, PPS: c.PPS}
	case *codecs.H265:
		hc = &hlscodecs.H265{VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}
	case *codecs.AV1:
		hc = &hlscodecs.AV1{SequenceHeader: c.SequenceHeader}
	case *codecs.VP9:
		hc = &hlscodecs.VP9{Width: c.Width, Height: c.Height, Profile: c.Profile,
			BitDepth: c.BitDepth, ChromaSubsampling: c.ChromaSubsampling, ColorRange: c.ColorRange}
	case *codecs.MPEG4Audio:
		hc = &hlscodecs.MPEG4Audio{Config: c.Config}
	case *codecs.Opus:
		hc = &hlscodecs.Opus{ChannelCount: c.ChannelCount}
	default:
		return ""
	}
	return codecparams.Marshal(hc)
}
