package stream

import (
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
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
