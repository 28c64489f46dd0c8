package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/pgtest"
)

// Two nodes on one database: a stream published on A is listed by B with
// A's id and address, B locates it on A, and it leaves B's list when it
// ends on A.
func TestStreamRegistry(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	// Both start at once on an empty database: creating the tables must
	// not race.
	var a, b *testNode
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = newNode(t, dsn, "node-a", "http://127.0.0.1:8001") }()
	go func() { defer wg.Done(); b = newNode(t, dsn, "node-b", "http://127.0.0.1:8002/") }()
	wg.Wait()
	if a == nil || b == nil {
		t.FailNow()
	}
	ctx := context.Background()

	pub := publish(t, a.hub, "live/cam1", "rtmp")
	publish(t, b.hub, "live/other", "srt")
	eventually(t, "B to list A's stream", func() (bool, string) {
		all := streamsOf(t, b.Cluster)
		e, ok := findStream(all, "live/cam1", "node-a")
		return ok && e.Protocol == "rtmp", fmt.Sprint(all)
	})
	all := streamsOf(t, b.Cluster)
	e, _ := findStream(all, "live/cam1", "node-a")
	if e.Address != "http://127.0.0.1:8001" || e.Started.IsZero() {
		t.Fatalf("A's stream as B sees it: %+v", e)
	}
	eventually(t, "A to list B's stream", func() (bool, string) {
		all := streamsOf(t, a.Cluster)
		e, ok := findStream(all, "live/other", "node-b")
		return ok && e.Address == "http://127.0.0.1:8002", fmt.Sprint(all)
	})

	got, ok, err := b.Locate(ctx, "live/cam1")
	if err != nil || !ok || got.Node != "node-a" || got.Address != "http://127.0.0.1:8001" {
		t.Fatalf("B.Locate(live/cam1) = %+v, %v, %v", got, ok, err)
	}
	got, ok, err = b.Locate(ctx, "live/other")
	if err != nil || !ok || got.Node != "node-b" {
		t.Fatalf("B.Locate(its own live/other) = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := b.Locate(ctx, "live/nope"); err != nil || ok {
		t.Fatalf("B.Locate(unknown) = %v, %v", ok, err)
	}

	nodes, err := b.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].ID != "node-a" || nodes[1].ID != "node-b" ||
		nodes[0].Self || !nodes[1].Self || !slices.Equal(nodes[0].Roles, []string{"ingest", "playback"}) ||
		nodes[0].Started.IsZero() || nodes[0].Seen.Before(nodes[0].Started) {
		t.Fatalf("B.Nodes() = %+v", nodes)
	}
	eventually(t, "both nodes alive", func() (bool, string) {
		nodes, err := b.Nodes(ctx)
		return err == nil && nodes[0].Alive && nodes[1].Alive, fmt.Sprint(nodes, err)
	})

	pub.Close(nil)
	eventually(t, "A's ended stream to leave B's list", func() (bool, string) {
		all := streamsOf(t, b.Cluster)
		_, ok := findStream(all, "live/cam1", "node-a")
		return !ok, fmt.Sprint(all)
	})
	if _, ok := findStream(streamsOf(t, b.Cluster), "live/other", "node-b"); !ok {
		t.Fatal("B's own stream went missing")
	}
}

