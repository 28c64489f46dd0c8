package rtmp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// refuseLinger bounds how long a refused client gets to read the refusal
// before its connection is closed.
const refuseLinger = 2 * time.Second

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn
	sc     *gortmplib.ServerConn
	id     uint64
	remote string
	log    *slog.Logger
	// connected is set once the client completed the handshake and chose
	// to publish or play.
	connected bool
}

func (s *Server) serveConn(nc net.Conn, id uint64) {
	c := &conn{s: s, nc: nc, id: id, remote: nc.RemoteAddr().String()}
	c.log = s.log.With("conn", id, "remote", c.remote)
	defer s.wg.Done()
	defer s.untrack(nc)
	defer nc.Close()
	defer func() {
		// Last resort: a bug in a parser must cost one connection, not the server.
		if r := recover(); r != nil {
			c.log.Error("rtmp connection panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()

	err := c.run()
	switch {
	case err == nil:
	case s.ctx.Err() != nil:
		c.log.Debug("rtmp connection closed by server shutdown", "error", err)
	case errors.Is(err, errPublishRefused):
		c.log.Debug("rtmp connection closed after refusal", "error", err) // logged by refusePublish
	case !c.connected:
		// Garbage, a port scanner, an HTTP client, a truncated handshake.
		c.log.Warn("rtmp connection failed", "error", err)
	case errors.Is(err, io.EOF):
		c.log.Info("rtmp connection closed by the client", "detail", err)
	default:
		c.log.Info("rtmp connection closed", "error", err)
	}
}

func (c *conn) run() error {
	// The handshake, connect and publish/play commands must all arrive
	// within one ReadTimeout: a slow or garbage client cannot hold a
	// connection open.
	if err := c.nc.SetDeadline(time.Now().Add(c.s.ReadTimeout)); err != nil {
		return err
	}
	c.sc = &gortmplib.ServerConn{RW: c.nc}
	if err := c.sc.Initialize(); err != nil {
		return fmt.Errorf("rtmp handshake or connect: %w", err)
	}
	if err := c.sc.AcceptConn(); err != nil {
		return fmt.Errorf("rtmp connect: %w", err)
	}
	c.connected = true
	name, query := parseTarget(c.sc.URL)
	if c.sc.Publish {
		return c.publish(name, query.Get(auth.ParamKey), query)
	}
	return c.play(name)
}

func (c *conn) remoteIP() netip.Addr {
	if ta, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr()
	}
	if ap, err := netip.ParseAddrPort(c.remote); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}

// errPublishRefused marks errors that refused a client; they were logged already.
var errPublishRefused = errors.New("refused")

// refusePublish logs one line for the refusal, tells the client why with an
// onStatus error, and returns the error for the connection to end with.
func (c *conn) refusePublish(name string, err error) error {
	reason := refusalReason(err)
	c.log.Warn("publish refused", "stream", name, "reason", reason, "error", err.Error())
	code := "NetStream.Publish.BadName"
	if errors.Is(err, auth.ErrMissingKey) || errors.Is(err, auth.ErrWrongKey) || errors.Is(err, auth.ErrExpiredKey) {
		code = "NetStream.Publish.Unauthorized"
	}
	c.sendStatusAndLinger(code, "publish refused: "+reason)
	return fmt.Errorf("rtmp publish %s: %w: %w", name, errPublishRefused, err)
}

// refusalReason is the short reason logged and sent to the client.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, auth.ErrMissingKey):
		return "missing key"
	case errors.Is(err, auth.ErrWrongKey):
		return "wrong key"
	case errors.Is(err, auth.ErrExpiredKey):
		return "expired key"
	case errors.Is(err, auth.ErrUnknownApp):
		return "unknown application"
	case errors.Is(err, stream.ErrInvalidName):
		return "invalid stream name"
	case errors.Is(err, stream.ErrAlreadyPublishing):
		return "already publishing"
	case errors.Is(err, stream.ErrStreamEnded):
		return "stream ending, retry"
	case errors.Is(err, stream.ErrHubClosed):
		return "server shutting down"
	case errors.Is(err, auth.ErrAdmissionRefused):
		return "refused by admission"
	case errors.Is(err, errNoSupportedTracks):
		return "no supported tracks"
	default:
		return "error"
	}
}

// sendStatusAndLinger sends an onStatus error, then gives the client a
// moment to read it: closing with unread input would reset the connection
// and could discard the status before the client sees it.
func (c *conn) sendStatusAndLinger(code, description string) {
	_ = c.nc.SetDeadline(time.Now().Add(min(refuseLinger, c.s.WriteTimeout)))
	err := c.sc.Write(&message.CommandAMF0{
		ChunkStreamID:   5,
		MessageStreamID: 0x1000000,
		Name:            "onStatus",
		Arguments: []any{
			nil,
			amf0.Object{
				{Key: "level", Value: "error"},
				{Key: "code", Value: code},
				{Key: "description", Value: description},
			},
		},
	})
	if err != nil {
		return
	}
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(refuseLinger))
	_, _ = io.Copy(io.Discard, c.nc)
}
