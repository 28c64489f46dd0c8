package vod

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/cluster"
	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/test/pgtest"
)

// Cluster tests: engines on one real PostgreSQL database.

// taskHold is a test task type: it records its run and, on the node that
// is to be killed, blocks until the node dies.
const taskHold = "hold"

// runLog records task runs in a file shared by the test and its node
// processes: one line "node job task" per run.
type runLog struct {
	path string
	mu   sync.Mutex
}

func (l *runLog) add(t testing.TB, node, job, task string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(l.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s %s %s\n", node, job, task); err != nil {
		t.Error(err)
	}
}

// runs counts the runs by "job task" and by node.
func (l *runLog) runs(t testing.TB) (byTask map[string]int, byNode map[string]int) {
	t.Helper()
	byTask, byNode = map[string]int{}, map[string]int{}
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return byTask, byNode
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("run log line %q", sc.Text())
		}
		byTask[fields[1]+" "+fields[2]]++
		byNode[fields[0]]++
	}
	return byTask, byNode
}

// jobOf is the id of the job a task runs for (jobs without an output
// name write below their id).
func jobOf(env Env) string { return filepath.Base(filepath.Dir(env.OutDir)) }

// counted wraps a runner so that each run is logged.
func counted(t testing.TB, l *runLog, node, task string, r Runner) Runner {
	return RunnerFunc(func(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
		l.add(t, node, jobOf(env), task)
		return r.Run(ctx, env, in, params)
	})
}

// clusterRoot is a folder shared by the nodes of a test, as a shared
// volume would be: media/ with a 1 s clip, jobs/, and the run log.
func clusterRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	media := filepath.Join(root, "media")
	if err := os.MkdirAll(media, 0o755); err != nil {
		t.Fatal(err)
	}
	makeInput(t, media, 1)
	return root
}

func clusterConfig(dsn, root, node string, runners map[string]Runner) Config {
	return Config{
		Postgres: dsn,
		NodeID:   node,
		Dir:      filepath.Join(root, "jobs"),
		Inputs:   &Inputs{MediaRoots: []string{filepath.Join(root, "media")}},
		Runners:  runners,
		Logger:   slog.New(slog.DiscardHandler),
	}
}

