package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// PullProtocol is the protocol name the hub shows for streams pulled from
// an SRT server.
const PullProtocol = "pull-srt"

// PullConfig configures Pull.
type PullConfig struct {
	// URL is srt://HOST:PORT with the options of srt-live-transmit in the
	// query: streamid (such as "read:live/cam1" or
	// "#!::r=live/cam1,m=request"), passphrase, latency (milliseconds),
	// conntimeo (milliseconds) and the others gosrt reads.
	URL string
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
	// accepted the first session. It runs on the pull's goroutine.
	OnPublish func(PublishInfo)
	// ReadTimeout closes the connection when nothing arrives for this
	// long, and bounds the wait for the tracks. Default DefaultReadTimeout.
	ReadTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// CheckPullURL reports whether raw is a URL Pull can play.
func CheckPullURL(raw string) error {
	_, _, err := pullConfig(raw)
	return err
}

func pullConfig(raw string) (string, gosrt.Config, error) {
	cfg := gosrt.DefaultConfig()
	u, err := url.Parse(raw)
	if err != nil {
		return "", cfg, fmt.Errorf("srt pull: bad URL: %w", err)
	}
	if u.Scheme != "srt" {
		return "", cfg, fmt.Errorf("srt pull: URL scheme %q: want srt", u.Scheme)
	}
	if u.Port() == "" {
		return "", cfg, errors.New("srt pull: URL needs a host and a port")
	}
	addr, err := cfg.UnmarshalURL(raw)
	if err != nil {
		return "", cfg, fmt.Errorf("srt pull: URL options: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return "", cfg, fmt.Errorf("srt pull: URL options: %w", err)
	}
	return addr, cfg, nil
}

// Pull connects to an SRT server as a caller, reads the MPEG-TS it sends
// and publishes it into the hub as cfg.Name, with the same conversion as
// an SRT publisher's: H.264, H.265, AAC and Opus, a new hub session when
// the codec parameters change. It returns when the source ends (io.EOF),
// fails or goes quiet for ReadTimeout, when the hub wants the publisher
// gone, or when ctx ends (then with ctx's error). Pull does not reconnect:
// that is the caller's job.
func Pull(ctx context.Context, cfg PullConfig) (err error) {
	if cfg.Hub == nil || cfg.Name == "" {
		return errors.New("srt pull: Hub and Name are required")
	}
	addr, scfg, err := pullConfig(cfg.URL)
	if err != nil {
		return err
	}
	if cfg.Protocol == "" {
		cfg.Protocol = PullProtocol
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	scfg.PeerIdleTimeout = cfg.ReadTimeout
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("protocol", cfg.Protocol, "stream", cfg.Name, "source", addr)

	// gosrt.Dial takes no context: its ConnectionTimeout (default 3 s)
	// bounds it.
	conn, err := gosrt.Dial("srt", addr, scfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("srt pull %s: connect to %s: %w", cfg.Name, addr, err)
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()

	srv := &Server{Hub: cfg.Hub, TrackTimeout: cfg.ReadTimeout, log: log}
	if fn := cfg.OnPublish; fn != nil {
		srv.OnPublish = func(pi PublishInfo) {
			pi.Protocol = cfg.Protocol
			fn(pi)
		}
	}
	c := &connection{s: srv, conn: conn, remote: addr, log: log}
	ps := &publishSession{
		c:      c,
		name:   cfg.Name,
		app:    cfg.App,
		params: cfg.Params,
		opts:   stream.PublishOptions{Protocol: cfg.Protocol, RemoteAddr: addr, Takeover: cfg.App.Takeover},
		in:     &countingReader{r: conn},
	}
	err = ps.run()
	reason := err
	switch {
	case ctx.Err() != nil:
		err = ctx.Err()
		reason = fmt.Errorf("pull stopped: %w", context.Cause(ctx))
	case errors.Is(err, io.EOF):
		reason = nil
	}
	ps.stopPublisher(reason)
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("srt pull %s: %w", cfg.Name, err)
	}
	return err
}
