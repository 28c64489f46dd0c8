// Package cluster is MPS's cluster membership and shared live-stream
// registry on PostgreSQL. Each node registers itself (id, the HTTP address
// other nodes reach it at, its roles), heartbeats, and mirrors its hub's
// live streams into a shared table, so any node lists every node's streams
// and knows where each lives. Times of liveness come from the database's
// clock (now()), so the nodes' clocks do not matter.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mps-dev/mps/stream"
)

// DefaultHeartbeat is the heartbeat interval when Config.Heartbeat is zero.
const DefaultHeartbeat = 2 * time.Second

// DeadAfter is the number of heartbeats a node may miss before it is dead.
const DeadAfter = 5

// connectTimeout bounds the first connection: an unreachable PostgreSQL is
// a start-up error, not a hang.
const connectTimeout = 5 * time.Second

// Config configures a Cluster.
type Config struct {
	// DSN is the PostgreSQL connection string (URL or key=value form).
	DSN string
	// NodeID identifies this node; unique in the cluster. Empty means the
	// host name plus a random suffix.
	NodeID string
	// Address is the base URL (http://host:port) other nodes use to reach
	// this node's HTTP listener. Empty means other nodes cannot proxy or
	// redirect to it.
	Address string
	// Roles is informational: ingest, worker, playback.
	Roles []string
	// Hub's live streams are published to the registry. Nil for nodes that
	// serve no live streams (worker-only).
	Hub *stream.Hub
	// Heartbeat is the interval of the node's heartbeat; default 2 s. A node
	// not seen for DeadAfter heartbeats (its own interval) is dead.
	Heartbeat time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Node is a member of the cluster.
type Node struct {
	ID      string    `json:"id"`
	Address string    `json:"address"`
	Roles   []string  `json:"roles"`
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
	// Alive is false once the node left (Close) or missed DeadAfter heartbeats.
	Alive bool `json:"alive"`
	// Self marks the node this Cluster runs as.
	Self bool `json:"self"`
}

// StreamEntry is a live stream and the node serving it.
type StreamEntry struct {
	Name     string    `json:"name"`
	Node     string    `json:"node"`
	Address  string    `json:"address"`
	Protocol string    `json:"protocol"`
	Started  time.Time `json:"started"`
}

// Cluster is this node's membership. It is safe for concurrent use.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	pool *pgxpool.Pool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	nudge  chan struct{}

	mu       sync.Mutex
	watched  map[*stream.Stream]bool // streams whose Ended is watched
	failing  bool                    // the last heartbeat failed (logged once)
	stopOnce sync.Once

	locate     *locateCache
	transports []*http.Transport // of the playback proxies, closed by Close
}

// New connects to PostgreSQL (failing within 5 s with an error naming the
// host when it is unreachable), creates the cluster tables, registers the
// node, and starts heartbeating and mirroring the hub's streams until
// Close. ctx bounds the start-up only.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.DSN == "" {
		return nil, errors.New("cluster: no PostgreSQL DSN")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NodeID == "" {
		cfg.NodeID = defaultNodeID()
	}
	if err := validNodeID(cfg.NodeID); err != nil {
		return nil, err
	}
	if cfg.Address != "" {
		addr, err := validAddress(cfg.Address)
		if err != nil {
			return nil, err
		}
		cfg.Address = addr
	}
	cfg.Roles = append([]string{}, cfg.Roles...)

	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("cluster: bad PostgreSQL DSN: %w", err)
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 || pcfg.ConnConfig.ConnectTimeout > connectTimeout {
		pcfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if pcfg.MaxConns > 8 {
		pcfg.MaxConns = 8
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = "mps-cluster " + cfg.NodeID
	where := hostPort(pcfg.ConnConfig.Host, pcfg.ConnConfig.Port)

	cctx, ccancel := context.WithTimeout(ctx, connectTimeout)
	defer ccancel()
	pool, err := pgxpool.NewWithConfig(cctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("cluster: postgresql at %s: %w", where, err)
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: postgresql at %s unreachable: %w", where, err)
	}
	if err := migrate(cctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: create tables in postgresql at %s: %w", where, err)
	}

	c := &Cluster{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.NodeID),
		pool:    pool,
		nudge:   make(chan struct{}, 1),
		watched: make(map[*stream.Stream]bool),
	}
	c.locate = newLocateCache(min(cfg.Heartbeat, time.Second))
	if err := c.register(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cluster: register node %s in postgresql at %s: %w", cfg.NodeID, where, err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Hub != nil {
		cfg.Hub.OnStreamCreated(c.streamCreated)
	}
	c.wg.Add(1)
	go c.run()
	c.log.Info("cluster node registered", "address", cfg.Address, "roles", cfg.Roles,
		"heartbeat", cfg.Heartbeat, "postgres", where)
	return c, nil
}

