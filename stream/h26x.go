package stream

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// SplitParameterSets takes the parameter sets and access unit delimiters
// out of an H.264 or H.265 access unit: a hub access unit carries neither,
// the parameter sets belong to the Track. Empty NAL units are dropped.
func SplitParameterSets(au [][]byte, hevc bool) (nalus [][]byte, vps, sps, pps []byte) {
	nalus = make([][]byte, 0, len(au))
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if hevc {
			switch h265.NALUType((n[0] >> 1) & 0b111111) {
			case h265.NALUType_VPS_NUT:
				vps = n
				continue
			case h265.NALUType_SPS_NUT:
				sps = n
				continue
			case h265.NALUType_PPS_NUT:
				pps = n
				continue
			case h265.NALUType_AUD_NUT:
				continue
			}
		} else {
			switch h264.NALUType(n[0] & 0b11111) {
			case h264.NALUTypeSPS:
				sps = n
				continue
			case h264.NALUTypePPS:
				pps = n
				continue
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			}
		}
		nalus = append(nalus, n)
	}
	return nalus, vps, sps, pps
}

// H26xCodec returns the track codec of complete H.264 (sps, pps; vps is
// ignored) or H.265 (vps, sps, pps) parameter sets, or nil when one is
// missing or the SPS does not parse.
func H26xCodec(hevc bool, vps, sps, pps []byte) codecs.Codec {
	if hevc {
		var p h265.SPS
		if len(vps) == 0 || len(sps) == 0 || len(pps) == 0 || p.Unmarshal(sps) != nil {
			return nil
		}
		return &codecs.H265{VPS: vps, SPS: sps, PPS: pps}
	}
	var p h264.SPS
	if len(sps) == 0 || len(pps) == 0 || p.Unmarshal(sps) != nil {
		return nil
	}
	return &codecs.H264{SPS: sps, PPS: pps}
}

// MergeParameterSets applies the parameter sets an access unit carried
// (nil for those it did not) to the track codec cur (nil before any): the
// ones missing keep cur's. It returns the resulting codec, or nil while
// the sets are incomplete or do not parse.
func MergeParameterSets(cur codecs.Codec, hevc bool, vps, sps, pps []byte) codecs.Codec {
	orElse := func(b, def []byte) []byte {
		if b != nil {
			return b
		}
		return def
	}
	if hevc {
		c, _ := cur.(*codecs.H265)
		if c == nil {
			c = &codecs.H265{}
		}
		return H26xCodec(true, orElse(vps, c.VPS), orElse(sps, c.SPS), orElse(pps, c.PPS))
	}
	c, _ := cur.(*codecs.H264)
	if c == nil {
		c = &codecs.H264{}
	}
	return H26xCodec(false, nil, orElse(sps, c.SPS), orElse(pps, c.PPS))
}
