package cluster

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/pgtest"
	"github.com/mps-dev/mps/test/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.RunShared(func() int {
		return testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/cluster.", "github.com/jackc/pgx")
	}))
}

// waitTimeout bounds every wait: a deadlock detector, not a performance
// threshold. Healthy waits end after a few heartbeats.
const waitTimeout = 15 * time.Second

// testHeartbeat is short so that a killed node dies quickly.
const testHeartbeat = 200 * time.Millisecond

type testNode struct {
	*Cluster
	hub  *stream.Hub
	logs *testutil.LogBuffer
}

// newNode starts a node with its own hub on dsn. address may be empty.
func newNode(t *testing.T, dsn, id, address string) *testNode {
	t.Helper()
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: log})
	t.Cleanup(hub.Close)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := New(ctx, Config{
		DSN: dsn, NodeID: id, Address: address, Roles: []string{"ingest", "playback"},
		Hub: hub, Heartbeat: testHeartbeat, Logger: log,
	})
	if err != nil {
		t.Fatalf("New(%s): %v", id, err)
	}
	t.Cleanup(c.Close)
	return &testNode{Cluster: c, hub: hub, logs: logs}
}

func publish(t *testing.T, h *stream.Hub, name, protocol string) *stream.Publisher {
	t.Helper()
	tr := &stream.Track{Codec: &codecs.H264{SPS: []byte{0x67}, PPS: []byte{0x68}}, ClockRate: 90000}
	p, err := h.Publish(name, []*stream.Track{tr}, stream.PublishOptions{Protocol: protocol, RemoteAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatalf("Publish(%s): %v", name, err)
	}
	return p
}

// eventually polls cond until it holds, failing after waitTimeout.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last state: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamsOf(t *testing.T, c *Cluster) []StreamEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	s, err := c.Streams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func findStream(entries []StreamEntry, name, node string) (StreamEntry, bool) {
	for _, e := range entries {
		if e.Name == name && e.Node == node {
			return e, true
		}
	}
	return StreamEntry{}, false
}
