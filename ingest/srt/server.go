// Package srt ingests MPEG-TS over SRT (OBS, ffmpeg, hardware encoders)
// into the stream hub, and serves hub streams to SRT readers.
//
// A caller says what it wants in its stream ID, in either syntax:
//
//	#!::r=live/cam1,m=publish,s=KEY   or   publish:live/cam1:KEY
//	#!::r=live/cam1,m=request         or   read:live/cam1
//
// Publishers are authorised by the same auth.Policy as RTMP, per
// application. Each application may also have an SRT passphrase (AES): a
// caller that does not give it, or gives a wrong one, is rejected in the
// handshake.
//
// Supported codecs: H.264 and H.265 video, AAC and Opus audio, carried in
// MPEG-TS. Tracks in other codecs are ignored with a logged warning.
package srt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// Defaults for the Server fields left zero.
const (
	DefaultAddr         = ":8890"
	DefaultLatency      = 120 * time.Millisecond
	DefaultReadTimeout  = 10 * time.Second
	DefaultTrackTimeout = 10 * time.Second
)

// Protocol is the protocol name given to the hub for SRT publishers and readers.
const Protocol = "srt"

// Passphrase lengths SRT accepts.
const (
	MinPassphrase = 10
	MaxPassphrase = 79
)

// chunkSize is the payload of every SRT data packet a reader gets: seven
// MPEG-TS packets, as every SRT implementation sends.
const chunkSize = 7 * 188

// PublishInfo describes a publisher that the hub has accepted.
type PublishInfo = auth.PublishInfo

// Server accepts SRT connections. Set the exported fields, then call
// Initialize; Close stops it.
type Server struct {
	// Addr is the UDP address to listen on. Default ":8890"; ":0" picks a
	// free port, which ListenAddr then tells.
	Addr string
	// Hub receives the published streams. Required.
	Hub *stream.Hub
	// Auth authorises publishers. Nil means auth.DefaultPolicy().
	Auth *auth.Policy
	// Passphrases maps an application name to the SRT passphrase (10 to 79
	// characters) that its publishers and readers must use. Applications
	// not listed take unencrypted callers only.
	Passphrases map[string]string
	// Latency is the SRT receive latency (TSBPD delay) the server asks
	// for; the larger of it and the caller's applies. Default 120 ms.
	Latency time.Duration
	// ReadTimeout closes a connection that received nothing for this long.
	// Default 10 s.
	ReadTimeout time.Duration
	// TrackTimeout bounds the wait for a publisher's tracks: the PMT and,
	// for video, the first parameter sets. Default 10 s.
	TrackTimeout time.Duration
	// DisableRead refuses readers (m=request, read:). Readers are not
	// authorised otherwise, beyond the application's passphrase.
	DisableRead bool
	// Admit, when set, is asked about every publisher the key policy lets
	// through, before the handshake completes. An error refuses it.
	Admit auth.Admitter
	// OnPublish, when set, is called once per publishing connection after
	// the hub accepted it, on the connection's goroutine.
	OnPublish func(PublishInfo)
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	log    *slog.Logger
	ln     gosrt.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[gosrt.Conn]struct{}
	nextID uint64
	closed bool
}

// Initialize starts listening and accepting connections.
func (s *Server) Initialize() error {
	if s.Hub == nil {
		return errors.New("srt server: Hub is required")
	}
	if s.Addr == "" {
		s.Addr = DefaultAddr
	}
	if s.Auth == nil {
		s.Auth = auth.DefaultPolicy()
	}
	if s.Latency <= 0 {
		s.Latency = DefaultLatency
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	if s.TrackTimeout <= 0 {
		s.TrackTimeout = DefaultTrackTimeout
	}
	for app, p := range s.Passphrases {
		if p != "" && (len(p) < MinPassphrase || len(p) > MaxPassphrase) {
			return fmt.Errorf("srt server: passphrase of application %q: want %d to %d characters", app, MinPassphrase, MaxPassphrase)
		}
	}
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("protocol", Protocol)

	cfg := gosrt.DefaultConfig()
	cfg.Latency = s.Latency
	cfg.ReceiverLatency = s.Latency
	cfg.PeerLatency = s.Latency
	cfg.PeerIdleTimeout = s.ReadTimeout
	cfg.PayloadSize = chunkSize
	// Listen needs a host part: ":8890" is every address.
	addr := s.Addr
	if strings.HasPrefix(addr, ":") {
		addr = "0.0.0.0" + addr
	}
	ln, err := gosrt.Listen("srt", addr, cfg)
	if err != nil {
		return fmt.Errorf("srt listen %s: %w", s.Addr, err)
	}
	s.ln = ln
	s.conns = make(map[gosrt.Conn]struct{})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.log.Info("srt listening", "addr", ln.Addr().String(), "latency", s.Latency)

	s.wg.Add(1)
	go s.acceptLoop()
	return nil
}

// ListenAddr returns the UDP address the server listens on, or nil before
// Initialize.
func (s *Server) ListenAddr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops listening, closes every connection and waits for their
// goroutines to end. It does nothing on a nil Server.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.closed || s.ln == nil {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.cancel()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		req, err := s.ln.Accept2()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("srt listener stopped", "error", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			req.Reject(gosrt.REJ_CLOSE)
			return
		}
		s.nextID++
		id := s.nextID
		s.wg.Add(1)
		s.mu.Unlock()
		// Admission may take a while: each request gets its own goroutine.
		go s.handle(req, id)
	}
}

