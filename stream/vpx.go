package stream

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

// VP9Frame reads a VP9 frame's header. A keyframe returns the track codec
// it configures (size, profile, color); other frames return nil.
func VP9Frame(frame []byte) (c *codecs.VP9, key bool) {
	var h vp9.Header
	key = h.Unmarshal(frame) == nil && !h.NonKeyFrame && !h.ShowExistingFrame
	if !key || h.ColorConfig == nil {
		return nil, key
	}
	return &codecs.VP9{
		Width:             h.Width(),
		Height:            h.Height(),
		Profile:           h.Profile,
		BitDepth:          h.ColorConfig.BitDepth,
		ChromaSubsampling: h.ChromaSubsampling(),
		ColorRange:        h.ColorConfig.ColorRange,
	}, key
}

// AV1Unit turns an AV1 temporal unit (OBUs without size fields may come in
// either form) into a hub access unit payload: temporal delimiters and
// padding are dropped, as MP4 samples want, and the rest is written in the
// low-overhead format. A unit with a sequence header returns the track
// codec it configures; others return nil.
func AV1Unit(tu [][]byte) (c *codecs.AV1, key bool, payload []byte, err error) {
	obus := make([][]byte, 0, len(tu))
	var seqHdr []byte
	for _, obu := range tu {
		if len(obu) == 0 {
			continue
		}
		switch av1.OBUType((obu[0] >> 3) & 0b1111) {
		case av1.OBUTypeTemporalDelimiter, av1.OBUTypePadding:
			continue
		case av1.OBUTypeSequenceHeader:
			seqHdr = obu
		}
		obus = append(obus, obu)
	}
	if seqHdr != nil {
		var sh av1.SequenceHeader
		if err := sh.Unmarshal(seqHdr); err != nil {
			return nil, false, nil, fmt.Errorf("AV1 sequence header: %w", err)
		}
		c = &codecs.AV1{SequenceHeader: seqHdr}
	}
	if len(obus) == 0 {
		return c, false, nil, nil
	}
	payload, err = av1.Bitstream(obus).Marshal()
	if err != nil {
		return nil, false, nil, fmt.Errorf("AV1 temporal unit: %w", err)
	}
	return c, av1.IsRandomAccess2(obus), payload, nil
}