func waitJob(t *testing.T, e *Engine, id string, d time.Duration, states ...string) *Job {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		j, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range states {
			if j.State == s {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s (%s) after %s, want %v", id, j.State, j.Error, d, states)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterTwoNodesShareOneQueue submits 20 jobs through two nodes on
// one database: each runs exactly once, all succeed, both nodes work.
func TestClusterTwoNodesShareOneQueue(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	root := clusterRoot(t)
	l := &runLog{path: filepath.Join(root, "runs.log")}
	ctx := context.Background()
	var nodes []*Engine
	for _, id := range []string{"a", "b"} {
		e, err := NewEngine(ctx, clusterConfig(dsn, root, id, map[string]Runner{TaskTranscode: counted(t, l, id, TaskTranscode, remux)}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		nodes = append(nodes, e)
	}
	// A real-time copy of the 1 s clip: each job keeps its node busy for
	// a second, so one node cannot drain the queue alone.
	var ids []string
	for i := range 20 {
		j, created, err := nodes[i%2].Submit(ctx, JobSpec{
			Input:     JobInput{Path: "in.mp4"},
			Tasks:     []TaskSpec{{Type: TaskTranscode, Params: json.RawMessage(`{"realtime": true}`)}},
			SessionID: fmt.Sprintf("share-%d", i),
		})
		if err != nil || !created {
			t.Fatalf("submit %d: %v %v", i, created, err)
		}
		ids = append(ids, j.ID)
	}
	// The same session id through the other node returns the same job.
	if j, created, err := nodes[1].Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode}}, SessionID: "share-0"}); err != nil || created || j.ID != ids[0] {
		t.Fatalf("resubmit through node b: %+v %v %v", j, created, err)
	}
	for i, id := range ids {
		done := waitJob(t, nodes[(i+1)%2], id, 2*time.Minute, StateSucceeded, StateFailed, StateCancelled)
		if done.State != StateSucceeded || done.Attempts != 1 {
			t.Fatalf("job %s: %s after %d attempts: %s", id, done.State, done.Attempts, done.Error)
		}
		if out := done.Tasks[0].Outputs; len(out) != 1 || out[0].Size == 0 {
			t.Fatalf("job %s outputs: %+v", id, out)
		}
	}
	byTask, byNode := l.runs(t)
	for _, id := range ids {
		if n := byTask[id+" "+TaskTranscode]; n != 1 {
			t.Errorf("job %s ran %d times, want once", id, n)
		}
	}
	if len(byTask) != len(ids) {
		t.Errorf("%d jobs ran, want %d", len(byTask), len(ids))
	}
	if byNode["a"] == 0 || byNode["b"] == 0 {
		t.Errorf("runs by node %v: want both nodes to work", byNode)
	}
	t.Logf("runs by node: %v", byNode)
	// Nothing left owned, queued or running.
	list, total, err := nodes[0].List(ctx, StateSucceeded, 0, 100)
	if err != nil || total != len(ids) || len(list) != len(ids) {
		t.Fatalf("list: %d of %d, %v", len(list), total, err)
	}
	var owned int
	if err := nodes[0].db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mps_job WHERE owner <> ''`).Scan(&owned); err != nil || owned != 0 {
		t.Fatalf("rows still owned: %d %v", owned, err)
	}
}

// Environment of the node process of TestClusterKilledNodeJobFinishes.
const (
	envNodeDSN  = "MPS_VOD_TEST_NODE_DSN"
	envNodeRoot = "MPS_VOD_TEST_NODE_ROOT"
)

// TestClusterNodeProcess is node "a" of TestClusterKilledNodeJobFinishes,
// run in a child process that the test kills with SIGKILL: it submits a
// job (a copy, then a hold task) and blocks in the hold task. Without
// the environment it does nothing.
func TestClusterNodeProcess(t *testing.T) {
	dsn, root := os.Getenv(envNodeDSN), os.Getenv(envNodeRoot)
	if dsn == "" || root == "" {
		return
	}
	l := &runLog{path: filepath.Join(root, "runs.log")}
	hold := RunnerFunc(func(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
		if err := os.WriteFile(filepath.Join(root, "holding-"+jobOf(env)), nil, 0o644); err != nil {
			return nil, err
		}
		<-ctx.Done() // until the node is killed
		return nil, ctx.Err()
	})
	c, err := cluster.New(context.Background(), cluster.Config{DSN: dsn, NodeID: "a", Heartbeat: memberHeartbeat, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := clusterConfig(dsn, root, "a", map[string]Runner{
		TaskTranscode: counted(t, l, "a", TaskTranscode, remux),
		taskHold:      counted(t, l, "a", taskHold, hold),
	})
	cfg.DeadNodes = c.DeadNodes
	e, err := NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := e.Submit(context.Background(), JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode}, {Type: taskHold}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "job"), []byte(j.ID), 0o644); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}

// memberHeartbeat is the cluster heartbeat of the killed-node test's
// nodes: a node is dead after cluster.DeadAfter of them.
const memberHeartbeat = 250 * time.Millisecond

// killNodeMidJob runs node "a" in a child process (TestClusterNodeProcess)
// until it holds in the second task of its job, kills it with SIGKILL (no
// River completion, no job row written) and returns the job's id.
func killNodeMidJob(t *testing.T, dsn, root string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterNodeProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envNodeDSN+"="+dsn, envNodeRoot+"="+root)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if b, err := os.ReadFile(filepath.Join(root, "job")); err == nil {
			if _, err := os.Stat(filepath.Join(root, "holding-"+string(b))); err == nil {
				return string(b)
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("node a exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node a did not reach its hold task\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterKilledNodeJobFinishes kills node "a" (a process) in the
// middle of a job, after its first task: node "b", whose cluster
// membership soon reports "a" dead, queues the job again and finishes it
// without running the first task again. Then the same with "a" started
// again at once, before it counts as dead: it takes its job back itself.
func TestClusterKilledNodeJobFinishes(t *testing.T) {
	srv := pgtest.Start(t)
	for _, tc := range []struct {
		name, finisher string
	}{
		{"other node", "b"},
		{"same node restarts", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := srv.CreateDB(t)
			root := clusterRoot(t)
			l := &runLog{path: filepath.Join(root, "runs.log")}
			id := killNodeMidJob(t, dsn, root)

			c, err := cluster.New(context.Background(), cluster.Config{DSN: dsn, NodeID: tc.finisher, Heartbeat: memberHeartbeat, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			hold := RunnerFunc(func(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
				return []Output{}, nil
			})
			cfg := clusterConfig(dsn, root, tc.finisher, map[string]Runner{
				TaskTranscode: counted(t, l, tc.finisher, TaskTranscode, remux),
				taskHold:      counted(t, l, tc.finisher, taskHold, hold),
			})
			cfg.DeadNodes = c.DeadNodes
			before, err := startEngineJob(t, cfg, id)
			if err != nil {
				t.Fatal(err)
			}
			e := before.e
			if tc.finisher == "b" && (before.job.State != StateRunning || before.job.Tasks[0].State != StateSucceeded || before.job.Tasks[1].State != StateRunning) {
				t.Fatalf("job when node a died: %s, tasks %s %s", before.job.State, before.job.Tasks[0].State, before.job.Tasks[1].State)
			}
			done := waitJob(t, e, id, time.Minute, StateSucceeded, StateFailed, StateCancelled)
			if done.State != StateSucceeded || done.Attempts != 2 {
				t.Fatalf("job: %s after %d attempts: %s", done.State, done.Attempts, done.Error)
			}
			if done.Tasks[0].Outputs[0].Size == 0 {
				t.Fatalf("first task's outputs: %+v", done.Tasks[0].Outputs)
			}
			byTask, byNode := l.runs(t)
			if n := byTask[id+" "+TaskTranscode]; n != 1 {
				t.Errorf("the first task ran %d times, want once (it had succeeded on a)", n)
			}
			if n := byTask[id+" "+taskHold]; n != 2 {
				t.Errorf("the hold task ran %d times, want twice (a, killed, then %s)", n, tc.finisher)
			}
			if tc.finisher == "b" && (byNode["a"] != 2 || byNode["b"] != 1) {
				t.Errorf("runs by node: %v, want a:2 b:1", byNode)
			}
			var attemptedBy []string
			if err := e.pool.QueryRow(context.Background(), `SELECT attempted_by FROM river_job WHERE args->>'job_id' = $1`, id).Scan(&attemptedBy); err != nil ||
				strings.Join(attemptedBy, ",") != "a,"+tc.finisher {
				t.Fatalf("attempted_by %v %v, want a,%s", attemptedBy, err, tc.finisher)
			}
		})
	}
}

// engineJob is an engine and a job as it was when the engine started.
type engineJob struct {
	e   *Engine
	job *Job
}

// startEngineJob reads job id from cfg's database, then starts an engine
// on it (closed when the test ends).
func startEngineJob(t *testing.T, cfg Config, id string) (engineJob, error) {
	t.Helper()
	pool, db, err := openPostgres(context.Background(), cfg.Postgres)
	if err != nil {
		return engineJob{}, err
	}
	j, err := loadJob(context.Background(), dbx{d: dialectPostgres, ex: db}, id)
	_ = db.Close()
	pool.Close()
	if err != nil {
		return engineJob{}, err
	}
	e, err := NewEngine(context.Background(), cfg)
	if err != nil {
		return engineJob{}, err
	}
	t.Cleanup(e.Close)
	return engineJob{e: e, job: j}, nil
}

// TestClusterNodeStopHandsJobBack closes a node in the middle of a job:
// the job goes back to the queue without using up an attempt, and the
// other node finishes it.
func TestClusterNodeStopHandsJobBack(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	root := clusterRoot(t)
	l := &runLog{path: filepath.Join(root, "runs.log")}
	ctx := context.Background()
	holding := make(chan struct{}, 1)
	hold := RunnerFunc(func(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
		holding <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	a, err := NewEngine(ctx, clusterConfig(dsn, root, "a", map[string]Runner{
		TaskTranscode: counted(t, l, "a", TaskTranscode, remux),
		taskHold:      counted(t, l, "a", taskHold, hold),
	}))
	if err != nil {
		t.Fatal(err)
	}
	j, _, err := a.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: TaskTranscode}, {Type: taskHold}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-holding:
	case <-time.After(time.Minute):
		t.Fatal("node a did not reach its hold task")
	}
	a.Close()
	b, err := NewEngine(ctx, clusterConfig(dsn, root, "b", map[string]Runner{
		TaskTranscode: counted(t, l, "b", TaskTranscode, remux),
		taskHold:      counted(t, l, "b", taskHold, RunnerFunc(func(context.Context, Env, Media, json.RawMessage) ([]Output, error) { return []Output{}, nil })),
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	done := waitJob(t, b, j.ID, time.Minute, StateSucceeded, StateFailed, StateCancelled)
	if done.State != StateSucceeded {
		t.Fatalf("job: %s: %s", done.State, done.Error)
	}
	if byTask, _ := l.runs(t); byTask[j.ID+" "+TaskTranscode] != 1 || byTask[j.ID+" "+taskHold] != 2 {
		t.Fatalf("runs: %v", byTask)
	}
	var attempt, errs int
	if err := b.pool.QueryRow(ctx, `SELECT attempt, coalesce(array_length(errors, 1), 0) FROM river_job WHERE args->>'job_id' = $1`, j.ID).Scan(&attempt, &errs); err != nil || errs != 0 {
		t.Fatalf("river row: attempt %d, %d errors, %v: want no error recorded", attempt, errs, err)
	}
}

// TestClusterCancelOnAnotherNode cancels, through node b, a job that
// node a runs: a stops it.
func TestClusterCancelOnAnotherNode(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	root := clusterRoot(t)
	ctx := context.Background()
	stopped := make(chan error, 1)
	holding := make(chan struct{}, 1)
	hold := RunnerFunc(func(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
		holding <- struct{}{}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	a, err := NewEngine(ctx, clusterConfig(dsn, root, "a", map[string]Runner{taskHold: hold}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	j, _, err := a.Submit(ctx, JobSpec{Input: JobInput{Path: "in.mp4"}, Tasks: []TaskSpec{{Type: taskHold}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-holding:
	case <-time.After(time.Minute):
		t.Fatal("node a did not start the job")
	}
	// Node b takes no jobs of this type; it only serves the API.
	b, err := NewEngine(ctx, clusterConfig(dsn, root, "b", map[string]Runner{taskHold: hold}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if _, err := b.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-stopped:
		if !errors.Is(cause, ErrCancelled) {
			t.Fatalf("stopped by %v, want a cancel", cause)
		}
	case <-time.After(time.Minute):
		t.Fatal("node a did not stop the cancelled job")
	}
	if done := waitJob(t, a, j.ID, time.Minute, StateCancelled, StateSucceeded, StateFailed); done.State != StateCancelled {
		t.Fatalf("job: %s", done.State)
	}
}

// TestClusterOutboxOneNodePerURL delivers events queued on two nodes of
// one database to one receiver: each once, in order.
func TestClusterOutboxOneNodePerURL(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	ctx := context.Background()
	var mu sync.Mutex
	var got []int
	var concurrent, maxConcurrent atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := concurrent.Add(1)
		defer concurrent.Add(-1)
		if n > maxConcurrent.Load() {
			maxConcurrent.Store(n)
		}
		var body WebhookBody
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		got = append(got, int(body.Data["n"].(float64)))
		mu.Unlock()
	}))
	defer srv.Close()
	var outboxes []*Outbox
	for _, node := range []string{"a", "b"} {
		pool, db, err := openPostgres(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		x := dbx{d: dialectPostgres, ex: db}
		if err := createTables(ctx, x); err != nil {
			t.Fatal(err)
		}
		o := newOutbox(x, node, OutboxConfig{PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		t.Cleanup(func() {
			o.Close()
			_ = db.Close()
			pool.Close()
		})
		outboxes = append(outboxes, o)
	}
	const n = 40
	for i := range n {
		if _, err := outboxes[0].Enqueue(ctx, srv.URL, "", events.Event{Type: "test.event", Data: map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range outboxes {
		o.Start(ctx)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := outboxes[1].Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries pending", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("%d deliveries, want %d: %v", len(got), n, got)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("delivery %d is event %d: %v", i, v, got)
		}
	}
	if m := maxConcurrent.Load(); m != 1 {
		t.Fatalf("%d requests at once to one URL, want 1", m)
	}
}

// TestClusterUnreachablePostgres fails NewEngine with an error naming the
// server, for a closed port and for a server that never answers.
func TestClusterUnreachablePostgres(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var conns sync.WaitGroup
	conns.Add(1)
	go func() {
		defer conns.Done()
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accepted, never answered
		}
	}()
	defer conns.Wait()
	defer silent.Close()
	for _, addr := range []string{closedAddr, silent.Addr().String()} {
		start := time.Now()
		e, err := NewEngine(context.Background(), Config{
			Postgres: "postgres://mps@" + addr + "/mps?sslmode=disable",
			Dir:      t.TempDir(),
			Runners:  map[string]Runner{TaskTranscode: remux},
			Logger:   slog.New(slog.DiscardHandler),
		})
		took := time.Since(start)
		if err == nil {
			e.Close()
			t.Fatalf("%s: no error", addr)
		}
		want := "postgres " + addr + " unreachable"
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q, want it to say %q", addr, err, want)
		}
		// A hang detector, well above the 5 s bound.
		if took > 20*time.Second {
			t.Fatalf("%s: failed after %s", addr, took)
		}
		t.Logf("%s: %v (after %s)", addr, err, took.Round(time.Millisecond))
	}
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`SELECT '?' , "x?" FROM t WHERE b = ?`, `SELECT '?' , "x?" FROM t WHERE b = $1`},
		{`VALUES (?, 'it''s ?', ?)`, `VALUES ($1, 'it''s ?', $2)`},
	} {
		if got := dialectPostgres.rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := dialectSQLite.rebind(tc.in); got != tc.in {
			t.Errorf("sqlite rebind(%q) = %q", tc.in, got)
		}
	}
	if got := dialectPostgres.ddl("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL);\nCREATE INDEX i ON t (n);\n"); len(got) != 2 ||
		got[0] != "CREATE TABLE t (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, n BIGINT NOT NULL)" {
		t.Fatalf("ddl: %q", got)
	}
}

// FuzzRebind checks that rebind keeps the query and replaces each ? by
// either itself (in quotes) or the next $n, and every ? when there are no
// quotes.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{"", "?", "a = ? AND b = '?'", `"?" ? '' ?`, "'unterminated ?", "$1 ?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := dialectPostgres.rebind(q)
		parts := strings.Split(q, "?")
		rest, n := got, 0
		for i, part := range parts {
			var ok bool
			if rest, ok = strings.CutPrefix(rest, part); !ok {
				t.Fatalf("rebind(%q) = %q: text changed", q, got)
			}
			if i == len(parts)-1 {
				break
			}
			if r, ok := strings.CutPrefix(rest, fmt.Sprintf("$%d", n+1)); ok {
				rest, n = r, n+1
			} else if r, ok := strings.CutPrefix(rest, "?"); ok && strings.ContainsAny(q, `'"`) {
				rest = r
			} else {
				t.Fatalf("rebind(%q) = %q: placeholder %d", q, got, i+1)
			}
		}
		if rest != "" {
			t.Fatalf("rebind(%q) = %q: extra %q", q, got, rest)
		}
	})
}

