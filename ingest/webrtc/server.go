// Package webrtc ingests WebRTC publishers through WHIP and plays hub
// streams to WebRTC players through WHEP, with pion/webrtc.
//
// The package has no HTTP code of its own: the web package's handlers call
// Server.Publish, Server.Play and Server.EndSession with the SDP offer and
// send back the SDP answer. Every session's media flows through one UDP
// port (ICE UDP mux), plus one TCP port for ICE-TCP.
//
// WHIP publishers send H.264, VP8, VP9 or AV1 video and Opus audio. The
// answer prefers H.264, so that HLS needs no transcode. H.264 is
// depacketized into AVCC access units, with the parameter sets in the
// track; VP9 and AV1 go into the hub as they are (passthrough.go). When
// Server.VP8FFmpeg is set, an offer with VP8 but no H.264 is answered with
// VP8, which an ffmpeg child per session transcodes to H.264 (vp8.go).
// Publishing waits for a keyframe, asking the publisher for one with PLI.
//
// WHEP players get the stream's video as it is (H.264, H.265, VP9 or
// AV1; packetize.go) and Opus audio. A stream whose audio is AAC gets Opus
// made by an ffmpeg child per player when Server.FFmpeg is set.
package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// Protocol is the protocol name given to the hub for WHIP publishers.
const Protocol = "webrtc"

// ReaderKind is the reader kind of WHEP players in the stream info.
const ReaderKind = "whep"

// Defaults for the Server fields left zero.
const (
	DefaultUDPAddr        = ":8189"
	DefaultConnectTimeout = 15 * time.Second
)

// Errors returned by Publish, Play and EndSession. Each carries the HTTP
// status a WHIP or WHEP endpoint should answer with (see HTTPStatus);
// errors.Is matches them, and the auth errors they wrap.
var (
	ErrBadOffer          = errors.New("bad SDP offer")
	ErrNoSupportedTracks = errors.New("the offer has no video or audio codec that MPS handles")
	ErrUnauthorized      = errors.New("not authorised to publish")
	ErrForbidden         = errors.New("refused")
	ErrStreamNotFound    = errors.New("no such stream")
	ErrUnsupportedCodec  = errors.New("the stream's codecs cannot be played over WebRTC")
	ErrConflict          = errors.New("stream is already being published")
	ErrSessionNotFound   = errors.New("no such session")
	ErrClosed            = errors.New("webrtc server closed")
)

// StatusError is an error with the HTTP status that reports it.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// HTTPStatus is the status code to answer with.
func (e *StatusError) HTTPStatus() int { return e.Status }

func statusErr(status int, sentinel error, format string, args ...any) error {
	return &StatusError{Status: status, Err: fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))}
}

// Server runs WHIP and WHEP sessions. Set the exported fields, then call
// Initialize; Close ends every session.
type Server struct {
	// Hub receives published streams and serves played ones. Required.
	Hub *stream.Hub
	// Auth authorises publishers: the WHIP bearer token is the stream key.
	// Nil means auth.DefaultPolicy().
	Auth *auth.Policy
	// Admit, when set, is asked about every publisher the key policy lets
	// through. An error refuses it (403); the parameters it returns
	// replace the publisher's own.
	Admit auth.Admitter
	// OnPublish, when set, is called once per WHIP session after the hub
	// accepted it.
	OnPublish func(auth.PublishInfo)
	// UDPAddr is the UDP address of the ICE UDP mux. Default ":8189";
	// ":0" picks a free port (UDPListenAddr tells which).
	UDPAddr string
	// TCPAddr is the ICE-TCP listen address; empty disables ICE-TCP.
	TCPAddr string
	// NAT1To1IPs, when set, are announced as the host candidates' addresses.
	NAT1To1IPs []string
	// FFmpeg is the ffmpeg binary that turns AAC into Opus for WHEP
	// players. Empty sends those players video only.
	FFmpeg string
	// VP8FFmpeg is the ffmpeg binary that transcodes the video of WHIP
	// publishers that offer VP8 but no H.264 (as browsers may) to H.264,
	// so that HLS and WHEP players get H.264. Empty refuses such offers'
	// video (400 when nothing else is left). Offers with H.264 are always
	// answered with H.264 only.
	VP8FFmpeg string
	// ConnectTimeout bounds the time from the answer to a connected
	// session with media. Default 15 s.
	ConnectTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	log     *slog.Logger
	udpConn net.PacketConn
	tcpLn   net.Listener
	udpMux  ice.UDPMux
	tcpMux  ice.TCPMux
	whipAPI *webrtc.API
	whepAPI *webrtc.API
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
}

