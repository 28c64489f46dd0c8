package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/pion/rtp"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// PullProtocol is the protocol name the hub shows for streams pulled from
// an RTSP server.
const PullProtocol = "pull-rtsp"

// Transports for PullConfig.Transport.
const (
	TransportAuto = ""    // UDP first, TCP when no UDP packet arrives
	TransportUDP  = "udp" // UDP only
	TransportTCP  = "tcp" // interleaved in the RTSP connection
)

// PullConfig configures Pull.
type PullConfig struct {
	// URL is the rtsp:// or rtsps:// URL to play; user:password in it
	// answers the server's authentication.
	URL string
	// Transport is TransportAuto, TransportUDP or TransportTCP.
	Transport string
	// Hub receives the stream. Required.
	Hub *stream.Hub
	// Name is the hub stream to publish, such as "live/cam9". Required.
	Name string
	// Protocol is the protocol name the hub shows. Default PullProtocol.
	Protocol string
	// App and Params are handed to OnPublish; App.Takeover lets the pull
	// replace a live publisher of Name.
	App    auth.App
	Params url.Values
	// OnPublish, when set, is called once per connection, when the hub
	// accepted the first session.
	OnPublish func(PublishInfo)
	// ReadTimeout bounds every request and every wait for packets.
	// Default DefaultReadTimeout.
	ReadTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// CheckPullURL reports whether raw is a URL Pull can play.
func CheckPullURL(raw string) error {
	_, err := pullURL(raw)
	return err
}

func pullURL(raw string) (*base.URL, error) {
	u, err := base.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("rtsp pull: bad URL: %w", err)
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return nil, fmt.Errorf("rtsp pull: URL scheme %q: want rtsp or rtsps", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("rtsp pull: URL has no host")
	}
	return u, nil
}

// Pull plays cfg.URL from an RTSP server (DESCRIBE, SETUP, PLAY) and
// publishes it into the hub as cfg.Name, with the same conversion as an
// RTSP publisher's: H.264, H.265, AAC and Opus medias (others are ignored
// with a warning), parameter sets from the SDP or in band, a new hub
// session when they change. It returns when the source ends or fails,
// when the hub wants the publisher gone, or when ctx ends (then with
// ctx's error). Pull does not reconnect: that is the caller's job.
func Pull(ctx context.Context, cfg PullConfig) (err error) {
	if cfg.Hub == nil || cfg.Name == "" {
		return errors.New("rtsp pull: Hub and Name are required")
	}
	u, err := pullURL(cfg.URL)
	if err != nil {
		return err
	}
	if cfg.Protocol == "" {
		cfg.Protocol = PullProtocol
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("protocol", cfg.Protocol, "stream", cfg.Name, "source", u.Host)

	// failed is closed by the session's kill: a fatal conversion error, or
	// the hub wanting the publisher gone.
	failed := make(chan struct{})
	var once sync.Once
	srv := &Server{Hub: cfg.Hub, log: log}
	if fn := cfg.OnPublish; fn != nil {
		srv.OnPublish = func(pi PublishInfo) {
			pi.Protocol = cfg.Protocol
			fn(pi)
		}
	}
	ps := &publishSession{
		s:      srv,
		c:      &connState{remote: u.Host, log: log},
		kill:   func() { once.Do(func() { close(failed) }) },
		name:   cfg.Name,
		app:    cfg.App,
		params: cfg.Params,
		opts:   stream.PublishOptions{Protocol: cfg.Protocol, RemoteAddr: u.Host, Takeover: cfg.App.Takeover},
	}

	c := &gortsplib.Client{
		Scheme:        u.Scheme,
		Host:          u.Host,
		ReadTimeout:   cfg.ReadTimeout,
		WriteTimeout:  cfg.ReadTimeout,
		OnDecodeError: ps.decodeError,
		OnPacketsLost: ps.packetsLost,
	}
	switch cfg.Transport {
	case TransportAuto:
	case TransportUDP:
		p := gortsplib.ProtocolUDP
		c.Protocol = &p
	case TransportTCP:
		p := gortsplib.ProtocolTCP
		c.Protocol = &p
	default:
		return fmt.Errorf("rtsp pull: transport %q: want udp, tcp or empty", cfg.Transport)
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("rtsp pull %s: %w", cfg.Name, err)
	}
	defer c.Close()
	stopAfter := context.AfterFunc(ctx, c.Close)
	defer stopAfter()

	defer func() {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		reason := err
		if ctx.Err() != nil {
			reason = fmt.Errorf("pull stopped: %w", context.Cause(ctx))
		}
		ps.close(reason)
	}()

	desc, _, err := c.Describe(u)
	if err != nil {
		return fmt.Errorf("rtsp pull %s: DESCRIBE %s: %w", cfg.Name, u.Host, err)
	}
	if err := ps.setupTracks(desc); err != nil {
		return err
	}
	for _, t := range ps.tracks {
		if _, err := c.Setup(desc.BaseURL, t.medi, 0, 0); err != nil {
			return fmt.Errorf("rtsp pull %s: SETUP: %w", cfg.Name, err)
		}
		c.OnPacketRTP(t.medi, t.forma, func(pkt *rtp.Packet) { ps.onClientPacket(c, t, pkt) })
	}
	if _, err := c.Play(nil); err != nil {
		return fmt.Errorf("rtsp pull %s: PLAY: %w", cfg.Name, err)
	}

	ps.mu.Lock()
	if ps.pub == nil && ps.err == nil && ps.ready() {
		if err := ps.start(); err != nil {
			ps.mu.Unlock()
			return fmt.Errorf("rtsp pull %s: %w", cfg.Name, err)
		}
	}
	ps.mu.Unlock()

	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait() }()
	select {
	case err = <-waitErr:
		err = fmt.Errorf("rtsp pull %s: %w", cfg.Name, err)
	case <-failed:
		c.Close()
		<-waitErr
		ps.mu.Lock()
		err = ps.err
		if err == nil && ps.pub != nil {
			err = ps.pub.Err()
		}
		ps.mu.Unlock()
		if err == nil {
			err = errors.New("closed")
		}
		err = fmt.Errorf("rtsp pull %s: %w", cfg.Name, err)
	case <-ctx.Done():
		c.Close()
		<-waitErr
	}
	return err
}

// onClientPacket is onPacket for a pull: the timestamps come from the
// client.
func (ps *publishSession) onClientPacket(c *gortsplib.Client, t *inTrack, pkt *rtp.Packet) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			ps.c.log.Error("rtsp packet panic", "stream", ps.name, "panic", fmt.Sprint(r))
			ps.fail(fmt.Errorf("internal error: %v", r))
		}
	}()
	if ps.closed {
		return
	}
	ps.bytesIn += pkt.MarshalSize()
	if ps.err != nil {
		return
	}
	pts, ok := c.PacketPTS(t.medi, pkt)
	if !ok {
		return
	}
	ps.handlePacket(t, pkt, pts)
	ps.flushBytes()
}
