package webrtc

import (
	"fmt"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/mps-dev/mps/stream"
)

// whepVideo is how a hub video codec goes to WHEP players: its WebRTC
// capability, and the RTP payloads of its access units.
type whepVideo struct {
	capability webrtc.RTPCodecCapability
	codec      string // the hub codec's name
	h265       *rtph265.Encoder
	vp9        *rtpvp9.Encoder
	av1        *rtpav1.Encoder
}

// newWHEPVideo returns the packetizer of a hub video codec, or nil when
// WebRTC cannot carry it.
func newWHEPVideo(c codecs.Codec) (*whepVideo, error) {
	v := &whepVideo{}
	var err error
	switch c := c.(type) {
	case *codecs.H264:
		v.capability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	case *codecs.H265:
		profile := 1
		var sps h265.SPS
		if sps.Unmarshal(c.SPS) == nil && sps.ProfileTierLevel.GeneralProfileIdc == 2 {
			profile = 2
		}
		v.capability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265,
			SDPFmtpLine: fmt.Sprintf("level-id=93;profile-id=%d;tier-flag=0;tx-mode=SRST", profile)}
		v.h265 = &rtph265.Encoder{PayloadMaxSize: rtpMTU}
		err = v.h265.Init()
	case *codecs.VP9:
		v.capability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, SDPFmtpLine: fmt.Sprintf("profile-id=%d", c.Profile)}
		v.vp9 = &rtpvp9.Encoder{PayloadMaxSize: rtpMTU}
		err = v.vp9.Init()
	case *codecs.AV1:
		v.capability = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1}
		v.av1 = &rtpav1.Encoder{PayloadMaxSize: rtpMTU}
		err = v.av1.Init()
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("whep %s packetizer: %w", stream.CodecName(c), err)
	}
	v.capability.ClockRate = 90000
	v.codec = stream.CodecName(c)
	return v, nil
}

// sdpName is the codec's name in SDP rtpmap lines (H264, H265, VP9, AV1).
func (v *whepVideo) sdpName() string {
	return strings.TrimPrefix(v.capability.MimeType, "video/")
}

// payloads makes the RTP payloads of one access unit. Keyframes carry the
// track's parameter sets (H.264, H.265) or sequence header (AV1), so that
// a player can start at any of them. A damaged unit gives none.
func (v *whepVideo) payloads(au *stream.AccessUnit) [][]byte {
	switch c := au.Track.Codec.(type) {
	case *codecs.H264:
		var nalus h264.AVCC
		if nalus.Unmarshal(au.Payload) != nil {
			return nil
		}
		if au.Key && c.SPS != nil && c.PPS != nil {
			nalus = append([][]byte{c.SPS, c.PPS}, nalus...)
		}
		var out [][]byte
		for _, n := range nalus {
			if len(n) > 0 {
				out = append(out, fragmentH264(n, rtpMTU)...)
			}
		}
		return out
	case *codecs.H265:
		if v.h265 == nil {
			return nil
		}
		var nalus h264.AVCC // the same length-prefixed layout
		if nalus.Unmarshal(au.Payload) != nil {
			return nil
		}
		if au.Key && c.VPS != nil && c.SPS != nil && c.PPS != nil {
			nalus = append([][]byte{c.VPS, c.SPS, c.PPS}, nalus...)
		}
		return rtpPayloads(v.h265.Encode(nalus))
	case *codecs.VP9:
		if v.vp9 == nil || len(au.Payload) == 0 {
			return nil
		}
		return rtpPayloads(v.vp9.Encode(au.Payload))
	case *codecs.AV1:
		if v.av1 == nil {
			return nil
		}
		var obus av1.Bitstream
		if obus.Unmarshal(au.Payload) != nil || len(obus) == 0 {
			return nil
		}
		if au.Key && len(c.SequenceHeader) > 0 && av1.OBUType((obus[0][0]>>3)&0b1111) != av1.OBUTypeSequenceHeader {
			obus = append([][]byte{c.SequenceHeader}, obus...)
		}
		return rtpPayloads(v.av1.Encode(obus))
	}
	return nil
}

func rtpPayloads(pkts []*rtp.Packet, err error) [][]byte {
	if err != nil {
		return nil // an access unit the encoder refuses: skip it
	}
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = p.Payload
	}
	return out
}

// offeredVideo lists the video codecs (rtpmap names) of an offer's video
// sections, and whether it has any video section.
func offeredVideo(offer []byte) (names []string, hasVideo bool) {
	var sd sdp.SessionDescription
	if sd.UnmarshalString(string(offer)) != nil {
		return nil, false
	}
	seen := map[string]bool{}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "video" || m.MediaName.Port.Value == 0 {
			continue
		}
		hasVideo = true
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			f := strings.Fields(a.Value)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(f[1], "/")
			name = strings.ToUpper(name)
			if name != "RTX" && name != "RED" && name != "ULPFEC" && name != "FLEXFEC-03" && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names, hasVideo
}
