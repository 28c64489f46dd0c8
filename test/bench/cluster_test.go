//go:build bench

package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/pgtest"
	"github.com/mps-dev/mps/test/testutil"
	"github.com/mps-dev/mps/vod"
)

// BenchmarkClusterJobs measures the job throughput of small jobs, where
// the queue's overhead weighs most, on one node against two nodes on the
// same machine (issue 8), each node with jobs.workers 1:
//
//   - sqlite: one node without cluster mode (the embedded SQLite queue),
//     the baseline of the single-machine experience;
//   - cluster-1: one node in cluster mode on a fresh PostgreSQL database
//     (pgtest: a private server started by the benchmark);
//   - cluster-2: two nodes in cluster mode on another fresh database,
//     sharing one jobs folder and one media root.
//
// Each phase starts its nodes, runs one warm-up job through each node's
// API (not counted), then submits MPS_BENCH_CLUSTER_JOBS (default 40)
// jobs at once from as many goroutines (in cluster-2 alternately to node
// A and node B) and polls GET /api/v1/jobs?limit=… on the first node
// every 50 ms until all have finished. Each job is one snapshot task with
// the built-in snapshot-cover template on a 1 s 320x240 clip. Measured:
// the wall time from the first POST to the poll that sees the last job
// finished (jobs/s = N ÷ that), the server's own first created_at → last
// finished_at, submit → start, the job run time, the pickup gap (per node,
// replaying its one worker: how long a job that could run waited for the
// free worker to take it), the CPU of every node's process tree
// (mps + ffmpeg/ffprobe children) and of PostgreSQL's, and in cluster-2
// which node ran each job ("node" of GET /api/v1/jobs/{id}) against which
// node it was submitted to.
//
// A fourth phase, cluster-1x2w (one cluster node with jobs.workers 2),
// is a reference: the same two workers in one process, which separates
// what a second process brings from what a second worker brings.
//
// The headlines are the ratios of jobs/s: cluster-2 ÷ cluster-1 and
// cluster-1 ÷ sqlite. Nothing asserts them: the machine is shared. The
// benchmark fails only on correctness: a job that did not succeed, took
// other than one attempt, has no image, or (in cluster mode) no node.
// MPS_BENCH_CLUSTER_ROUNDS (default 1) repeats the three phases, the
// order reversed every other round.
func BenchmarkClusterJobs(b *testing.B) {
	testutil.RequireTools(b, "ffmpeg", "ffprobe")
	n := envInts(b, "MPS_BENCH_CLUSTER_JOBS", []int{40})[0]
	rounds := envInts(b, "MPS_BENCH_CLUSTER_ROUNDS", []int{1})[0]
	fmt.Printf("machine: %s\n", machine())

	pg := pgtest.Start(b)
	pgPID := postmasterPID(b, pg)
	root := b.TempDir()
	mediaDir := filepath.Join(root, "media")
	if err := os.MkdirAll(mediaDir, 0o755); err != nil {
		b.Fatal(err)
	}
	in := makeJobInput(b, mediaDir, "cluster-src.mp4", time.Second, 320, 240, 300_000)
	fmt.Printf("job input: %s\n", in.desc)
	task := vod.TaskSpec{Type: vod.TaskSnapshot, Template: "snapshot-cover"}

	type phaseDef struct {
		name           string
		nodes, workers int
		pg             bool
	}
	defs := []phaseDef{{"sqlite", 1, 1, false}, {"cluster-1", 1, 1, true}, {"cluster-2", 2, 1, true}, {"cluster-1x2w", 1, 2, true}}
	results := map[string][]*clusterRun{}
	var order []string
	for r := range rounds {
		ds := slices.Clone(defs)
		if r%2 == 1 {
			slices.Reverse(ds)
		}
		for _, d := range ds {
			dsn := ""
			if d.pg {
				dsn = pg.CreateDB(b)
			}
			run := runClusterPhase(b, d.name, fmt.Sprintf("%s-r%d", d.name, r+1), root, mediaDir, dsn, d.nodes, d.workers, n, in, task, pgPID)
			results[d.name] = append(results[d.name], run)
			order = append(order, run.label)
			fmt.Printf("round %d %s: %s\n", r+1, d.name, run)
		}
	}

	rate := func(name string) float64 {
		var xs []float64
		for _, r := range results[name] {
			xs = append(xs, r.rate())
		}
		return mean(xs)
	}
	lines := []string{
		"input: " + in.desc,
		fmt.Sprintf("job: one snapshot task, template snapshot-cover; %d jobs submitted at once from %d goroutines per phase; jobs.workers 1 on every node; one warm-up job per node before (not counted)", n, n),
		"phases run: " + strings.Join(order, ", "),
	}
	for _, d := range defs {
		for i, r := range results[d.name] {
			lines = append(lines, r.lines(i+1)...)
		}
	}
	r0, r1, r2, r1w2 := rate("sqlite"), rate("cluster-1"), rate("cluster-2"), rate("cluster-1x2w")
	lines = append(lines,
		fmt.Sprintf("jobs/s (mean over %d round(s)): sqlite %.2f, cluster 1 node %.2f, cluster 2 nodes %.2f; reference: cluster 1 node with 2 workers %.2f",
			rounds, r0, r1, r2, r1w2),
		fmt.Sprintf("ratio cluster 2 nodes / 1 node: x%.2f; cluster 1 node / sqlite: x%.2f; 2 nodes x 1 worker / 1 node x 2 workers: x%.2f",
			r2/r1, r1/r0, r2/r1w2),
	)
	report(fmt.Sprintf("BenchmarkClusterJobs (%d small jobs: sqlite, 1 cluster node, 2 cluster nodes)", n), lines...)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r0, "sqlite-jobs/s")
	b.ReportMetric(r1, "pg1-jobs/s")
	b.ReportMetric(r2, "pg2-jobs/s")
	b.ReportMetric(r2/r1, "x-2-nodes")
	b.ReportMetric(r1/r0, "x-pg-sqlite")
	b.ReportMetric(r1w2, "pg1x2w-jobs/s")
}

