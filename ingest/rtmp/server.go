// Package rtmp ingests RTMP and Enhanced RTMP publishers (OBS, ffmpeg,
// hardware encoders) into the stream hub, and serves hub streams to RTMP
// players.
//
// A publisher that connects to rtmp://HOST/live with the stream key
// "cam1?key=SECRET" publishes the hub stream "live/cam1": the application
// and the key's path form the name, and the query carries the stream key
// and optional parameters. Publishing is authorised by an auth.Policy.
//
// Supported codecs: H.264, H.265, AV1 and VP9 video (the last three over
// Enhanced RTMP), AAC and Opus audio. Tracks in other codecs are ignored
// with a logged warning.
package rtmp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// Defaults for the Server fields left zero.
const (
	DefaultAddr         = ":1935"
	DefaultReadTimeout  = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

// Protocol is the protocol name given to the hub for RTMP publishers and readers.
const Protocol = "rtmp"

// PublishInfo describes a publisher that the hub has accepted.
type PublishInfo = auth.PublishInfo

// Server accepts RTMP connections. Set the exported fields, then call
// Initialize; Close stops it.
type Server struct {
	// Addr is the TCP address to listen on. Default ":1935"; ":0" picks a
	// free port, which ListenAddr then tells.
	Addr string
	// Hub receives the published streams. Required.
	Hub *stream.Hub
	// Auth authorises publishers. Nil means auth.DefaultPolicy(): the "live"
	// application, without a key from loopback only.
	Auth *auth.Policy
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ReadTimeout bounds the handshake (up to the publish or play command)
	// and every wait for data from a publisher, so that a stalled encoder is
	// disconnected. Default 10 s. The first 2 s of media, which tell the
	// tracks, get 5 s more.
	ReadTimeout time.Duration
	// WriteTimeout bounds every write to a client. Default 10 s.
	WriteTimeout time.Duration
	// DisablePlay refuses RTMP players (the "play" command). Players are
	// not authorised otherwise: anyone who can reach the port may play. A
	// player is disconnected when the stream gets a new publishing session
	// (RTMP cannot announce new tracks) and reconnects.
	DisablePlay bool
	// Admit, when set, is asked about every publisher the key policy lets
	// through, before its media is read. An error refuses the publisher;
	// the parameters it returns replace the publisher's own.
	Admit auth.Admitter

	// OnPublish, when set, is called once per publishing connection after
	// the hub has accepted it. It runs on the connection's goroutine: the
	// publisher's data waits until it returns.
	OnPublish func(PublishInfo)

	log    *slog.Logger
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	nextID uint64
	closed bool
}

// Initialize starts listening and accepting connections.
func (s *Server) Initialize() error {
	if s.Hub == nil {
		return errors.New("rtmp server: Hub is required")
	}
	if s.Addr == "" {
		s.Addr = DefaultAddr
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
	s.log = s.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("protocol", Protocol)

	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("rtmp listen %s: %w", s.Addr, err)
	}
	s.ln = ln
	s.conns = make(map[net.Conn]struct{})
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.log.Info("rtmp listening", "addr", ln.Addr().String())

	s.wg.Add(1)
	go s.acceptLoop()
	return nil
}

// ListenAddr returns the address the server listens on, or nil before
// Initialize.
func (s *Server) ListenAddr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops listening, closes every connection and waits for their
// goroutines to end. Publishers end their sessions as after a disconnect.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed || s.ln == nil {
		s.mu.Unlock()
		return
	}
	s.closed = true
	// Cancel first: connections that fail from here on know why.
	s.cancel()
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: wait and retry, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("rtmp accept", "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
				continue
			case <-s.ctx.Done():
				return
			}
		}
		backoff = 0

		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.nextID++
		id := s.nextID
		s.wg.Add(1)
		s.mu.Unlock()

		go s.serveConn(nc, id)
	}
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}
