// Package pull runs pull sources: each one plays a remote rtsp://,
// rtmp://, srt:// or HLS http(s):// URL and publishes it into the hub as a
// named stream, the way a publisher of that protocol would. A source that
// drops, or cannot be reached, is retried with exponential backoff (1 s
// doubling to 30 s by default, reset once a connection stayed up for a
// minute). The protocol conversion lives in each protocol's package
// (rtsp.Pull, rtmp.Pull, srt.Pull); HLS is converted here.
package pull

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/rtmp"
	"github.com/mps-dev/mps/ingest/rtsp"
	"github.com/mps-dev/mps/ingest/srt"
	"github.com/mps-dev/mps/stream"
)

// Defaults for the Manager fields left zero.
const (
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 30 * time.Second
	DefaultStableAfter = time.Minute
	DefaultReadTimeout = 10 * time.Second
)

// Errors the API matches with errors.Is.
var (
	ErrExists   = errors.New("pull already exists")
	ErrNotFound = errors.New("pull not found")
	ErrInvalid  = errors.New("invalid pull")
	ErrClosed   = errors.New("pull manager closed")
)

// Phase is the life-cycle state of a pull.
type Phase string

// Pull phases.
const (
	PhaseConnecting Phase = "connecting" // dialling the source, reading its tracks
	PhaseLive       Phase = "live"       // publishing into the hub
	PhaseBackoff    Phase = "backoff"    // waiting before the next attempt
	PhaseStopped    Phase = "stopped"    // stopped through the API or at shutdown
)

// Origin tells where a pull was defined.
const (
	OriginConfig = "config"
	OriginAPI    = "api"
)

// Source is one pull: the URL to play and the hub stream to publish it as.
type Source struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// RTSPTransport is "", "udp" or "tcp" for rtsp:// sources.
	RTSPTransport string `json:"rtsp_transport,omitempty"`
}

// State is a snapshot of one pull, for the API.
type State struct {
	Name          string `json:"name"`
	URL           string `json:"url"` // the password, if any, is masked
	Protocol      string `json:"protocol"`
	RTSPTransport string `json:"rtsp_transport,omitempty"`
	Origin        string `json:"origin"`
	State         Phase  `json:"state"`
	// Since is when State last changed.
	Since time.Time `json:"since"`
	// LastError is why the last attempt or connection ended.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// NextAttempt is set in the backoff state.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	// Failures counts the attempts since the last stable connection.
	Failures int `json:"failures"`
	// Connects counts the connections that went live.
	Connects int `json:"connects"`
}

// Manager runs pull sources. Set the exported fields, then use it; Close
// stops every pull.
type Manager struct {
	// Hub receives the streams. Required.
	Hub *stream.Hub
	// Policy gives the application of a pull's stream name (its
	// parameters, takeover setting). Nil: auth.DefaultPolicy(). A pull
	// needs no stream key: it is configured by the operator.
	Policy *auth.Policy
	// Admit, when set, is asked before every connection attempt, as for
	// a publisher; a refusal counts as a failed attempt.
	Admit auth.Admitter
	// OnPublish, when set, is called once per connection that goes live.
	OnPublish func(auth.PublishInfo)
	// MinBackoff, MaxBackoff: the retry delay starts at MinBackoff and
	// doubles up to MaxBackoff. StableAfter: a connection that stayed up
	// this long resets the delay. Defaults 1 s, 30 s, 1 min.
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	StableAfter time.Duration
	// ReadTimeout bounds connecting and every wait for media. Default 10 s.
	ReadTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	mu     sync.Mutex
	pulls  map[string]*puller
	closed bool
}

type puller struct {
	m      *Manager
	src    Source
	origin string
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger

	mu sync.Mutex
	st State
}

// Check validates a source without starting it.
func Check(src Source) error {
	if err := stream.ValidateName(src.Name); err != nil {
		return fmt.Errorf("%w: name %q: %w", ErrInvalid, src.Name, err)
	}
	if _, err := protocolOf(src.URL); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch src.RTSPTransport {
	case rtsp.TransportAuto, rtsp.TransportUDP, rtsp.TransportTCP:
	default:
		return fmt.Errorf("%w: rtsp_transport %q: want udp, tcp or empty", ErrInvalid, src.RTSPTransport)
	}
	return nil
}

