package webrtc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/mps-dev/mps/stream"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// VP9 and AV1 from WHIP publishers go into the hub as they are: HLS (fMP4),
// DASH, recordings and WHEP players carry both, so no transcode is spent.

// frameIn depacketizes the VP9 frames or AV1 temporal units of a WHIP
// video track into hub access units.
type frameIn struct {
	mime    string
	vp9     *rtpvp9.Decoder
	av1     *rtpav1.Decoder
	codec   codecs.Codec // the parameters of the last keyframe, nil before it
	lastSeq uint16
	hasSeq  bool
}

// newFrameIn returns the depacketizer of a VP9 or AV1 track, or nil for
// another codec.
func newFrameIn(mime string) *frameIn {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeVP9):
		return &frameIn{mime: mime, vp9: &rtpvp9.Decoder{}}
	case strings.EqualFold(mime, webrtc.MimeTypeAV1):
		return &frameIn{mime: mime, av1: &rtpav1.Decoder{}}
	}
	return nil
}

var errFrameLost = errors.New("packet lost")

// push takes one RTP packet. It returns the codec parameters in force, a
// complete access unit (nil while more packets are needed) and whether it
// is a keyframe; an error means media was lost or damaged, so the next
// frames cannot be decoded until a keyframe.
func (f *frameIn) push(pkt *rtp.Packet) (c codecs.Codec, key bool, payload []byte, err error) {
	if f.hasSeq && pkt.SequenceNumber != f.lastSeq+1 {
		if int16(pkt.SequenceNumber-f.lastSeq) <= 0 {
			return nil, false, nil, nil // duplicate or late: ignore
		}
		err = errFrameLost
	}
	f.lastSeq, f.hasSeq = pkt.SequenceNumber, true
	var derr error
	if f.vp9 != nil {
		var frame []byte
		frame, derr = f.vp9.Decode(pkt)
		if derr == nil {
			vc, k := stream.VP9Frame(frame)
			if vc != nil {
				f.codec = vc
			}
			key, payload = k, frame
		}
	} else {
		var tu [][]byte
		tu, derr = f.av1.Decode(pkt)
		if derr == nil {
			var ac *codecs.AV1
			ac, key, payload, derr = stream.AV1Unit(tu)
			if ac != nil {
				f.codec = ac
			}
		}
	}
	switch {
	case derr == nil:
	case errors.Is(derr, rtpvp9.ErrMorePacketsNeeded), errors.Is(derr, rtpav1.ErrMorePacketsNeeded),
		errors.Is(derr, rtpvp9.ErrNonStartingPacketAndNoPrevious), errors.Is(derr, rtpav1.ErrNonStartingPacketAndNoPrevious):
		return nil, false, nil, err
	default:
		return nil, false, nil, fmt.Errorf("%s: %w", f.mime, derr)
	}
	if f.codec == nil || payload == nil {
		return nil, false, nil, err
	}
	return f.codec, key, payload, err
}

// padding notes a packet without payload, so that its sequence number is
// not taken for a loss.
func (f *frameIn) padding(seq uint16) {
	if f.hasSeq && seq == f.lastSeq+1 {
		f.lastSeq = seq
	}
}