// Close deregisters: the node's streams are gone at once and the node is
// listed as not alive (and dead, for the job queue).
func TestCloseDeregisters(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	a := newNode(t, dsn, "node-a", "http://127.0.0.1:8001")
	b := newNode(t, dsn, "node-b", "http://127.0.0.1:8002")
	publish(t, a.hub, "live/cam1", "rtmp")
	eventually(t, "B to list A's stream", func() (bool, string) {
		all := streamsOf(t, b.Cluster)
		_, ok := findStream(all, "live/cam1", "node-a")
		return ok, fmt.Sprint(all)
	})

	a.Close()
	a.Close() // idempotent
	if all := streamsOf(t, b.Cluster); len(all) != 0 {
		t.Fatalf("streams after A closed: %+v", all)
	}
	ctx := context.Background()
	if _, ok, err := b.Locate(ctx, "live/cam1"); ok || err != nil {
		t.Fatalf("B.Locate after A closed = %v, %v", ok, err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "node-a" || nodes[0].Alive {
		t.Fatalf("B.Nodes() after A closed = %+v, %v", nodes, err)
	}
	dead, err := b.DeadNodes(ctx)
	if err != nil || !slices.Equal(dead, []string{"node-a"}) {
		t.Fatalf("B.DeadNodes() = %v, %v", dead, err)
	}
	if !strings.Contains(a.logs.String(), "cluster node left") {
		t.Fatalf("A's log has no leave line:\n%s", a.logs)
	}
}

// A node that stops heartbeating without deregistering (a crash) is dead
// after DeadAfter heartbeats: DeadNodes lists it and its streams leave the
// registry. Publishing after its death does not matter: nothing is written.
func TestKilledNodeDies(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	a := newNode(t, dsn, "node-a", "http://127.0.0.1:8001")
	b := newNode(t, dsn, "node-b", "http://127.0.0.1:8002")
	publish(t, a.hub, "live/cam1", "rtmp")
	eventually(t, "B to list A's stream", func() (bool, string) {
		all := streamsOf(t, b.Cluster)
		_, ok := findStream(all, "live/cam1", "node-a")
		return ok, fmt.Sprint(all)
	})
	ctx := context.Background()
	if dead, err := a.DeadNodes(ctx); err != nil || len(dead) != 0 {
		// A never lists itself, whatever its heartbeat's state.
		t.Fatalf("A.DeadNodes() = %v, %v", dead, err)
	}

	a.Kill()
	eventually(t, "B to see A dead", func() (bool, string) {
		dead, err := b.DeadNodes(ctx)
		return err == nil && slices.Equal(dead, []string{"node-a"}), fmt.Sprint(dead, err)
	})
	if all := streamsOf(t, b.Cluster); len(all) != 0 {
		t.Fatalf("a dead node's streams are still listed: %+v", all)
	}
	if _, ok, err := b.Locate(ctx, "live/cam1"); ok || err != nil {
		t.Fatalf("B.Locate of a dead node's stream = %v, %v", ok, err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].Alive || !nodes[1].Alive {
		t.Fatalf("B.Nodes() = %+v, %v", nodes, err)
	}
	// It died; it did not leave: its rows are as the crash left them.
	var left bool
	var rows int
	conn := connect(t, dsn)
	if err := conn.QueryRow(ctx, `SELECT "left", (SELECT count(*) FROM mps_stream WHERE node_id = 'node-a')
		FROM mps_node WHERE id = 'node-a'`).Scan(&left, &rows); err != nil {
		t.Fatal(err)
	}
	if left || rows != 1 {
		t.Fatalf("killed node's row: left=%v, stream rows=%d", left, rows)
	}

	// It comes back under the same id: alive again, and the streams of its
	// previous run are gone.
	a2 := newNode(t, dsn, "node-a", "http://127.0.0.1:8001")
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM mps_stream WHERE node_id = 'node-a'`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("stream rows of the previous run = %d, %v", rows, err)
	}
	eventually(t, "B to see A alive again", func() (bool, string) {
		dead, err := b.DeadNodes(ctx)
		return err == nil && len(dead) == 0, fmt.Sprint(dead, err)
	})
	publish(t, a2.hub, "live/cam2", "srt")
	eventually(t, "B to list the new A's stream", func() (bool, string) {
		all := streamsOf(t, b.Cluster)
		_, ok := findStream(all, "live/cam2", "node-a")
		return ok, fmt.Sprint(all)
	})
}

// Streams the hub has before New are registered too; a node without a hub
// (worker-only) registers with no streams; the default node id is the
// host name with a random suffix.
func TestExistingStreamsAndWorkerNode(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1})
	t.Cleanup(hub.Close)
	publish(t, hub, "live/early", "whip")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	a, err := New(ctx, Config{DSN: dsn, Hub: hub, Heartbeat: testHeartbeat, Address: "http://127.0.0.1:8001"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w, err := New(ctx, Config{DSN: dsn, NodeID: "worker-1", Roles: []string{"worker"}, Heartbeat: testHeartbeat})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if a.NodeID() == "" || a.NodeID() == w.NodeID() || !strings.Contains(a.NodeID(), "-") {
		t.Fatalf("default node id %q", a.NodeID())
	}
	eventually(t, "the worker to list the early stream", func() (bool, string) {
		all := streamsOf(t, w)
		e, ok := findStream(all, "live/early", a.NodeID())
		return ok && e.Protocol == "whip", fmt.Sprint(all)
	})
	nodes, err := w.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Nodes() = %+v, %v", nodes, err)
	}
}

// An unreachable PostgreSQL is a start-up error naming the host, within
// the connect timeout; so is a bad DSN or configuration.
func TestNewErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	for _, tc := range []struct {
		name, dsn, want string
	}{
		{"refused", "postgres://mps@127.0.0.1:" + strconv.Itoa(port) + "/mps?sslmode=disable", "127.0.0.1:" + strconv.Itoa(port)},
		// A listener that never answers: the connect timeout must end it.
		{"silent", "postgres://mps@" + silentListener(t) + "/mps?sslmode=disable", "127.0.0.1:"},
		{"unknown host", "postgres://mps@db.invalid:5432/mps?sslmode=disable", "db.invalid:5432"},
		{"bad dsn", "postgres://mps@127.0.0.1:notaport/mps", "bad PostgreSQL DSN"},
		{"empty", "", "no PostgreSQL DSN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c, err := New(context.Background(), Config{DSN: tc.dsn, NodeID: "n1"})
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			// connectTimeout plus slack: a hang detector for the stated bound.
			if d := time.Since(start); d > connectTimeout+3*time.Second {
				t.Errorf("New took %s to fail", d)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
			t.Logf("%s", err)
		})
	}
	for _, cfg := range []Config{
		{DSN: "postgres://x@127.0.0.1/x", Address: "127.0.0.1:8080"},
		{DSN: "postgres://x@127.0.0.1/x", Address: "ftp://h/"},
		{DSN: "postgres://x@127.0.0.1/x", NodeID: "has space"},
	} {
		if c, err := New(context.Background(), cfg); err == nil {
			c.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// silentListener accepts TCP connections and never answers.
func silentListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// A node whose row disappeared (pruned while it could not reach the
// database, or wiped) registers again on its next heartbeat, with its
// streams.
func TestHeartbeatRecreatesRow(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	a := newNode(t, dsn, "node-a", "http://127.0.0.1:8001")
	b := newNode(t, dsn, "node-b", "")
	publish(t, a.hub, "live/cam1", "rtmp")
	conn := connect(t, dsn)
	ctx := context.Background()
	eventually(t, "A's stream registered", func() (bool, string) {
		_, ok := findStream(streamsOf(t, b.Cluster), "live/cam1", "node-a")
		return ok, ""
	})
	if _, err := conn.Exec(ctx, `DELETE FROM mps_node WHERE id = 'node-a'`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A to come back with its stream", func() (bool, string) {
		all := streamsOf(t, b.Cluster)
		_, ok := findStream(all, "live/cam1", "node-a")
		return ok, fmt.Sprint(all)
	})
}