// track registers an accepted connection so that Close can close it; it
// returns false when the server is closing.
func (s *Server) track(c gosrt.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c gosrt.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// refusal is a handshake rejection: the reason logged and the code sent.
type refusal struct {
	reason string
	code   gosrt.RejectionReason
	err    error
}

func (s *Server) handle(req gosrt.ConnRequest, id uint64) {
	defer s.wg.Done()
	remote := req.RemoteAddr().String()
	log := s.log.With("conn", id, "remote", remote)
	defer func() {
		if r := recover(); r != nil {
			log.Error("srt connection panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()

	d, ref := s.decide(req, remote)
	sid := d.sid
	if ref != nil {
		args := []any{"reason", ref.reason, "code", int(ref.code)}
		if sid.Name != "" {
			args = append(args, "stream", sid.Name, "mode", sid.Mode.String())
		}
		if ref.err != nil {
			args = append(args, "error", ref.err.Error())
		}
		log.Warn("srt connection refused", args...)
		req.Reject(ref.code)
		return
	}

	conn, err := req.Accept()
	if err != nil {
		log.Warn("srt handshake failed", "stream", sid.Name, "error", err)
		return
	}
	defer conn.Close()
	if !s.track(conn) {
		return
	}
	defer s.untrack(conn)
	c := &connection{s: s, conn: conn, id: id, remote: remote, log: log.With("stream", sid.Name)}
	if sid.Mode == ModePublish {
		c.publish(d)
	} else {
		c.read(d)
	}
}

// decision is an accepted request: for publishers, the application that
// authorised it and the parameters admission returned.
type decision struct {
	sid    StreamID
	app    auth.App
	params url.Values
}

// decide checks a connection request: stream ID, passphrase, key and
// admission. A nil refusal accepts it.
func (s *Server) decide(req gosrt.ConnRequest, remote string) (decision, *refusal) {
	if req.Version() < 5 {
		return decision{}, &refusal{reason: "SRT v4 caller without a stream id", code: gosrt.REJX_BAD_REQUEST}
	}
	sid, err := ParseStreamID(req.StreamId())
	if err != nil {
		return decision{}, &refusal{reason: "bad stream id", code: gosrt.REJX_BAD_REQUEST, err: err}
	}
	appName, _, _ := strings.Cut(sid.Name, "/")
	if ref := s.checkPassphrase(req, appName); ref != nil {
		return decision{sid: sid}, ref
	}

	if sid.Mode == ModeRead {
		if s.DisableRead {
			return decision{sid: sid}, &refusal{reason: "reading over srt is disabled", code: gosrt.REJX_BAD_MODE}
		}
		if _, err := s.Hub.Get(sid.Name); err != nil {
			return decision{sid: sid}, &refusal{reason: "stream not found", code: gosrt.REJX_NOTFOUND}
		}
		return decision{sid: sid}, nil
	}

	app, err := s.Auth.AuthorizePublish(sid.Name, sid.Key, remoteIP(req.RemoteAddr(), remote))
	if err != nil {
		return decision{sid: sid}, authRefusal(err)
	}
	if !app.Takeover {
		if st, err := s.Hub.Get(sid.Name); err == nil && st.State() == stream.StateLive {
			return decision{sid: sid}, &refusal{reason: "already publishing", code: gosrt.REJX_CONFLICT}
		}
	}
	if s.Admit != nil {
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		defer cancel()
		params, err := s.Admit(ctx, auth.PublishRequest{Name: sid.Name, Protocol: Protocol, RemoteAddr: remote, App: app, Params: app.Params(nil)})
		if err != nil {
			return decision{sid: sid}, &refusal{reason: "refused by admission", code: gosrt.REJX_FORBIDDEN, err: err}
		}
		return decision{sid: sid, app: app, params: params}, nil
	}
	return decision{sid: sid, app: app, params: app.Params(nil)}, nil
}

func (s *Server) checkPassphrase(req gosrt.ConnRequest, app string) *refusal {
	want := s.Passphrases[app]
	switch {
	case want == "" && req.IsEncrypted():
		return &refusal{reason: "passphrase given, but the application has none", code: gosrt.REJ_UNSECURE}
	case want == "":
		return nil
	case !req.IsEncrypted():
		return &refusal{reason: "missing passphrase", code: gosrt.REJ_UNSECURE}
	}
	if err := req.SetPassphrase(want); err != nil {
		return &refusal{reason: "wrong passphrase", code: gosrt.REJ_BADSECRET}
	}
	return nil
}

func authRefusal(err error) *refusal {
	r := &refusal{code: gosrt.REJX_UNAUTHORIZED, err: err}
	switch {
	case errors.Is(err, auth.ErrMissingKey):
		r.reason = "missing key"
	case errors.Is(err, auth.ErrWrongKey):
		r.reason = "wrong key"
	case errors.Is(err, auth.ErrExpiredKey):
		r.reason = "expired key"
	case errors.Is(err, auth.ErrUnknownApp):
		r.reason, r.code = "unknown application", gosrt.REJX_NOTFOUND
	case errors.Is(err, stream.ErrInvalidName):
		r.reason, r.code = "invalid stream name", gosrt.REJX_BAD_REQUEST
	default:
		r.reason, r.code = "error", gosrt.REJX_FORBIDDEN
	}
	return r
}

func remoteIP(a net.Addr, s string) netip.Addr {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.AddrPort().Addr()
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}
