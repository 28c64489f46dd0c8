// Package rtsp ingests RTSP publishers (ffmpeg, GStreamer, IP cameras that
// push) into the stream hub, and serves hub streams to RTSP players over
// TCP (interleaved) and UDP.
//
// A publisher that sends ANNOUNCE and RECORD to
// rtsp://HOST:8554/live/cam1?key=SECRET publishes the hub stream
// "live/cam1": the URL path is the name and the query carries the stream
// key and optional parameters, authorised by an auth.Policy as for RTMP. A
// player sends DESCRIBE, SETUP and PLAY to rtsp://HOST:8554/live/cam1.
//
// Supported codecs: H.264, H.265, AAC (MPEG-4 audio, RFC 3640) and Opus.
// Tracks in other codecs are ignored with a logged warning.
package rtsp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// Defaults for the Server fields left zero.
const (
	DefaultAddr         = ":8554"
	DefaultReadTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultIdleTimeout  = 60 * time.Second
)

// Protocol is the protocol name given to the hub for RTSP publishers and readers.
const Protocol = "rtsp"

// writeQueueSize is the number of RTP packets that may wait to be sent to
// one player: a new player gets the whole cached GOP at once.
const writeQueueSize = 8192

// PublishInfo describes a publisher that the hub has accepted.
type PublishInfo = auth.PublishInfo

// Server accepts RTSP connections. Set the exported fields, then call
// Initialize; Close stops it.
type Server struct {
	// Addr is the TCP address of the RTSP listener. Default ":8554"; ":0"
	// picks a free port, which ListenAddr then tells.
	Addr string
	// UDPRTPAddr and UDPRTCPAddr are the UDP addresses for the RTP and RTCP
	// packets of clients that choose the UDP transport. Both or neither
	// must be set; the RTP port must be even and the RTCP port the next
	// one. Empty: clients must use TCP (interleaved).
	UDPRTPAddr  string
	UDPRTCPAddr string
	// Hub receives the published streams and serves the played ones. Required.
	Hub *stream.Hub
	// Auth authorises publishers. Nil means auth.DefaultPolicy().
	Auth *auth.Policy
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ReadTimeout bounds every wait for a request or for media from a
	// publisher, and a player's wait for a stream's first session. Default 10 s.
	ReadTimeout time.Duration
	// WriteTimeout bounds every write to a client. Default 10 s.
	WriteTimeout time.Duration
	// IdleTimeout closes connections that send no request (and sessions
	// that get neither requests nor packets) for this long. Default 60 s;
	// players are told to send keepalives often enough.
	IdleTimeout time.Duration
	// DisablePlay refuses RTSP players (DESCRIBE and SETUP for playing).
	// Players are not authorised otherwise: anyone who can reach the port
	// may play.
	DisablePlay bool
	// Admit, when set, is asked about every publisher the key policy lets
	// through, before its media is read. An error refuses the publisher;
	// the parameters it returns replace the publisher's own.
	Admit auth.Admitter
	// OnPublish, when set, is called once per publishing session after the
	// hub has accepted it.
	OnPublish func(PublishInfo)

	log      *slog.Logger
	srv      *gortsplib.Server
	mu       sync.Mutex
	ln       net.Listener
	udpAddrs []net.Addr
	closing  chan struct{}
	closed   bool
	nextID   uint64
}

// Initialize starts listening.
func (s *Server) Initialize() error {
	if s.Hub == nil {
		return errors.New("rtsp server: Hub is required")
	}
	if s.Addr == "" {
		s.Addr = DefaultAddr
	}
	if (s.UDPRTPAddr == "") != (s.UDPRTCPAddr == "") {
		return errors.New("rtsp server: set both UDPRTPAddr and UDPRTCPAddr, or neither")
	}
	if s.Auth == nil {
		s.Auth = auth.DefaultPolicy()
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = DefaultWriteTimeout
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("protocol", Protocol)
	s.closing = make(chan struct{})

	s.srv = &gortsplib.Server{
		Handler:        &handler{s: s},
		RTSPAddress:    s.Addr,
		UDPRTPAddress:  s.UDPRTPAddr,
		UDPRTCPAddress: s.UDPRTCPAddr,
		ReadTimeout:    s.ReadTimeout,
		WriteTimeout:   s.WriteTimeout,
		IdleTimeout:    s.IdleTimeout,
		WriteQueueSize: writeQueueSize,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			s.mu.Lock()
			s.ln = ln
			s.mu.Unlock()
			return &headListener{Listener: ln, timeout: s.ReadTimeout}, nil
		},
		ListenPacket: func(network, address string) (net.PacketConn, error) {
			pc, err := net.ListenPacket(network, address)
			if err == nil {
				s.mu.Lock()
				s.udpAddrs = append(s.udpAddrs, pc.LocalAddr())
				s.mu.Unlock()
			}
			return pc, err
		},
	}
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("rtsp listen %s: %w", s.Addr, err)
	}
	attrs := []any{"addr", s.ListenAddr().String()}
	if s.UDPRTPAddr != "" {
		attrs = append(attrs, "udp_rtp", s.UDPRTPAddr, "udp_rtcp", s.UDPRTCPAddr)
	}
	s.log.Info("rtsp listening", attrs...)
	return nil
}

// ListenAddr returns the TCP address the server listens on, or nil before
// Initialize.
func (s *Server) ListenAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops listening and closes every connection and session.
// Publishers end their sessions as after a disconnect.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed || s.srv == nil {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.srv.Close()
}

func (s *Server) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func (s *Server) newID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return s.nextID
}