// session is one WHIP or WHEP peer connection.
type session struct {
	id     string
	kind   string // "whip" or "whep"
	name   string
	remote string
	pc     *webrtc.PeerConnection
	cancel context.CancelFunc
	done   chan struct{} // closed when the session's goroutines ended
}

// Initialize opens the ICE ports.
func (s *Server) Initialize() error {
	if s.Hub == nil {
		return errors.New("webrtc server: Hub is required")
	}
	if s.Auth == nil {
		s.Auth = auth.DefaultPolicy()
	}
	if s.UDPAddr == "" {
		s.UDPAddr = DefaultUDPAddr
	}
	if s.ConnectTimeout <= 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("protocol", Protocol)

	udp, err := net.ListenPacket("udp", s.UDPAddr)
	if err != nil {
		return fmt.Errorf("webrtc listen udp %s: %w", s.UDPAddr, err)
	}
	s.udpConn = udp
	s.udpMux = webrtc.NewICEUDPMux(nil, udp)
	if s.TCPAddr != "" {
		ln, err := net.Listen("tcp", s.TCPAddr)
		if err != nil {
			s.udpMux.Close()
			udp.Close()
			return fmt.Errorf("webrtc listen tcp %s: %w", s.TCPAddr, err)
		}
		s.tcpLn = ln
		s.tcpMux = webrtc.NewICETCPMux(nil, ln, 64)
	}
	if s.whipAPI, err = s.newAPI(true); err != nil {
		s.closePorts()
		return err
	}
	if s.whepAPI, err = s.newAPI(false); err != nil {
		s.closePorts()
		return err
	}
	s.sessions = make(map[string]*session)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	attrs := []any{"udp", udp.LocalAddr().String()}
	if s.tcpLn != nil {
		attrs = append(attrs, "tcp", s.tcpLn.Addr().String())
	}
	s.log.Info("webrtc listening", attrs...)
	return nil
}

