package webrtc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/mps-dev/mps/stream"
)

// rtpMTU is the largest RTP payload sent to players.
const rtpMTU = 1200

// Play runs a WHEP session: it answers offer with the stream's H.264
// video and Opus audio (made from AAC when the stream has AAC and FFmpeg
// is set) and sends the stream from its last keyframe on.
func (s *Server) Play(ctx context.Context, name, remoteAddr string, offer []byte) (answer []byte, id string, err error) {
	if err := stream.ValidateName(name); err != nil {
		return nil, "", statusErr(http.StatusBadRequest, ErrStreamNotFound, "%v", err)
	}
	st, err := s.Hub.Get(name)
	if err != nil {
		return nil, "", statusErr(http.StatusNotFound, ErrStreamNotFound, "%s", name)
	}
	sess := st.Session()
	if sess == nil {
		return nil, "", statusErr(http.StatusNotFound, ErrStreamNotFound, "%s has no publisher yet", name)
	}
	var video *whepVideo
	var hasAudio, transcode bool
	for _, t := range sess.Tracks {
		switch t.Codec.(type) {
		case *codecs.Opus:
			hasAudio = true
		case *codecs.MPEG4Audio:
			if s.FFmpeg != "" {
				hasAudio, transcode = true, true
			}
		default:
			if t.IsVideo() && video == nil {
				if video, err = newWHEPVideo(t.Codec); err != nil {
					return nil, "", err
				}
			}
		}
	}
	if video == nil && !hasAudio {
		return nil, "", statusErr(http.StatusUnsupportedMediaType, ErrUnsupportedCodec,
			"%s has tracks %v; WebRTC players get H.264, H.265, VP9 or AV1 video and Opus or AAC audio", name, trackCodecs(sess.Tracks))
	}
	if err := checkOffer(offer); err != nil {
		return nil, "", err
	}
	if video != nil {
		names, offersVideo := offeredVideo(offer)
		switch {
		case !offersVideo:
			video = nil // an audio-only player
		case !slices.Contains(names, video.sdpName()):
			return nil, "", statusErr(http.StatusUnsupportedMediaType, ErrUnsupportedCodec,
				"%s has %s video and the player receives only %s", name, video.sdpName(), strings.Join(names, ", "))
		}
	}

	pc, err := s.whepAPI.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("whep %s: %w", name, err)
	}
	pl := &playSession{s: s, name: name, remote: remoteAddr, pc: pc, transcode: transcode, packetizer: video,
		connected: make(chan struct{}), failed: make(chan error, 1)}
	addTracks := func() error {
		if video != nil {
			tr, err := webrtc.NewTrackLocalStaticRTP(video.capability, "video", "mps")
			if err != nil {
				return err
			}
			sender, err := pc.AddTrack(tr)
			if err != nil {
				return statusErr(http.StatusBadRequest, ErrBadOffer, "video: %v", err)
			}
			go drainRTCP(sender)
			pl.video = tr
		}
		if hasAudio {
			tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
				"audio", "mps")
			if err != nil {
				return err
			}
			sender, err := pc.AddTrack(tr)
			if err != nil {
				return statusErr(http.StatusBadRequest, ErrBadOffer, "audio: %v", err)
			}
			go drainRTCP(sender)
			pl.audio = tr
		}
		return nil
	}
	sdpAnswer, err := negotiate(ctx, pc, string(offer), addTracks)
	if err != nil {
		pc.Close()
		return nil, "", err
	}
	pl.negotiated(sdpAnswer)
	if pl.video == nil && pl.audio == nil {
		pc.Close()
		return nil, "", statusErr(http.StatusBadRequest, ErrNoSupportedTracks, "the offer receives neither the stream's video nor Opus audio")
	}
	ss := &session{id: newSessionID(), kind: "whep", name: name, remote: remoteAddr, pc: pc}
	pl.log = s.log.With("stream", name, "remote", remoteAddr, "session", ss.id[:8])
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			select {
			case <-pl.connected:
			default:
				close(pl.connected)
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			select {
			case pl.failed <- fmt.Errorf("connection %s", st):
			default:
			}
		}
	})
	if err := s.register(ss, pl.run); err != nil {
		pc.Close()
		return nil, "", err
	}
	pl.log.Info("whep session started", "video", pl.video != nil, "audio", pl.audio != nil, "aac_to_opus", pl.transcode && pl.audio != nil)
	return []byte(sdpAnswer), ss.id, nil
}

// negotiated drops the local tracks whose sender got no media section.
func (pl *playSession) negotiated(answer string) {
	for _, t := range pl.pc.GetTransceivers() {
		if t.Sender() == nil || t.Sender().Track() == nil {
			continue
		}
		if t.Mid() == "" {
			if t.Sender().Track() == pl.video {
				pl.video = nil
			} else if t.Sender().Track() == pl.audio {
				pl.audio = nil
			}
		}
	}
	_ = answer
}

func drainRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

func trackCodecs(tracks []*stream.Track) []string {
	out := make([]string, len(tracks))
	for i, t := range tracks {
		out[i] = t.CodecName()
	}
	return out
}

// playSession sends one hub stream to one WHEP player.
type playSession struct {
	s          *Server
	name       string
	remote     string
	pc         *webrtc.PeerConnection
	log        *slog.Logger
	video      *webrtc.TrackLocalStaticRTP
	audio      *webrtc.TrackLocalStaticRTP
	packetizer *whepVideo // the video codec negotiated
	transcode  bool
	connected  chan struct{}
	failed     chan error
}