// protocolOf returns the hub protocol name of a source URL, after
// checking the URL the way its client will.
func protocolOf(raw string) (string, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return "", fmt.Errorf("url %q: want rtsp://, rtmp://, srt:// or http(s):// (HLS)", Redact(raw))
	}
	switch strings.ToLower(scheme) {
	case "rtsp", "rtsps":
		return rtsp.PullProtocol, rtsp.CheckPullURL(raw)
	case "rtmp", "rtmps":
		_, err := rtmp.PullURL(raw)
		return rtmp.PullProtocol, err
	case "srt":
		return srt.PullProtocol, srt.CheckPullURL(raw)
	case "http", "https":
		return HLSProtocol, checkHLSURL(raw)
	default:
		return "", fmt.Errorf("url %q: scheme %q: want rtsp, rtsps, rtmp, rtmps, srt, http or https", Redact(raw), scheme)
	}
}

// Redact masks the password of a URL for logs and the API.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func (m *Manager) defaults() {
	if m.MinBackoff <= 0 {
		m.MinBackoff = DefaultMinBackoff
	}
	if m.MaxBackoff <= 0 {
		m.MaxBackoff = DefaultMaxBackoff
	}
	m.MaxBackoff = max(m.MaxBackoff, m.MinBackoff)
	if m.StableAfter <= 0 {
		m.StableAfter = DefaultStableAfter
	}
	if m.ReadTimeout <= 0 {
		m.ReadTimeout = DefaultReadTimeout
	}
	if m.Policy == nil {
		m.Policy = auth.DefaultPolicy()
	}
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	if m.pulls == nil {
		m.pulls = make(map[string]*puller)
	}
}

// Start starts pulling src; origin is OriginConfig or OriginAPI. It fails
// with ErrInvalid for a bad source, with ErrExists when a pull of that
// name runs, and with ErrClosed after Close.
func (m *Manager) Start(src Source, origin string) (State, error) {
	if err := Check(src); err != nil {
		return State{}, err
	}
	if m.Hub == nil {
		return State{}, errors.New("pull: Hub is required")
	}
	proto, _ := protocolOf(src.URL)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.defaults()
	if m.closed {
		return State{}, ErrClosed
	}
	if _, ok := m.pulls[src.Name]; ok {
		return State{}, fmt.Errorf("%w: %s", ErrExists, src.Name)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	p := &puller{
		m:      m,
		src:    src,
		origin: origin,
		cancel: func() { cancel(errStopped) },
		done:   make(chan struct{}),
		log:    m.Logger.With("pull", src.Name, "url", Redact(src.URL)),
		st: State{
			Name:          src.Name,
			URL:           Redact(src.URL),
			Protocol:      proto,
			RTSPTransport: src.RTSPTransport,
			Origin:        origin,
			State:         PhaseConnecting,
			Since:         time.Now(),
		},
	}
	m.pulls[src.Name] = p
	p.log.Info("pull started", "origin", origin)
	go p.run(ctx)
	return p.state(), nil
}

var errStopped = errors.New("pull stopped")

// Stop stops the pull of name and waits for it to end: its hub session
// ends as after a publisher disconnect (the stream ends after the hub's
// grace period).
func (m *Manager) Stop(name string) error {
	m.mu.Lock()
	p, ok := m.pulls[name]
	if ok {
		delete(m.pulls, name)
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	p.stop()
	return nil
}

func (p *puller) stop() {
	p.cancel()
	<-p.done
	p.set(func(st *State) { st.State, st.NextAttempt = PhaseStopped, nil })
	p.log.Info("pull stopped")
}

// Get returns the state of the pull of name.
func (m *Manager) Get(name string) (State, bool) {
	m.mu.Lock()
	p, ok := m.pulls[name]
	m.mu.Unlock()
	if !ok {
		return State{}, false
	}
	return p.state(), true
}

// List returns the state of every pull, ordered by name.
func (m *Manager) List() []State {
	m.mu.Lock()
	out := make([]State, 0, len(m.pulls))
	for _, p := range m.pulls {
		out = append(out, p.state())
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Close stops every pull and refuses new ones.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	pulls := make([]*puller, 0, len(m.pulls))
	for _, p := range m.pulls {
		pulls = append(pulls, p)
	}
	m.pulls = nil
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pulls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop()
		}()
	}
	wg.Wait()
}

func (p *puller) state() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	if st.NextAttempt != nil {
		t := *st.NextAttempt
		st.NextAttempt = &t
	}
	if st.LastErrorAt != nil {
		t := *st.LastErrorAt
		st.LastErrorAt = &t
	}
	return st
}