// newAPI builds the pion API of WHIP (receive) or WHEP (send) sessions.
func (s *Server) newAPI(receive bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	var video []webrtc.RTPCodecParameters
	if receive {
		video = whipVideoCodecs(s.VP8FFmpeg != "")
	} else {
		video = whepVideoCodecs()
	}
	for _, c := range video {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("webrtc register %s: %w", c.MimeType, err)
		}
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("webrtc register opus: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, fmt.Errorf("webrtc interceptors: %w", err)
	}
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(s.udpMux)
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcpMux != nil {
		se.SetICETCPMux(s.tcpMux)
		types = append(types, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(types)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	se.DisableActiveTCP(true)
	if len(s.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(s.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

var videoFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}

func videoCodec(mime string, pt webrtc.PayloadType, fmtp string) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: videoFeedback},
		PayloadType:        pt,
	}
}

// h264Codecs are the common H.264 profiles, packetization mode 1.
func h264Codecs() []webrtc.RTPCodecParameters {
	var out []webrtc.RTPCodecParameters
	for _, c := range []struct {
		pt      webrtc.PayloadType
		profile string
	}{{102, "42001f"}, {106, "42e01f"}, {112, "4d001f"}, {116, "640032"}, {118, "64001f"}} {
		out = append(out, videoCodec(webrtc.MimeTypeH264, c.pt, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id="+c.profile))
	}
	return out
}

// Payload types of the other video codecs.
const (
	ptVP8  = 96
	ptVP9  = 98
	ptAV1  = 45
	ptH265 = 49
)

// whipVideoCodecs are what WHIP publishers may send, in the answer's order
// of preference: H.264 first (HLS plays it everywhere), then VP8 when it
// can be transcoded to H.264, then VP9 and AV1, passed through.
func whipVideoCodecs(vp8 bool) []webrtc.RTPCodecParameters {
	out := h264Codecs()
	if vp8 {
		out = append(out, videoCodec(webrtc.MimeTypeVP8, ptVP8, ""))
	}
	return append(out, videoCodec(webrtc.MimeTypeVP9, ptVP9, "profile-id=0"), videoCodec(webrtc.MimeTypeAV1, ptAV1, ""))
}

// whepVideoCodecs are what WHEP players may get: a hub stream's video is
// sent as it is.
func whepVideoCodecs() []webrtc.RTPCodecParameters {
	return append(h264Codecs(),
		videoCodec(webrtc.MimeTypeH265, ptH265, "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST"),
		videoCodec(webrtc.MimeTypeVP9, ptVP9, "profile-id=0"),
		videoCodec(webrtc.MimeTypeAV1, ptAV1, ""))
}

// UDPListenAddr is the bound address of the ICE UDP port, or nil before Initialize.
func (s *Server) UDPListenAddr() net.Addr {
	if s.udpConn == nil {
		return nil
	}
	return s.udpConn.LocalAddr()
}

// TCPListenAddr is the bound address of the ICE-TCP port, or nil.
func (s *Server) TCPListenAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// Close ends every session and closes the ports.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed || s.sessions == nil {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.cancel()
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.cancel()
	}
	s.wg.Wait()
	s.closePorts()
}

func (s *Server) closePorts() {
	if s.tcpMux != nil {
		s.tcpMux.Close()
	}
	if s.tcpLn != nil {
		s.tcpLn.Close()
	}
	if s.udpMux != nil {
		s.udpMux.Close()
	}
	if s.udpConn != nil {
		s.udpConn.Close()
	}
}

// EndSession ends the WHIP or WHEP session id, as a DELETE on its resource
// URL does. kind ("whip" or "whep") and name must be the session's own.
func (s *Server) EndSession(kind, name, id string) error {
	s.mu.Lock()
	ss, ok := s.sessions[id]
	s.mu.Unlock()
	if !ok || ss.kind != kind || ss.name != name {
		return &StatusError{Status: http.StatusNotFound, Err: ErrSessionNotFound}
	}
	ss.cancel()
	<-ss.done
	return nil
}

// Sessions counts the open sessions of a kind ("whip" or "whep").
func (s *Server) Sessions(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ss := range s.sessions {
		if ss.kind == kind {
			n++
		}
	}
	return n
}

// register adds a session whose goroutine run runs until ctx ends; the
// peer connection is closed and the session removed afterwards.
func (s *Server) register(ss *session, run func(ctx context.Context)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return &StatusError{Status: http.StatusServiceUnavailable, Err: ErrClosed}
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ss.cancel = cancel
	ss.done = make(chan struct{})
	s.sessions[ss.id] = ss
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer close(ss.done)
		defer func() {
			s.mu.Lock()
			delete(s.sessions, ss.id)
			s.mu.Unlock()
		}()
		defer ss.pc.Close()
		defer cancel()
		run(ctx)
	}()
	return nil
}

func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// negotiate applies the offer and returns the answer with every candidate.
func negotiate(ctx context.Context, pc *webrtc.PeerConnection, offer string, beforeAnswer func() error) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", statusErr(http.StatusBadRequest, ErrBadOffer, "%v", err)
	}
	if beforeAnswer != nil {
		if err := beforeAnswer(); err != nil {
			return "", err
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", statusErr(http.StatusBadRequest, ErrBadOffer, "%v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", statusErr(http.StatusBadRequest, ErrBadOffer, "%v", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(5 * time.Second):
	}
	return pc.LocalDescription().SDP, nil
}

// remoteIP parses the IP of "ip:port" (or a bare IP).
func remoteIP(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr()
	}
	a, _ := netip.ParseAddr(remote)
	return a
}
