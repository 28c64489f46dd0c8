package rtsp

import (
	"strconv"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
)

// Dynamic RTP payload types start here (RFC 3551).
const firstDynamicPayloadType = 96

// describe builds the session description that players get for a hub
// session: one media per track that RTSP can carry, with controls
// "trackID=N". tracks[i] is the hub track of desc.Medias[i].
func describe(sess *stream.Session) (desc *description.Session, tracks []*stream.Track) {
	desc = &description.Session{Title: "MPS"}
	for _, t := range sess.Tracks {
		pt := uint8(firstDynamicPayloadType + len(desc.Medias))
		var f format.Format
		typ := description.MediaTypeVideo
		switch c := t.Codec.(type) {
		case *codecs.H264:
			f = &format.H264{PayloadTyp: pt, SPS: c.SPS, PPS: c.PPS, PacketizationMode: 1}
		case *codecs.H265:
			f = &format.H265{PayloadTyp: pt, VPS: c.VPS, SPS: c.SPS, PPS: c.PPS}
		case *codecs.MPEG4Audio:
			cfg := c.Config
			if cfg.SampleRate <= 0 {
				continue
			}
			typ = description.MediaTypeAudio
			f = &format.MPEG4Audio{
				PayloadTyp:       pt,
				ProfileLevelID:   1,
				Config:           &cfg,
				SizeLength:       13,
				IndexLength:      3,
				IndexDeltaLength: 3,
			}
		case *codecs.Opus:
			typ = description.MediaTypeAudio
			f = &format.Opus{PayloadTyp: pt, ChannelCount: max(c.ChannelCount, 1)}
		default:
			continue
		}
		desc.Medias = append(desc.Medias, &description.Media{
			Type:    typ,
			Control: "trackID=" + strconv.Itoa(len(desc.Medias)),
			Formats: []format.Format{f},
		})
		tracks = append(tracks, t)
	}
	return desc, tracks
}