// clusterRun is one phase: a burst of jobs through one or two nodes.
type clusterRun struct {
	phase, label string
	n, nodes     int
	workers      int // per node
	image        string
	warmup       []time.Duration // submit -> seen succeeded, per node
	total        time.Duration   // first POST -> poll that saw the last finished
	serverSpan   time.Duration   // first created_at -> last finished_at
	createdSpan  time.Duration   // first -> last created_at
	post         dist
	start, run   dist
	gap          dist
	perNode      map[string]int            // jobs run, by node
	cross        map[string]map[string]int // submitted to -> ran on -> jobs
	nodeCPU      []time.Duration           // each node's tree (mps + children)
	ownCPU       []time.Duration           // each node's mps process alone
	pgCPU        time.Duration             // the PostgreSQL server's tree
	busy         float64                   // machine busy share
	other        float64                   // cores the rest of the machine used
	problems     int                       // warnings and errors in the nodes' logs
	firstProblem string
}

func (r *clusterRun) rate() float64 { return float64(r.n) / r.total.Seconds() }

func (r *clusterRun) String() string {
	return fmt.Sprintf("total %.2f s, %.2f jobs/s (server span %.2f s); submit -> start %s; run %s; pickup gap %s; nodes %v; machine busy %.0f%% (other load %.2f cores)",
		r.total.Seconds(), r.rate(), r.serverSpan.Seconds(), r.start, r.run, r.gap, r.perNode, r.busy*100, r.other)
}

func (r *clusterRun) lines(i int) []string {
	var cpus []string
	var all, own time.Duration
	for k, c := range r.nodeCPU {
		cpus = append(cpus, fmt.Sprintf("node %d %.2f CPU-s (mps process %.2f)", k+1, c.Seconds(), r.ownCPU[k].Seconds()))
		all += c
		own += r.ownCPU[k]
	}
	var warm []string
	for _, w := range r.warmup {
		warm = append(warm, ms(w))
	}
	p := fmt.Sprintf("%s run %d:", r.phase, i)
	out := []string{
		fmt.Sprintf("%s %d node(s) with jobs.workers %d; output %s; warm-up job(s) %s; POST latency %s; all %d created within %s",
			p, r.nodes, r.workers, r.image, strings.Join(warm, ", "), r.post, r.n, ms(r.createdSpan)),
		fmt.Sprintf("%s total %.2f s = %.2f jobs/s (server first created -> last finished %.2f s = %.2f jobs/s); machine busy %.0f%% (other load %.2f cores)",
			p, r.total.Seconds(), r.rate(), r.serverSpan.Seconds(), float64(r.n)/r.serverSpan.Seconds(), r.busy*100, r.other),
		fmt.Sprintf("%s submit -> start %s", p, r.start),
		fmt.Sprintf("%s job run (started -> finished) %s", p, r.run),
		fmt.Sprintf("%s pickup gap (its node's worker free -> started) %s", p, r.gap),
		fmt.Sprintf("%s CPU (mps + children): %s; %.1f ms per job, of which the mps processes %.1f ms; PostgreSQL %.2f CPU-s (%.1f ms per job)",
			p, strings.Join(cpus, ", "), all.Seconds()*1000/float64(r.n), own.Seconds()*1000/float64(r.n),
			r.pgCPU.Seconds(), r.pgCPU.Seconds()*1000/float64(r.n)),
	}
	if r.perNode[""] == 0 {
		out = append(out, fmt.Sprintf("%s jobs run per node: %s", p, fmtCross(r.perNode, r.cross)))
	}
	if r.problems > 0 {
		out = append(out, fmt.Sprintf("%s %d warning/error lines in the nodes' logs, first: %s", p, r.problems, r.firstProblem))
	}
	return out
}

