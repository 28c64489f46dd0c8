package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// PullProtocol is the protocol name the hub shows for streams pulled from
// an RTMP server.
const PullProtocol = "pull-rtmp"

// PullConfig configures Pull.
type PullConfig struct {
	// URL is the rtmp:// or rtmps:// URL to play. Its path is the
	// application followed by the stream key, as in
	// rtmp://host/live/cam1?key=K; a #fragment, when given, is the stream
	// key instead and the whole path the application.
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
	// ReadTimeout bounds the connection set-up and every wait for data.
	// Default DefaultReadTimeout.
	ReadTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Pull connects to an RTMP server, plays cfg.URL and publishes what it
// receives into the hub as cfg.Name, with the same conversion as an RTMP
// publisher's: H.264, H.265, AV1, VP9, AAC and Opus tracks, a new hub
// session when the codec parameters change. It returns when the source
// ends (io.EOF when the server closed the connection), when the hub wants
// the publisher gone, or when ctx ends (then with ctx's error). Pull does
// not reconnect: that is the caller's job.
func Pull(ctx context.Context, cfg PullConfig) (err error) {
	if cfg.Hub == nil || cfg.Name == "" {
		return errors.New("rtmp pull: Hub and Name are required")
	}
	u, err := PullURL(cfg.URL)
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

	c := &gortmplib.Client{URL: u}
	dctx, cancel := context.WithTimeout(ctx, cfg.ReadTimeout)
	err = c.Initialize(dctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("rtmp pull %s: connect to %s: %w", cfg.Name, u.Host, err)
	}
	defer c.Close()
	// The blocked read returns once ctx ends.
	defer context.AfterFunc(ctx, c.Close)()

	srv := &Server{Hub: cfg.Hub, log: log}
	if fn := cfg.OnPublish; fn != nil {
		srv.OnPublish = func(pi PublishInfo) {
			pi.Protocol = cfg.Protocol
			fn(pi)
		}
	}
	cn := &conn{s: srv, nc: c.NetConn(), remote: u.Host, log: log}
	ps := &publishSession{
		c:      cn,
		name:   cfg.Name,
		app:    cfg.App,
		params: cfg.Params,
		opts:   stream.PublishOptions{Protocol: cfg.Protocol, RemoteAddr: u.Host, Takeover: cfg.App.Takeover},
	}
	var counted uint64
	countBytes := func() {
		if ps.pub == nil {
			return
		}
		if n := c.BytesReceived(); n > counted {
			ps.pub.AddBytesIn(int(n - counted))
			counted = n
		}
	}
	defer func() {
		countBytes()
		reason := err
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
			reason = fmt.Errorf("pull stopped: %w", context.Cause(ctx))
		case errors.Is(err, io.EOF):
			reason = nil // the source ended its stream: a normal end
		}
		ps.stopPublisher(reason)
	}()

	nc := c.NetConn()
	if err := nc.SetDeadline(time.Now().Add(cfg.ReadTimeout + trackDetectTime)); err != nil {
		return err
	}
	r := &gortmplib.Reader{Conn: c}
	if err := r.Initialize(); err != nil {
		return fmt.Errorf("rtmp pull %s: reading tracks: %w", cfg.Name, err)
	}
	if err := ps.setupTracks(r); err != nil {
		return err
	}
	for {
		if err := nc.SetDeadline(time.Now().Add(cfg.ReadTimeout)); err != nil {
			return err
		}
		if err := r.Read(); err != nil {
			if ps.pub != nil {
				if reason := ps.pub.Err(); reason != nil {
					return fmt.Errorf("rtmp pull %s: %w", cfg.Name, reason)
				}
			}
			return fmt.Errorf("rtmp pull %s: %w", cfg.Name, err)
		}
		if ps.err != nil {
			return fmt.Errorf("rtmp pull %s: %w", cfg.Name, ps.err)
		}
		countBytes()
	}
}

// PullURL checks an rtmp:// or rtmps:// source URL and returns it in the
// form gortmplib plays: application in the path, stream key in the
// fragment.
func PullURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("rtmp pull: bad URL: %w", err)
	}
	if u.Scheme != "rtmp" && u.Scheme != "rtmps" {
		return nil, fmt.Errorf("rtmp pull: URL scheme %q: want rtmp or rtmps", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("rtmp pull: URL has no host")
	}
	if u.Fragment == "" {
		app, key, _ := strings.Cut(strings.Trim(u.Path, "/"), "/")
		if app == "" || key == "" {
			return nil, fmt.Errorf("rtmp pull: URL path %q: want /APP/STREAM", u.Path)
		}
		u.Path, u.RawPath = "/"+app, ""
		u.Fragment = key
		if u.RawQuery != "" {
			u.Fragment += "?" + u.RawQuery
			u.RawQuery = ""
		}
	}
	return u, nil
}