// handler receives gortsplib's callbacks; it keeps them off Server's API.
type handler struct{ s *Server }

// connState is the per-connection data.
type connState struct {
	id     uint64
	remote string
	log    *slog.Logger

	mu          sync.Mutex
	pendingPlay *playSession // PLAY accepted, response not sent yet
}

func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	id := h.s.newID()
	remote := ctx.Conn.NetConn().RemoteAddr().String()
	ctx.Conn.SetUserData(&connState{id: id, remote: remote, log: h.s.log.With("conn", id, "remote", remote)})
}

func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	cs := conn(ctx.Conn)
	switch {
	case ctx.Error == nil, h.s.isClosing():
		cs.log.Debug("rtsp connection closed", "error", ctx.Error)
	default:
		cs.log.Debug("rtsp connection closed", "error", ctx.Error.Error())
	}
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	switch sd := ctx.Session.UserData().(type) {
	case *publishSession:
		sd.close(ctx.Error)
	case *playSession:
		sd.close(ctx.Error)
	}
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (res *base.Response, st *gortsplib.ServerStream, err error) {
	defer h.recover(conn(ctx.Conn), &res, &err)
	return h.s.describe(ctx)
}

func (h *handler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (res *base.Response, err error) {
	defer h.recover(conn(ctx.Conn), &res, &err)
	return h.s.announce(ctx)
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (res *base.Response, st *gortsplib.ServerStream, err error) {
	defer h.recover(conn(ctx.Conn), &res, &err)
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		// A publisher sets up each announced media; nothing to decide.
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	return h.s.setupPlay(ctx)
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (res *base.Response, err error) {
	defer h.recover(conn(ctx.Conn), &res, &err)
	ps, ok := ctx.Session.UserData().(*playSession)
	if !ok {
		return &base.Response{StatusCode: base.StatusBadRequest}, errors.New("PLAY before SETUP")
	}
	ps.armPlay()
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnResponse starts a player once its PLAY response is on its way:
// gortsplib makes the session an active reader only after OnPlay.
func (h *handler) OnResponse(sc *gortsplib.ServerConn, res *base.Response) {
	cs := conn(sc)
	cs.mu.Lock()
	ps := cs.pendingPlay
	cs.pendingPlay = nil
	cs.mu.Unlock()
	if ps != nil && res.StatusCode == base.StatusOK {
		ps.start()
	}
}

func (h *handler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (res *base.Response, err error) {
	defer h.recover(conn(ctx.Conn), &res, &err)
	ps, ok := ctx.Session.UserData().(*publishSession)
	if !ok {
		return &base.Response{StatusCode: base.StatusBadRequest}, errors.New("RECORD before ANNOUNCE")
	}
	return ps.record()
}

func (h *handler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	if ps, ok := ctx.Session.UserData().(*publishSession); ok {
		ps.decodeError(ctx.Error)
		return
	}
	h.s.log.Debug("rtsp decode error", "error", ctx.Error)
}

func (h *handler) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	if ps, ok := ctx.Session.UserData().(*publishSession); ok {
		ps.packetsLost(ctx.Lost)
	}
}

func (h *handler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	if ps, ok := ctx.Session.UserData().(*playSession); ok {
		ps.writeError(ctx.Error)
	}
}

// recover turns a panic in a request handler into a 500 for that request:
// a bug in a parser must cost one request, not the server.
func (h *handler) recover(cs *connState, res **base.Response, err *error) {
	if r := recover(); r != nil {
		cs.log.Error("rtsp request panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*res = &base.Response{StatusCode: base.StatusInternalServerError}
		*err = fmt.Errorf("rtsp: internal error: %v", r)
	}
}

// conn returns the state of a connection. OnConnOpen always sets it.
func conn(sc *gortsplib.ServerConn) *connState {
	if cs, ok := sc.UserData().(*connState); ok {
		return cs
	}
	return &connState{remote: sc.NetConn().RemoteAddr().String(), log: slog.Default()}
}

func remoteIP(sc *gortsplib.ServerConn) netip.Addr {
	if ta, ok := sc.NetConn().RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr()
	}
	if ap, err := netip.ParseAddrPort(sc.NetConn().RemoteAddr().String()); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}

// refusalStatus maps a refusal reason to an RTSP status and a short reason.
func refusalStatus(err error) (base.StatusCode, string) {
	switch {
	case errors.Is(err, auth.ErrMissingKey):
		return base.StatusUnauthorized, "missing key"
	case errors.Is(err, auth.ErrWrongKey):
		return base.StatusUnauthorized, "wrong key"
	case errors.Is(err, auth.ErrExpiredKey):
		return base.StatusUnauthorized, "expired key"
	case errors.Is(err, auth.ErrUnknownApp):
		return base.StatusNotFound, "unknown application"
	case errors.Is(err, stream.ErrInvalidName):
		return base.StatusBadRequest, "invalid stream name"
	case errors.Is(err, stream.ErrAlreadyPublishing):
		return base.StatusBadRequest, "already publishing"
	case errors.Is(err, stream.ErrStreamEnded):
		return base.StatusServiceUnavailable, "stream ending, retry"
	case errors.Is(err, stream.ErrHubClosed):
		return base.StatusServiceUnavailable, "server shutting down"
	case errors.Is(err, auth.ErrAdmissionRefused):
		return base.StatusForbidden, "refused by admission"
	case errors.Is(err, errNoSupportedTracks):
		return base.StatusUnsupportedMediaType, "no supported tracks"
	default:
		return base.StatusBadRequest, "error"
	}
}