// fmtCross shows jobs per node and where each node's submissions ran.
func fmtCross(perNode map[string]int, cross map[string]map[string]int) string {
	var nodes []string
	for k := range perNode {
		nodes = append(nodes, k)
	}
	slices.Sort(nodes)
	var parts []string
	for _, k := range nodes {
		parts = append(parts, fmt.Sprintf("%s %d", k, perNode[k]))
	}
	var subs []string
	var from []string
	for k := range cross {
		from = append(from, k)
	}
	slices.Sort(from)
	for _, f := range from {
		var to []string
		for _, k := range nodes {
			to = append(to, fmt.Sprintf("%d on %s", cross[f][k], k))
		}
		subs = append(subs, fmt.Sprintf("submitted to %s: %s", f, strings.Join(to, ", ")))
	}
	return strings.Join(parts, ", ") + " (" + strings.Join(subs, "; ") + ")"
}

// runClusterPhase starts nodes mps processes (cluster mode on dsn, or
// SQLite when dsn is empty) sharing one jobs folder, runs the burst, and
// stops them.
func runClusterPhase(b *testing.B, phase, label, root, mediaDir, dsn string, nodes, workers, n int, in jobInput, task vod.TaskSpec, pgPID int) *clusterRun {
	b.Helper()
	jobsDir := filepath.Join(root, label, "jobs")
	if err := os.MkdirAll(jobsDir, 0o755); err != nil {
		b.Fatal(err)
	}
	var srvs []*jobServer
	for k := range nodes {
		id := fmt.Sprintf("node-%c", 'a'+k)
		cfg := fmt.Sprintf(`
log:
  level: info
jobs:
  enabled: true
  db_path: %q
  dir: %q
  workers: %d
  media_roots: [%q]
`, filepath.Join(root, label, id+".db"), jobsDir, workers, mediaDir)
		if dsn != "" {
			cfg += fmt.Sprintf(`cluster:
  enabled: true
  postgres: %q
  node_id: %s
`, dsn, id)
		}
		js := &jobServer{root: root, media: mediaDir, jobs: jobsDir,
			client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}}
		js.s = startServer(b, cfg)
		srvs = append(srvs, js)
	}
	defer func() {
		for _, js := range srvs {
			js.s.Stop(b)
		}
	}()
	ctx := context.Background()
	spec := vod.JobSpec{Input: vod.JobInput{Path: in.name}, Tasks: []vod.TaskSpec{task}}
	r := &clusterRun{phase: phase, label: label, n: n, nodes: nodes, workers: workers, perNode: map[string]int{}, cross: map[string]map[string]int{}}

	// One warm-up job through each node, one after the other.
	for k, js := range srvs {
		j, at, err := js.submit(ctx, spec)
		if err != nil {
			b.Fatalf("%s: warm-up job on node %d: %v", label, k+1, err)
		}
		done, seen, err := js.wait(ctx, j.ID, 20*time.Millisecond, 2*time.Minute, nil)
		if err != nil {
			b.Fatalf("%s: warm-up job on node %d: %v", label, k+1, err)
		}
		if done.State != vod.StateSucceeded {
			b.Fatalf("%s: warm-up job %s on node %d: %s: %s", label, j.ID, k+1, done.State, done.Error)
		}
		r.warmup = append(r.warmup, seen.Sub(at))
	}
	time.Sleep(500 * time.Millisecond)

	cpu0 := make([]time.Duration, nodes)
	own0 := make([]time.Duration, nodes)
	for k, js := range srvs {
		cpu0[k] = treeCPU(b, js.s.PID()).cpu
		own0[k], _ = procCPU(js.s.PID())
	}
	var pg0 time.Duration
	if dsn != "" {
		pg0 = treeCPU(b, pgPID).cpu
	}
	busy0, total0 := systemCPU()
	self0, _ := procCPU(os.Getpid())

	ids := make([]string, n)
	to := make([]int, n)
	posts := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		to[i] = i % nodes
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			j, at, err := srvs[to[i]].submit(ctx, spec)
			posts[i] = time.Since(at)
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = j.ID
		}()
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("%s: submit job %d of %d to node %d: %v", label, i+1, n, to[i]+1, err)
		}
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var seen time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list struct {
			Jobs []*vod.Job `json:"jobs"`
		}
		if err := srvs[0].call(ctx, http.MethodGet, "/api/v1/jobs?limit="+strconv.Itoa(n+nodes), nil, &list, http.StatusOK); err != nil {
			b.Fatal(err)
		}
		seen = time.Now()
		done := 0
		for _, j := range list.Jobs {
			if !want[j.ID] {
				continue
			}
			switch j.State {
			case vod.StateSucceeded, vod.StateFailed, vod.StateCancelled:
				done++
			}
		}
		if done == n {
			break
		}
		if seen.After(deadline) {
			b.Fatalf("%s: %d of %d jobs finished after 10 minutes", label, done, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.total = seen.Sub(t0)
	busy1, total1 := systemCPU()
	for k, js := range srvs {
		r.nodeCPU = append(r.nodeCPU, treeCPU(b, js.s.PID()).cpu-cpu0[k])
		own, err := procCPU(js.s.PID())
		if err != nil {
			b.Fatal(err)
		}
		r.ownCPU = append(r.ownCPU, own-own0[k])
	}
	if dsn != "" {
		r.pgCPU = treeCPU(b, pgPID).cpu - pg0
	}
	if total1 > total0 {
		r.busy = float64(busy1-busy0) / float64(total1-total0)
	}
	self1, _ := procCPU(os.Getpid())
	ours := r.pgCPU + self1 - self0
	for _, c := range r.nodeCPU {
		ours += c
	}
	r.other = otherCores(r.busy, r.total, ours)
	r.post = summarize(posts)

	// Every job, as GET /api/v1/jobs/{id} shows it (from the other node
	// when there are two, so that each node answers for the other's jobs).
	var jobs []*vod.Job
	var starts, runs []time.Duration
	var firstCreated, lastCreated, lastFinished time.Time
	byNode := map[string][]*vod.Job{}
	for i, id := range ids {
		var j vod.Job
		js := srvs[(to[i]+1)%nodes]
		if err := js.call(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil, &j, http.StatusOK); err != nil {
			b.Fatalf("%s: %v", label, err)
		}
		if j.State != vod.StateSucceeded || j.StartedAt == nil || j.FinishedAt == nil {
			b.Fatalf("%s: job %s: %s (attempts %d, node %q): %s", label, j.ID, j.State, j.Attempts, j.Node, j.Error)
		}
		if j.Attempts != 1 {
			b.Fatalf("%s: job %s succeeded after %d attempts (node %q), want 1", label, j.ID, j.Attempts, j.Node)
		}
		if len(j.Tasks) != 1 || len(j.Tasks[0].Outputs) != 1 || j.Tasks[0].Outputs[0].Kind != "image" {
			b.Fatalf("%s: job %s: want one image, got %+v", label, j.ID, j.Tasks)
		}
		if dsn != "" && j.Node == "" {
			b.Fatalf("%s: job %s: no node in cluster mode", label, j.ID)
		}
		if o := j.Tasks[0].Outputs[0]; r.image == "" {
			r.image = fmt.Sprintf("%s %dx%d, %d bytes", o.MIME, o.Width, o.Height, o.Size)
		}
		jobs = append(jobs, &j)
		r.perNode[j.Node]++
		from := fmt.Sprintf("node-%c", 'a'+to[i])
		if r.cross[from] == nil {
			r.cross[from] = map[string]int{}
		}
		r.cross[from][j.Node]++
		byNode[j.Node] = append(byNode[j.Node], &j)
		starts = append(starts, j.StartedAt.Sub(j.CreatedAt))
		runs = append(runs, j.FinishedAt.Sub(*j.StartedAt))
		if firstCreated.IsZero() || j.CreatedAt.Before(firstCreated) {
			firstCreated = j.CreatedAt
		}
		if j.CreatedAt.After(lastCreated) {
			lastCreated = j.CreatedAt
		}
		if j.FinishedAt.After(lastFinished) {
			lastFinished = *j.FinishedAt
		}
	}
	r.serverSpan = lastFinished.Sub(firstCreated)
	r.createdSpan = lastCreated.Sub(firstCreated)
	var gaps []time.Duration
	for _, js := range byNode {
		gaps = append(gaps, pickupGaps(js, workers)...)
	}
	r.start, r.run, r.gap = summarize(starts), summarize(runs), summarize(gaps)
	for _, js := range srvs {
		p := js.s.Problems()
		r.problems += len(p)
		if len(p) > 0 && r.firstProblem == "" {
			r.firstProblem = p[0]
		}
	}
	for _, j := range jobs {
		_ = os.RemoveAll(filepath.Join(jobsDir, j.OutputDir))
	}
	return r
}

// postmasterPID reads the PostgreSQL server's process id from its
// postmaster.pid.
func postmasterPID(b *testing.B, pg *pgtest.Server) int {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(pg.Dir, "data", "postmaster.pid"))
	if err != nil {
		b.Fatalf("postgres pid: %v", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		b.Fatalf("postgres pid: %q: %v", line, err)
	}
	return pid
}