// TestClusterTablesAndWorkflows runs MPS's own tables on PostgreSQL:
// templates, workflows and a job's webhook, and a folder that two nodes
// watch gives one job per file.
func TestClusterTablesAndWorkflows(t *testing.T) {
	dsn := pgtest.Start(t).CreateDB(t)
	root := clusterRoot(t)
	ctx := context.Background()
	var hooks atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderEventType) == EventJobFinished {
			hooks.Add(1)
		}
	}))
	defer hook.Close()
	var nodes []*Engine
	for _, id := range []string{"a", "b"} {
		cfg := clusterConfig(dsn, root, id, map[string]Runner{TaskTranscode: remux})
		cfg.Presets = map[string]map[string]json.RawMessage{TaskTranscode: {"copy": json.RawMessage(`{"realtime": false}`)}}
		e, err := NewEngine(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		nodes = append(nodes, e)
	}
	a, b := nodes[0], nodes[1]

	tpl := Template{Type: TaskTranscode, Name: "mine", Params: json.RawMessage(`{"realtime": false}`)}
	if created, err := a.Templates().Put(ctx, tpl); err != nil || !created {
		t.Fatalf("template put: %v %v", created, err)
	}
	if created, err := b.Templates().Put(ctx, tpl); err != nil || created {
		t.Fatalf("template replace on b: %v %v", created, err)
	}
	if list, err := b.Templates().List(ctx, TaskTranscode); err != nil || len(list) != 2 || list[1].Name != "mine" {
		t.Fatalf("templates on b: %+v %v", list, err)
	}

	wf := Workflow{Name: "drop", On: OnFile, Folder: "drop", Tasks: []TaskSpec{{Type: TaskTranscode, Template: "mine"}},
		Notify: &Notify{URL: hook.URL}}
	if created, err := a.Workflows().Put(ctx, wf); err != nil || !created {
		t.Fatalf("workflow put: %v %v", created, err)
	}
	if got, err := b.Workflows().Get(ctx, "drop"); err != nil || got.Folder != "drop" {
		t.Fatalf("workflow on b: %+v %v", got, err)
	}
	src, err := os.ReadFile(filepath.Join(root, "media", "in.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "media", "drop", "clip.mp4"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	// Both nodes see the file (twice each: its size must hold still).
	for range 3 {
		a.Workflows().scan(ctx)
		b.Workflows().scan(ctx)
	}
	jobs, total, err := b.List(ctx, "", 0, 10)
	if err != nil || total != 1 {
		t.Fatalf("want 1 job from the watched folder, got %d: %v", total, err)
	}
	if done := waitJob(t, a, jobs[0].ID, time.Minute, StateSucceeded, StateFailed); done.State != StateSucceeded {
		t.Fatalf("watched-folder job: %+v", done)
	}
	deadline := time.Now().Add(time.Minute)
	for hooks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no job.finished webhook")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Workflows().Delete(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if err := a.Templates().Delete(ctx, TaskTranscode, "mine"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Templates().Get(ctx, TaskTranscode, "mine"); !errors.Is(err, ErrNoTemplate) {
		t.Fatalf("template after delete: %v", err)
	}
	if n := hooks.Load(); n != 1 {
		t.Fatalf("%d job.finished webhooks, want 1", n)
	}
}