// NodeID returns this node's id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Address returns this node's address as other nodes see it.
func (c *Cluster) Address() string { return c.cfg.Address }

// Heartbeat returns the heartbeat interval.
func (c *Cluster) Heartbeat() time.Duration { return c.cfg.Heartbeat }

// Close stops heartbeating and deregisters the node: its streams are
// removed and the node is marked gone. It is safe to call more than once.
func (c *Cluster) Close() {
	c.stop(true)
}

// Kill stops the node the way a crash would: it stops heartbeating and
// closes its connections without deregistering, so other nodes see it die
// after DeadAfter heartbeats. For tests.
func (c *Cluster) Kill() {
	c.stop(false)
}

func (c *Cluster) stop(deregister bool) {
	c.stopOnce.Do(func() {
		// Under mu, so that watch never adds to wg once Wait may have begun.
		c.mu.Lock()
		c.cancel()
		c.mu.Unlock()
		c.wg.Wait()
		if deregister {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.deregister(ctx); err != nil {
				c.log.Warn("cluster deregister failed; other nodes will see this node die", "error", err)
			} else {
				c.log.Info("cluster node left")
			}
		}
		c.pool.Close()
		c.mu.Lock()
		for _, t := range c.transports {
			t.CloseIdleConnections()
		}
		c.mu.Unlock()
	})
}

// run heartbeats every interval and syncs the stream registry at once when
// a stream starts or ends.
func (c *Cluster) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	c.beat()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.nudge:
			// A stream was just created: its session (the protocol) is set
			// right after the hub's observers return. Let that happen, and
			// let a burst of starts coalesce into one sync.
			select {
			case <-c.ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		c.beat()
	}
}

// beat writes the heartbeat and this node's current streams.
func (c *Cluster) beat() {
	ctx, cancel := context.WithTimeout(c.ctx, max(c.cfg.Heartbeat, 2*time.Second))
	defer cancel()
	err := c.heartbeat(ctx, c.localStreams())
	if c.ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	was := c.failing
	c.failing = err != nil
	c.mu.Unlock()
	switch {
	case err != nil && !was:
		c.log.Warn("cluster heartbeat failed", "error", err)
	case err != nil:
		c.log.Debug("cluster heartbeat failed", "error", err)
	case was:
		c.log.Info("cluster heartbeat recovered")
	}
}

// localStreams lists the hub's streams and watches each one's end.
func (c *Cluster) localStreams() []localStream {
	if c.cfg.Hub == nil {
		return nil
	}
	streams := c.cfg.Hub.Streams()
	out := make([]localStream, 0, len(streams))
	for _, s := range streams {
		if s.State() == stream.StateEnded {
			continue
		}
		ls := localStream{name: s.Name(), started: time.Now()}
		if sess := s.Session(); sess != nil {
			ls.protocol, ls.started = sess.Protocol, sess.Started
		}
		out = append(out, ls)
		c.watch(s)
	}
	return out
}

func (c *Cluster) streamCreated(s *stream.Stream) {
	if c.ctx.Err() != nil {
		return
	}
	c.watch(s)
	c.poke()
}

// watch pokes the registry when s ends, once per stream.
func (c *Cluster) watch(s *stream.Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watched[s] || c.ctx.Err() != nil {
		return
	}
	c.watched[s] = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		select {
		case <-s.Ended():
			c.poke()
		case <-c.ctx.Done():
		}
		c.mu.Lock()
		delete(c.watched, s)
		c.mu.Unlock()
	}()
}

func (c *Cluster) poke() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

func defaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "mps"
	}
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '-'
	}, host)
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

func validNodeID(id string) error {
	if len(id) > 200 {
		return fmt.Errorf("cluster: node id %q is longer than 200 bytes", id)
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("cluster: node id %q must be printable ASCII without spaces", id)
		}
	}
	return nil
}

func validAddress(addr string) (string, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("cluster: node address %q: %w", addr, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("cluster: node address %q must be a base URL like http://host:port", addr)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

func hostPort(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return host // a unix socket folder
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