func (p *puller) set(fn func(*State)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.st.State
	fn(&p.st)
	if p.st.State != prev {
		p.st.Since = time.Now()
	}
}

// run connects, and reconnects with backoff, until ctx ends.
func (p *puller) run(ctx context.Context) {
	defer close(p.done)
	m := p.m
	delay := m.MinBackoff
	for {
		p.set(func(st *State) { st.State, st.NextAttempt = PhaseConnecting, nil })
		started := time.Now()
		var liveAt time.Time
		err := p.attempt(ctx, func() {
			liveAt = time.Now()
			p.set(func(st *State) { st.State = PhaseLive; st.Connects++ })
			p.log.Info("pull live")
		})
		if ctx.Err() != nil {
			return
		}
		if !liveAt.IsZero() && time.Since(liveAt) >= m.StableAfter {
			delay = m.MinBackoff
			p.set(func(st *State) { st.Failures = 0 })
		}
		if err == nil {
			err = errors.New("source ended")
		}
		now := time.Now()
		next := now.Add(delay)
		p.set(func(st *State) {
			st.State = PhaseBackoff
			st.LastError = err.Error()
			st.LastErrorAt = &now
			st.NextAttempt = &next
			st.Failures++
		})
		p.log.Warn("pull source lost, retrying", "error", err.Error(), "retry_in", delay,
			"connected_for", time.Since(started).Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, m.MaxBackoff)
	}
}

// attempt runs one connection; onLive is called when the hub accepted it.
func (p *puller) attempt(ctx context.Context, onLive func()) error {
	m := p.m
	src := p.src
	proto, _ := protocolOf(src.URL)
	app, err := m.Policy.App(src.Name)
	if err != nil {
		return fmt.Errorf("pull %s: %w", src.Name, err)
	}
	params := app.Params(nil)
	remote := hostOf(src.URL)
	if m.Admit != nil {
		actx, cancel := context.WithTimeout(ctx, m.ReadTimeout)
		params, err = m.Admit(actx, auth.PublishRequest{Name: src.Name, Protocol: proto, RemoteAddr: remote, App: app, Params: params})
		cancel()
		if err != nil {
			return fmt.Errorf("pull %s: %w", src.Name, err)
		}
	}
	onPublish := func(pi auth.PublishInfo) {
		onLive()
		if m.OnPublish != nil {
			m.OnPublish(pi)
		}
	}
	switch proto {
	case rtsp.PullProtocol:
		return rtsp.Pull(ctx, rtsp.PullConfig{URL: src.URL, Transport: src.RTSPTransport, Hub: m.Hub, Name: src.Name,
			App: app, Params: params, OnPublish: onPublish, ReadTimeout: m.ReadTimeout, Logger: m.Logger})
	case rtmp.PullProtocol:
		return rtmp.Pull(ctx, rtmp.PullConfig{URL: src.URL, Hub: m.Hub, Name: src.Name,
			App: app, Params: params, OnPublish: onPublish, ReadTimeout: m.ReadTimeout, Logger: m.Logger})
	case srt.PullProtocol:
		return srt.Pull(ctx, srt.PullConfig{URL: src.URL, Hub: m.Hub, Name: src.Name,
			App: app, Params: params, OnPublish: onPublish, ReadTimeout: m.ReadTimeout, Logger: m.Logger})
	case HLSProtocol:
		return pullHLS(ctx, hlsConfig{url: src.URL, hub: m.Hub, name: src.Name,
			app: app, params: params, onPublish: onPublish, readTimeout: m.ReadTimeout, log: m.Logger})
	}
	return fmt.Errorf("pull %s: unsupported URL", src.Name)
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}