// rtpOut numbers the packets of one outgoing track. Timestamps stay
// monotonic across the publisher's sessions.
type rtpOut struct {
	track   *webrtc.TrackLocalStaticRTP
	rate    uint32
	seq     uint16
	tsBase  uint32
	offset  time.Duration // added to the hub session's timestamps
	last    time.Duration // last timestamp sent, on the continuous timeline
	sentAny bool
}

func newRTPOut(tr *webrtc.TrackLocalStaticRTP, rate uint32) *rtpOut {
	return &rtpOut{track: tr, rate: rate, seq: uint16(rand.Uint32()), tsBase: rand.Uint32()}
}

func (o *rtpOut) newSession() {
	if o.sentAny {
		o.offset = o.last + 40*time.Millisecond
	}
}

func (o *rtpOut) write(payloads [][]byte, pts time.Duration) (int, error) {
	t := o.offset + pts
	if o.sentAny && t < o.last {
		t = o.last
	}
	o.last, o.sentAny = t, true
	ts := o.tsBase + uint32(stream.Ticks(t, o.rate))
	n := 0
	for i, p := range payloads {
		pkt := &rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: i == len(payloads)-1, SequenceNumber: o.seq, Timestamp: ts},
			Payload: p,
		}
		o.seq++
		if err := o.track.WriteRTP(pkt); err != nil {
			return n, err
		}
		n += len(p) + 12
	}
	return n, nil
}

func (pl *playSession) run(ctx context.Context) {
	select {
	case <-pl.connected:
	case err := <-pl.failed:
		pl.log.Info("whep session ended before it connected", "reason", err.Error())
		return
	case <-ctx.Done():
		return
	case <-time.After(pl.s.ConnectTimeout):
		pl.log.Info("whep session ended: not connected in time")
		return
	}
	st, err := pl.s.Hub.Get(pl.name)
	if err != nil {
		pl.log.Info("whep session ended: stream gone")
		return
	}
	r, err := st.NewReader(ReaderKind, pl.remote)
	if err != nil {
		pl.log.Info("whep session ended", "reason", err.Error())
		return
	}
	defer r.Close()
	go func() {
		select {
		case err := <-pl.failed:
			pl.log.Debug("whep connection ended", "reason", err.Error())
			r.Close()
		case <-ctx.Done():
		}
	}()

	var video, audio *rtpOut
	if pl.video != nil {
		video = newRTPOut(pl.video, 90000)
	}
	if pl.audio != nil {
		audio = newRTPOut(pl.audio, 48000)
	}
	var tc *opusTranscoder
	defer func() {
		if tc != nil {
			tc.close()
		}
	}()
	waitKey := true
	for {
		it, err := r.Read(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, stream.ErrStreamEnded) {
				pl.log.Info("whep session ended", "reason", err.Error())
			} else {
				pl.log.Info("whep session ended")
			}
			return
		}
		if it.Session != nil {
			if tc != nil {
				tc.close()
				tc = nil
			}
			for _, o := range []*rtpOut{video, audio} {
				if o != nil {
					o.newSession()
				}
			}
			waitKey = true
			for _, t := range it.Session.Tracks {
				if t.IsVideo() && video != nil && t.CodecName() != pl.packetizer.codec {
					pl.log.Info("whep session ended: the stream's video codec changed", "codec", t.CodecName())
					return
				}
				switch c := t.Codec.(type) {
				case *codecs.MPEG4Audio:
					if pl.transcode && audio != nil {
						tc, err = startOpusTranscoder(ctx, pl.s.FFmpeg, c, pl.log, audio)
						if err != nil {
							pl.log.Warn("whep: AAC to Opus unavailable: audio not sent", "error", err.Error())
							tc = nil
						}
					}
				}
			}
			continue
		}
		au := it.AU
		n := 0
		switch au.Track.Codec.(type) {
		case *codecs.H264, *codecs.H265, *codecs.VP9, *codecs.AV1:
			if video == nil {
				continue
			}
			if waitKey {
				if !au.Key {
					continue
				}
				waitKey = false
			}
			if payloads := pl.packetizer.payloads(au); len(payloads) > 0 {
				n, err = video.write(payloads, au.PTS)
			}
		case *codecs.Opus:
			if audio == nil {
				continue
			}
			n, err = audio.write([][]byte{au.Payload}, au.PTS)
		case *codecs.MPEG4Audio:
			if tc != nil {
				tc.feed(au)
			}
		}
		if err != nil {
			pl.log.Info("whep session ended", "reason", err.Error())
			return
		}
		if n > 0 {
			st.AddBytesOut(n)
		}
	}
}

// fragmentH264 makes the RTP payloads of one NAL unit: itself, or FU-A
// fragments when it is larger than mtu.
func fragmentH264(n []byte, mtu int) [][]byte {
	if len(n) <= mtu {
		return [][]byte{n}
	}
	hdr := n[0]
	body := n[1:]
	var out [][]byte
	max := mtu - 2
	for i := 0; len(body) > 0; i++ {
		k := min(max, len(body))
		p := make([]byte, 2+k)
		p[0] = hdr&0xe0 | naluFUA
		p[1] = hdr & 0x1f
		if i == 0 {
			p[1] |= 0x80
		}
		if k == len(body) {
			p[1] |= 0x40
		}
		copy(p[2:], body[:k])
		out = append(out, p)
		body = body[k:]
	}
	return out
}
