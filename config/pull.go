package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// Pull configures pull sources: remote URLs that MPS plays and publishes
// into the hub as named streams, reconnecting with backoff when they drop.
type Pull struct {
	// BackoffMin is the first retry delay after a source drops or cannot
	// be reached; it doubles on every failure up to BackoffMax.
	BackoffMin time.Duration `koanf:"backoff_min"`
	BackoffMax time.Duration `koanf:"backoff_max"`
	// StableAfter: a connection that stayed up this long resets the delay
	// to BackoffMin.
	StableAfter time.Duration `koanf:"stable_after"`
	// ReadTimeout bounds connecting to a source and every wait for its media.
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// Sources are started with the server.
	Sources []PullSource `koanf:"sources"`
}

// PullSource is one pull: {name: live/cam9, url: rtsp://...}.
type PullSource struct {
	// Name is the hub stream, such as "live/cam9"; its application must
	// be listed in applications.
	Name string `koanf:"name"`
	// URL is rtsp(s)://, rtmp(s)://, srt:// or an HLS http(s):// playlist.
	URL string `koanf:"url"`
	// OnDemand (pull only while someone watches) is not supported yet:
	// it must be false.
	OnDemand bool `koanf:"on_demand"`
	// RTSPTransport is "" (UDP, falling back to TCP), "udp" or "tcp".
	RTSPTransport string `koanf:"rtsp_transport"`
}

// DefaultPull is the pull section of Default: no sources, retries from
// 1 s doubling to 30 s, reset after a minute up, and a 10 s read timeout.
func DefaultPull() Pull {
	return Pull{
		BackoffMin:  time.Second,
		BackoffMax:  30 * time.Second,
		StableAfter: time.Minute,
		ReadTimeout: 10 * time.Second,
		Sources:     []PullSource{},
	}
}

// pullSchemes are the URL schemes a pull source may use.
var pullSchemes = map[string]bool{"rtsp": true, "rtsps": true, "rtmp": true, "rtmps": true, "srt": true, "http": true, "https": true}

func (c *Config) validatePull() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	p := c.Pull
	if p.BackoffMin <= 0 {
		add("pull.backoff_min %s: must be more than 0", p.BackoffMin)
	}
	if p.BackoffMax < p.BackoffMin {
		add("pull.backoff_max %s: must be at least pull.backoff_min %s", p.BackoffMax, p.BackoffMin)
	}
	if p.StableAfter <= 0 {
		add("pull.stable_after %s: must be more than 0", p.StableAfter)
	}
	if p.ReadTimeout <= 0 {
		add("pull.read_timeout %s: must be more than 0", p.ReadTimeout)
	}
	apps := map[string]bool{}
	for _, a := range c.Applications {
		apps[a.Name] = true
	}
	seen := map[string]int{}
	for i, s := range p.Sources {
		where := fmt.Sprintf("pull.sources[%d]", i)
		if s.Name != "" {
			where = fmt.Sprintf("pull.sources[%d] (%s)", i, s.Name)
		}
		if err := stream.ValidateName(s.Name); err != nil {
			add("%s: name %q: %w", where, s.Name, err)
		} else {
			app, _, _ := strings.Cut(s.Name, "/")
			if !apps[app] {
				add("%s: application %q is not in applications", where, app)
			}
			if j, dup := seen[s.Name]; dup {
				add("%s: the same name as pull.sources[%d]", where, j)
			}
			seen[s.Name] = i
		}
		if err := checkPullURL(s.URL); err != nil {
			add("%s: url: %w", where, err)
		}
		if s.OnDemand {
			add("%s: on_demand: true is not supported yet; pull sources run all the time (set on_demand: false)", where)
		}
		switch s.RTSPTransport {
		case "", "udp", "tcp":
		default:
			add("%s: rtsp_transport %q: want udp, tcp or empty (UDP, then TCP)", where, s.RTSPTransport)
		}
	}
	return errs
}

func checkPullURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("empty; want rtsp://, rtmp://, srt:// or an HLS http(s):// URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if !pullSchemes[strings.ToLower(u.Scheme)] {
		return fmt.Errorf("scheme %q: want rtsp, rtsps, rtmp, rtmps, srt, http or https", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", u.Redacted())
	}
	if u.Scheme == "srt" && u.Port() == "" {
		return fmt.Errorf("%q: srt:// needs a port", u.Redacted())
	}
	return nil
}
