package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/pgtest"
)

// clusterConfig is fastConfig with cluster mode on db, as node id.
func clusterConfig(dsn, id, extra string) string {
	return fastConfig + `
cluster:
  enabled: true
  postgres: "` + dsn + `"
  node_id: ` + id + `
` + extra
}

type apiNode struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Alive   bool   `json:"alive"`
	Self    bool   `json:"self"`
}

func (s *server) nodes(t *testing.T) []apiNode {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/nodes", apiToken)
	var out []apiNode
	if code != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("GET /api/v1/nodes: %d %s", code, b)
	}
	return out
}

// TestTwoNodes runs two mps nodes on one PostgreSQL database: a stream
// published to node A is listed by node B's API with A as its node, a
// player pointed at B plays it (proxied to A), a redirecting node answers
// 302 to A, and A's streams leave B's list when A dies.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	dsn := pg.CreateDB(t)
	a := startServer(t, serverOptions{Config: clusterConfig(dsn, "node-a", "")})
	b := startServer(t, serverOptions{Config: clusterConfig(dsn, "node-b", "")})
	c := startServer(t, serverOptions{Config: clusterConfig(dsn, "node-c", "  playback: redirect\n")})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ffmpegPublish(t, ctx, a.RTMPURL("live/far"), pubOptions{})
	waitForPlaylist(t, a, "live/far", 2)

	// B lists A's stream.
	var far apiStream
	waitFor(t, 15*time.Second, "node B to list live/far", func() bool {
		st, ok := b.stream(t, "live/far")
		far = st
		return ok
	})
	code, body := b.api(t, http.MethodGet, "/api/v1/streams/live/far", apiToken)
	if code != 200 || !strings.Contains(string(body), `"node":"node-a"`) || !strings.Contains(string(body), `"remote":true`) ||
		!strings.Contains(string(body), "http://"+a.HTTPAddr) {
		t.Fatalf("B's view of live/far: %d %s", code, body)
	}
	_ = far

	// A player pointed at B plays the stream, proxied to A.
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-read_intervals", "%+3",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", b.HLSURL("live/far")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == "0" {
		t.Fatalf("ffprobe through node B: %v %s", err, out)
	}
	resp, err := http.Get(b.HLSURL("live/far"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-MPS-Node") != "node-a" {
		t.Errorf("playlist through B: X-MPS-Node %q, want node-a", resp.Header.Get("X-MPS-Node"))
	}

	// C redirects instead.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Get(c.HLSURL("live/far"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != a.HLSURL("live/far") {
		t.Errorf("node C: %d Location %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), a.HLSURL("live/far"))
	}

	// Every node knows the three.
	nodes := b.nodes(t)
	alive := 0
	for _, n := range nodes {
		if n.Alive {
			alive++
		}
	}
	if len(nodes) != 3 || alive != 3 {
		t.Fatalf("nodes %+v, want 3 alive", nodes)
	}

	// A dies: B soon stops listing its stream and sees it dead.
	a.kill()
	waitFor(t, 20*time.Second, "node B to drop node A's stream", func() bool {
		_, ok := b.stream(t, "live/far")
		return !ok
	})
	for _, n := range b.nodes(t) {
		if n.ID == "node-a" && n.Alive {
			t.Errorf("node A still alive: %+v", n)
		}
	}
	code, _ = b.api(t, http.MethodGet, "/metrics", apiToken)
	if code != 200 {
		t.Errorf("metrics: %d", code)
	}
}

// TestClusterBadDatabase: an unreachable PostgreSQL is a clear start-up
// error, not a hang.
func TestClusterBadDatabase(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, err := tryStartServer(t, serverOptions{Config: clusterConfig("postgres://mps@127.0.0.1:9/mps?sslmode=disable", "x", "")})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:9") {
		t.Fatalf("start with an unreachable database: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("start-up took %s to fail", d)
	}
}

// clusterJobsConfig is a cluster node sharing env's job folders.
func clusterJobsConfig(env jobEnv, dsn, id string) string {
	return env.config("") + `
cluster:
  enabled: true
  postgres: "` + dsn + `"
  node_id: ` + id + `
`
}

// TestClusterJobs: two nodes work one queue of 20 jobs, submitted through
// both: each job runs once (one attempt) and both nodes run some; then a
// node is killed in the middle of a job and the other finishes it.
func TestClusterJobs(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	dsn := pg.CreateDB(t)
	env := newJobEnv(t)
	makeClip(t, env.Media+"/clip.mp4", clipOptions{Dur: 2})
	makeClip(t, env.Media+"/long.mp4", clipOptions{Dur: 40, Size: "640x360"})
	a := startServer(t, serverOptions{Config: clusterJobsConfig(env, dsn, "node-a")})
	b := startServer(t, serverOptions{Config: clusterJobsConfig(env, dsn, "node-b")})

	var ids []string
	for i := range 20 {
		s := a
		if i%2 == 1 {
			s = b
		}
		ids = append(ids, s.mustSubmit(t, jobSpec{Input: pathInput("clip.mp4"), Tasks: []jobTask{{Type: "snapshot", Template: "snapshot-cover"}}}).ID)
	}
	ran := map[string]int{}
	for _, id := range ids {
		j := waitJobSucceeded(t, a, id, 3*time.Minute)
		var node struct {
			Node string `json:"node"`
		}
		_, body := b.api(t, http.MethodGet, "/api/v1/jobs/"+id, apiToken)
		_ = json.Unmarshal(body, &node)
		if j.Attempts != 1 || node.Node == "" {
			t.Errorf("job %s: %d attempts on node %q, want one attempt", id, j.Attempts, node.Node)
		}
		ran[node.Node]++
	}
	t.Logf("jobs per node: %v", ran)
	if ran["node-a"] == 0 || ran["node-b"] == 0 {
		t.Errorf("jobs per node %v: want both nodes to work", ran)
	}

	// A long job: wait until a node runs it, kill that node, and the other
	// finishes it.
	long := b.mustSubmit(t, jobSpec{Input: pathInput("long.mp4"), Tasks: []jobTask{
		{Type: "snapshot", Template: "snapshot-cover"},
		{Type: "transcode", Template: "mp4-480p", Params: map[string]any{"video": map[string]any{"preset": "slow"}}},
	}})
	var runner string
	waitFor(t, time.Minute, "a node to start the transcode", func() bool {
		_, body := a.api(t, http.MethodGet, "/api/v1/jobs/"+long.ID, apiToken)
		var j struct {
			Node  string       `json:"node"`
			Tasks []apiJobTask `json:"tasks"`
		}
		if json.Unmarshal(body, &j) != nil || len(j.Tasks) < 2 {
			return false
		}
		runner = j.Node
		return j.Tasks[1].State == "running" && j.Tasks[1].Progress > 0
	})
	victim, survivor := a, b
	if runner == "node-b" {
		victim, survivor = b, a
	}
	victim.kill()
	t.Logf("killed %s in the middle of job %s", runner, long.ID)
	j := waitJobSucceeded(t, survivor, long.ID, 4*time.Minute)
	var after struct {
		Node string `json:"node"`
	}
	_, body := survivor.api(t, http.MethodGet, "/api/v1/jobs/"+long.ID, apiToken)
	_ = json.Unmarshal(body, &after)
	if after.Node == runner || j.Attempts != 2 {
		t.Errorf("job %s after the kill: node %q, %d attempts; want the other node's second attempt", long.ID, after.Node, j.Attempts)
	}
}
