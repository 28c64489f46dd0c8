//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
	"github.com/mps-dev/mps/transcoder"
	"github.com/mps-dev/mps/vod"
)

// BenchmarkAdaptiveJob measures an adaptive VOD job (the built-in
// adaptive-default preset: 720p, 480p and 360p x264 superfast with a 2 s
// GOP, one AAC rendition, packaged as HLS and DASH) on a 30 s 1080p30
// testsrc2 + sine MP4 made at test time, against the bare ffmpeg command
// doing the same encodes, in the same run:
//
//   - mps: POST /api/v1/jobs with one adaptive task, then GET the job every
//     50 ms until it has succeeded. Measured: the wall time from just
//     before the POST to the poll that sees it succeeded (and the server's
//     own created_at -> finished_at), the CPU of mps plus the children it
//     reaped (utime+stime+cutime+cstime in /proc/PID/stat), and when its
//     ffmpeg child ran (a /proc scan every 100 ms), which splits the wall
//     time into queue + probe, encode, and packaging + probe.
//   - bare: one ffmpeg that decodes the input once, splits it into the same
//     rungs and encodes each with the job's encoder settings (built from
//     the preset the API lists, with the same flags as vod/adaptive.go's
//     adpArgs: -sc_threshold 0 -bf 0 -forced-idr 1, keyframes forced on the
//     GOP grid, the same VBV) into the same fragmented MP4 files, plus the
//     audio once. It does no packaging: that is part of what mps adds.
//
// Runs alternate bare, mps, mps, bare, ... (MPS_BENCH_JOB_ROUNDS pairs,
// default 2) so that a change in the machine's load hits both sides;
// MPS_BENCH_JOB_SIDE_BY_SIDE=1 starts the two at the same time instead.
// Before the runs, mps's CPU is measured for 5 s while idle and polled
// every 50 ms, the part of its CPU during a run that the polling costs.
// The headline is the wall-time ratio mps ÷ bare over all runs (target
// ≤ 1.05). Nothing asserts it: the machine is shared.
//
// When the server lists no adaptive template (the task type is not built
// in yet), the benchmark says so and measures a transcode job with the
// mp4-720p preset against the bare ffmpeg command of that preset instead.
func BenchmarkAdaptiveJob(b *testing.B) {
	testutil.RequireTools(b, "ffmpeg", "ffprobe")
	rounds := envInts(b, "MPS_BENCH_JOB_ROUNDS", []int{2})[0]
	sideBySide := os.Getenv("MPS_BENCH_JOB_SIDE_BY_SIDE") == "1"
	fmt.Printf("machine: %s\n", machine())

	js := startJobServer(b, 1)
	in := makeJobInput(b, js.media, "adaptive-src.mp4", 30*time.Second, 1920, 1080, 4_500_000)
	fmt.Printf("job input: %s\n", in.desc)

	ctx := context.Background()
	var list struct {
		Templates []vod.Template `json:"templates"`
	}
	if err := js.call(ctx, http.MethodGet, "/api/v1/templates?type="+vod.TaskAdaptive, nil, &list, http.StatusOK); err != nil {
		b.Fatal(err)
	}
	var task vod.TaskSpec
	var bareArgs func(dir string) []string
	var desc string
	fallback := ""
	i := slices.IndexFunc(list.Templates, func(t vod.Template) bool { return t.Name == "adaptive-default" })
	if i < 0 && len(list.Templates) > 0 {
		i = 0
	}
	if i >= 0 {
		tpl := list.Templates[i]
		var p struct {
			transcoder.Template
			SegmentDuration float64  `json:"segment_duration"`
			Formats         []string `json:"formats"`
		}
		if err := json.Unmarshal(tpl.Params, &p); err != nil {
			b.Fatalf("adaptive template %s: %v\n%s", tpl.Name, err, tpl.Params)
		}
		d := p.Template.WithDefaults()
		rungs := jobAdaptiveRungs(d, in.width, in.height)
		task = vod.TaskSpec{Type: vod.TaskAdaptive, Template: tpl.Name}
		bareArgs = func(dir string) []string { return bareAdaptiveArgs(in.path, dir, d, rungs) }
		var rs []string
		for _, r := range rungs {
			rs = append(rs, fmt.Sprintf("%dx%d %s %s GOP %s", r.w, r.h, r.v.Preset, r.v.Bitrate, r.v.GOP))
		}
		a := d.Rungs[0].Audio
		desc = fmt.Sprintf("adaptive job, template %s: %s; audio %s %s; %g s segments, %s",
			tpl.Name, strings.Join(rs, ", "), a.Codec, a.Bitrate, p.SegmentDuration, strings.Join(p.Formats, "+"))
	} else {
		fallback = "the server lists no adaptive template (GET /api/v1/templates?type=adaptive is empty): " +
			"the adaptive task type is not in this build, so this measures a transcode job (mp4-720p) instead"
		fmt.Println("NOTE:", fallback)
		task = vod.TaskSpec{Type: vod.TaskTranscode, Template: "mp4-720p"}
		bareArgs = func(dir string) []string { return bareMP4720Args(in.path, dir, in.fps) }
		desc = "transcode job, template mp4-720p (1280x720 x264 medium high 2500k, AAC 128k, MP4 faststart)"
	}
	fmt.Printf("job: %s\nbare: ffmpeg %s\n", desc, strings.Join(bareArgs("OUT"), " "))

	idleCores := idlePolledCPU(b, js, 5*time.Second)
	fmt.Printf("mps idle, polled every 50 ms: %.4f cores\n", idleCores)

	var mps, bare []*jobRun
	for r := range rounds {
		if sideBySide {
			// Both at once: they share whatever else the machine runs.
			type res struct {
				r   *jobRun
				err error
			}
			ch := make(chan res, 1)
			go func() {
				br, err := bareJob(js.root, fmt.Sprintf("bare-r%d", r+1), bareArgs)
				ch <- res{br, err}
			}()
			mr := runMPSJob(b, js, fmt.Sprintf("mps-r%d", r+1), in, task)
			br := <-ch
			if br.err != nil {
				b.Fatal(br.err)
			}
			mps, bare = append(mps, mr), append(bare, br.r)
			fmt.Printf("round %d (side by side) mps:  %s\nround %d (side by side) bare: %s\n", r+1, mr, r+1, br.r)
			continue
		}
		for k := range 2 {
			if (r%2 == 0) == (k == 0) {
				br := runBareJob(b, js.root, fmt.Sprintf("bare-r%d", r+1), bareArgs)
				bare = append(bare, br)
				fmt.Printf("round %d bare: %s\n", r+1, br)
			} else {
				mr := runMPSJob(b, js, fmt.Sprintf("mps-r%d", r+1), in, task)
				mps = append(mps, mr)
				fmt.Printf("round %d mps:  %s\n", r+1, mr)
			}
		}
	}

	sum := func(rs []*jobRun, f func(*jobRun) time.Duration) (t time.Duration) {
		for _, r := range rs {
			t += f(r)
		}
		return t
	}
	wall := func(r *jobRun) time.Duration { return r.wall }
	cpu := func(r *jobRun) time.Duration { return r.cpu }
	minWall := func(rs []*jobRun) time.Duration {
		m := rs[0].wall
		for _, r := range rs {
			m = min(m, r.wall)
		}
		return m
	}
	ratio := sum(mps, wall).Seconds() / sum(bare, wall).Seconds()
	cpuRatio := sum(mps, cpu).Seconds() / sum(bare, cpu).Seconds()
	mode := "one after the other (bare, mps, mps, bare, ...)"
	if sideBySide {
		mode = "side by side (MPS_BENCH_JOB_SIDE_BY_SIDE=1: the job and the bare command start together and share the machine; each side's other load includes the other side)"
	}
	lines := []string{
		"input: " + in.desc,
		"job: " + desc,
		"runs: " + mode,
	}
	if fallback != "" {
		lines = append(lines, "NOTE: "+fallback)
	}
	for i := range mps {
		lines = append(lines, fmt.Sprintf("run %d: mps %s", i+1, mps[i]), fmt.Sprintf("run %d: bare %s", i+1, bare[i]))
	}
	var pairs []string
	for i := range mps {
		pairs = append(pairs, fmt.Sprintf("x%.3f", mps[i].wall.Seconds()/bare[i].wall.Seconds()))
	}
	lines = append(lines,
		fmt.Sprintf("wall mps / bare ffmpeg: x%.3f over %d runs each (%.2f s / %.2f s; per round %s; best of each x%.3f); target <= 1.05: %s",
			ratio, len(mps), sum(mps, wall).Seconds(), sum(bare, wall).Seconds(), strings.Join(pairs, ", "),
			minWall(mps).Seconds()/minWall(bare).Seconds(), metOrNot(ratio <= 1.05)),
		fmt.Sprintf("CPU mps (process + children) / bare ffmpeg: x%.3f (%.1f CPU-s / %.1f CPU-s)",
			cpuRatio, sum(mps, cpu).Seconds(), sum(bare, cpu).Seconds()),
	)
	if mps[0].ffLast > 0 {
		nm := float64(len(mps))
		before := sum(mps, func(r *jobRun) time.Duration { return r.ffFirst }).Seconds() / nm
		enc := sum(mps, func(r *jobRun) time.Duration { return r.ffLast - r.ffFirst }).Seconds() / nm
		after := sum(mps, func(r *jobRun) time.Duration { return r.wall - r.ffLast }).Seconds() / nm
		lines = append(lines, fmt.Sprintf("mps wall, mean per run (from a /proc scan every 100 ms): %.2f s before the ffmpeg child is seen (queue + input probe), %.2f s while it runs (the encode), %.2f s after it was last seen (packaging + output probe + the 50 ms poll); bare ffmpeg mean %.2f s; mean other load: mps runs %.2f cores, bare runs %.2f cores",
			before, enc, after, sum(bare, wall).Seconds()/float64(len(bare)),
			meanOf(mps, func(r *jobRun) float64 { return r.other }), meanOf(bare, func(r *jobRun) float64 { return r.other })))
		lines = append(lines, fmt.Sprintf("the job's probes, repeated bare after each run (mean): ffprobe of the input %.0f ms, of the output %.0f ms",
			meanOf(mps, func(r *jobRun) float64 { return float64(r.probeIn) / 1e6 }), meanOf(mps, func(r *jobRun) float64 { return float64(r.probeOut) / 1e6 })))
	}
	lines = append(lines, fmt.Sprintf("mps process CPU: %.3f cores during the runs (mean); %.4f cores while idle and polled every 50 ms as the runs poll",
		meanOf(mps, func(r *jobRun) float64 { return r.ownCPU.Seconds() / r.wall.Seconds() }), idleCores))
	if p := js.s.Problems(); len(p) > 0 {
		lines = append(lines, fmt.Sprintf("mps warnings/errors in the log: %d", len(p)))
		for i, l := range p {
			if i == 5 {
				break
			}
			lines = append(lines, "  log: "+l)
		}
	}
	title := "BenchmarkAdaptiveJob (adaptive 3-rung VOD job: mps vs bare ffmpeg)"
	if fallback != "" {
		title = "BenchmarkAdaptiveJob (FALLBACK: transcode mp4-720p job: mps vs bare ffmpeg)"
	}
	report(title, lines...)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ratio, "wall-x-ffmpeg")
	b.ReportMetric(cpuRatio, "cpu-x-ffmpeg")
	b.ReportMetric(sum(mps, wall).Seconds()/float64(len(mps)), "mps-s")
	b.ReportMetric(sum(bare, wall).Seconds()/float64(len(bare)), "ffmpeg-s")
}

// BenchmarkManySmallJobs submits MPS_BENCH_SMALL_JOBS (default 50) small
// jobs at once, from as many goroutines, to a server with jobs.workers 2.
// Each job takes one 640-wide JPEG (quality 85) at 1 s of a 2 s 720p30
// testsrc2 + sine MP4. Measured:
//
//   - submit-to-start latency of every job (started_at - created_at in the
//     job JSON), which with 2 workers is mostly waiting for the jobs ahead;
//     the "pickup gap" (how long a job that could run waited for a free
//     worker to take it: started_at - max(created_at, the time a worker
//     became free), replaying the two workers from the jobs' times); and,
//     before the burst, the submit-to-start latency of single jobs on an
//     idle queue;
//   - the total time for all jobs (first POST to the poll, every 50 ms, of
//     GET /api/v1/jobs?limit=N (the N newest) that sees the last one finished), against the sum of the bare ffmpeg times
//     of the same commands run one after the other, and against the same
//     commands run 2 at a time (the workers' parallelism); and, to show
//     what the input probe of every job costs, ffprobe + ffmpeg 2 at a time.
//
// The bare command is the one vod/snapshot.go's snapOffsets builds for
// {"offsets": [1], "width": 640, "quality": 85}. Rounds alternate bare,
// mps, mps, bare, ... (MPS_BENCH_JOB_ROUNDS pairs, default 2).
func BenchmarkManySmallJobs(b *testing.B) {
	testutil.RequireTools(b, "ffmpeg", "ffprobe")
	n := envInts(b, "MPS_BENCH_SMALL_JOBS", []int{50})[0]
	rounds := envInts(b, "MPS_BENCH_JOB_ROUNDS", []int{2})[0]
	const workers = 2
	fmt.Printf("machine: %s\n", machine())

	js := startJobServer(b, workers)
	in := makeJobInput(b, js.media, "small-src.mp4", 2*time.Second, 1280, 720, 2_000_000)
	fmt.Printf("job input: %s\n", in.desc)
	params := json.RawMessage(`{"format":"jpg","offsets":[1],"width":640,"quality":85}`)
	task := vod.TaskSpec{Type: vod.TaskSnapshot, Params: params}
	// snapEncodeArgs: mjpeg qscale 2 + round((100-85)*29/99) = 6.
	snapArgs := func(out string) []string {
		return []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y",
			"-ss", "1.000000", "-i", in.path, "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn",
			"-vf", "scale=640:-1", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "6",
			"-f", "image2", "-update", "1", out}
	}
	fmt.Printf("job: snapshot %s\nbare: ffmpeg %s\n", params, strings.Join(snapArgs("OUT.jpg"), " "))

	ctx := context.Background()
	// Single jobs on an idle queue.
	var idle []time.Duration
	for i := range 5 {
		j, _, err := js.submit(ctx, vod.JobSpec{Input: vod.JobInput{Path: in.name}, Tasks: []vod.TaskSpec{task}})
		if err != nil {
			b.Fatal(err)
		}
		done, _, err := js.wait(ctx, j.ID, 20*time.Millisecond, time.Minute, nil)
		if err != nil {
			b.Fatal(err)
		}
		if done.State != vod.StateSucceeded || done.StartedAt == nil {
			b.Fatalf("idle job %d: %s: %s", i, done.State, done.Error)
		}
		idle = append(idle, done.StartedAt.Sub(done.CreatedAt))
		time.Sleep(300 * time.Millisecond)
	}
	idleD := summarize(idle)
	fmt.Printf("idle queue, submit -> start of a single job: %s\n", idleD)

	var mps []*burstRun
	var seq, par, probePar []*bareBurst
	for r := range rounds {
		for k := range 2 {
			if (r%2 == 0) == (k == 0) {
				dir := filepath.Join(js.root, fmt.Sprintf("small-bare-r%d", r+1))
				s := runBareBurst(b, dir+"-seq", n, 1, nil, snapArgs)
				p := runBareBurst(b, dir+"-par", n, workers, nil, snapArgs)
				pp := runBareBurst(b, dir+"-probe", n, workers, []string{"-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", in.path}, snapArgs)
				seq, par, probePar = append(seq, s), append(par, p), append(probePar, pp)
				fmt.Printf("round %d bare: sequential %s; 2 at a time %s; ffprobe+ffmpeg 2 at a time %s\n", r+1, s, p, pp)
			} else {
				m := runBurst(b, js, n, in, task)
				mps = append(mps, m)
				fmt.Printf("round %d mps: %s\n", r+1, m)
			}
		}
	}

	lines := []string{
		"input: " + in.desc,
		fmt.Sprintf("job: one snapshot task %s; %d jobs submitted at once from %d goroutines; jobs.workers %d", params, n, n, workers),
		fmt.Sprintf("idle queue, submit -> start of a single job (5 jobs, one at a time): %s", idleD),
	}
	var totals, vsSum, vsPar, vsProbe []float64
	for i, m := range mps {
		sumSeq := seq[i].sum
		lines = append(lines,
			fmt.Sprintf("run %d: POST latency %s; all %d created within %s", i+1, m.post, n, ms(m.createdSpan)),
			fmt.Sprintf("run %d: submit -> start %s", i+1, m.start),
			fmt.Sprintf("run %d: pickup gap (worker free -> next job started) %s", i+1, m.gap),
			fmt.Sprintf("run %d: job run time (started -> finished) %s; bare ffmpeg per command p50 %s",
				i+1, m.run, ms(summarize(seq[i].each).P50)),
			fmt.Sprintf("run %d: total %.2f s (server first created -> last finished %.2f s); mps CPU %.2f s (process %.2f + children %.2f)",
				i+1, m.total.Seconds(), m.serverSpan.Seconds(), m.cpu.Seconds(), m.ownCPU.Seconds(), (m.cpu-m.ownCPU).Seconds()),
			fmt.Sprintf("run %d: bare sum of %d ffmpeg times %.2f s (CPU %.2f s); 2 at a time %.2f s wall; ffprobe+ffmpeg 2 at a time %.2f s wall",
				i+1, n, sumSeq.Seconds(), seq[i].cpu.Seconds(), par[i].wall.Seconds(), probePar[i].wall.Seconds()),
			fmt.Sprintf("run %d: total mps / sum of bare: x%.2f; / bare 2 at a time: x%.2f; / ffprobe+ffmpeg 2 at a time: x%.2f; machine busy %.0f%%",
				i+1, m.total.Seconds()/sumSeq.Seconds(), m.total.Seconds()/par[i].wall.Seconds(),
				m.total.Seconds()/probePar[i].wall.Seconds(), m.busy*100),
		)
		totals = append(totals, m.total.Seconds())
		vsSum = append(vsSum, m.total.Seconds()/sumSeq.Seconds())
		vsPar = append(vsPar, m.total.Seconds()/par[i].wall.Seconds())
		vsProbe = append(vsProbe, m.total.Seconds()/probePar[i].wall.Seconds())
	}
	var allStart, allGap []time.Duration
	for _, m := range mps {
		allStart = append(allStart, m.starts...)
		allGap = append(allGap, m.gaps...)
	}
	startD, gapD := summarize(allStart), summarize(allGap)
	lines = append(lines,
		fmt.Sprintf("all runs: submit -> start %s; pickup gap %s", startD, gapD),
		fmt.Sprintf("all runs: total mps / sum of bare x%.2f, / bare 2 at a time x%.2f, / ffprobe+ffmpeg 2 at a time x%.2f (means over %d runs)",
			mean(vsSum), mean(vsPar), mean(vsProbe), len(mps)))
	if p := js.s.Problems(); len(p) > 0 {
		lines = append(lines, fmt.Sprintf("mps warnings/errors in the log: %d", len(p)))
		for i, l := range p {
			if i == 5 {
				break
			}
			lines = append(lines, "  log: "+l)
		}
	}
	report(fmt.Sprintf("BenchmarkManySmallJobs (%d snapshot jobs at once, 2 workers: mps vs bare ffmpeg)", n), lines...)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(startD.P50)/1e6, "start-p50-ms")
	b.ReportMetric(float64(startD.P95)/1e6, "start-p95-ms")
	b.ReportMetric(float64(startD.Max)/1e6, "start-max-ms")
	b.ReportMetric(float64(gapD.P50)/1e6, "gap-p50-ms")
	b.ReportMetric(float64(idleD.P50)/1e6, "idle-start-ms")
	b.ReportMetric(mean(totals), "total-s")
	b.ReportMetric(mean(vsSum), "x-sum-ffmpeg")
	b.ReportMetric(mean(vsPar), "x-ffmpeg-2par")
}

// ---------------------------------------------------------------------------
// The server with jobs

// jobServer is a running mps with the job engine in a temporary folder.
type jobServer struct {
	s      *server
	root   string // temporary folder: db, jobs/, media/, bare outputs
	media  string // the media root
	jobs   string // jobs.dir
	client *http.Client
}

func startJobServer(b *testing.B, workers int) *jobServer {
	b.Helper()
	root := b.TempDir()
	js := &jobServer{root: root, media: filepath.Join(root, "media"), jobs: filepath.Join(root, "jobs"),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}}
	if err := os.MkdirAll(js.media, 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`
log:
  level: info
jobs:
  enabled: true
  db_path: %q
  dir: %q
  workers: %d
  media_roots: [%q]
`, filepath.Join(root, "mps.db"), js.jobs, workers, js.media)
	js.s = startServer(b, cfg)
	return js
}

// call sends body (when not nil) as JSON and decodes the answer into out
// (when not nil); an answer other than want is an error.
func (js *jobServer) call(ctx context.Context, method, path string, body, out any, want int) error {
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, js.s.URL(path), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := js.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s (want %d): %s", method, path, resp.Status, want, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// submit posts a job; at is when the request was sent.
func (js *jobServer) submit(ctx context.Context, spec vod.JobSpec) (*vod.Job, time.Time, error) {
	var j vod.Job
	at := time.Now()
	err := js.call(ctx, http.MethodPost, "/api/v1/jobs", spec, &j, http.StatusCreated)
	return &j, at, err
}

// wait polls a job every `every` until it is finished; at is when the poll
// that saw it finished was answered. onPoll, when not nil, sees every
// answer.
func (js *jobServer) wait(ctx context.Context, id string, every, timeout time.Duration, onPoll func(*vod.Job, time.Time)) (*vod.Job, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		var j vod.Job
		if err := js.call(ctx, http.MethodGet, "/api/v1/jobs/"+id, nil, &j, http.StatusOK); err != nil {
			return nil, time.Time{}, err
		}
		at := time.Now()
		if onPoll != nil {
			onPoll(&j, at)
		}
		switch j.State {
		case vod.StateSucceeded, vod.StateFailed, vod.StateCancelled:
			return &j, at, nil
		}
		if at.After(deadline) {
			return &j, at, fmt.Errorf("job %s still %s (%.0f%%) after %v", id, j.State, j.Progress*100, timeout)
		}
		time.Sleep(every)
	}
}

// procCPUAll returns a process's CPU time including that of the children
// it has waited for (utime+stime+cutime+cstime).
func procCPUAll(pid int) (own, all time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var t [4]int64
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return tick(t[0] + t[1]), tick(t[0] + t[1] + t[2] + t[3]), nil
}

// childWatch records when descendants of a process named name were seen,
// scanning /proc every interval.
type childWatch struct {
	mu          sync.Mutex
	first, last time.Time
	pids        map[int]bool
	stop, done  chan struct{}
}

func watchChildren(pid int, name string, every time.Duration) *childWatch {
	w := &childWatch{pids: map[int]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for _, c := range descendants(pid) {
				comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
				if err != nil || strings.TrimSpace(string(comm)) != name {
					continue
				}
				now := time.Now()
				w.mu.Lock()
				if w.first.IsZero() {
					w.first = now
				}
				w.last = now
				w.pids[c] = true
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *childWatch) Stop() (first, last time.Time, n int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first, w.last, len(w.pids)
}

// ---------------------------------------------------------------------------
// Input

// jobInput is a test file inside the media root.
type jobInput struct {
	name, path    string // relative to the media root; absolute
	width, height int
	fps           float64
	dur           time.Duration
	desc          string
}

// makeJobInput encodes d of testsrc2 at w×h 30 fps (x264 ultrafast, GOP 2 s,
// bitrate) with a 48 kHz stereo AAC sine to an MP4 in the media root.
func makeJobInput(b *testing.B, mediaDir, name string, d time.Duration, w, h int, bitrate int) jobInput {
	b.Helper()
	in := jobInput{name: name, path: filepath.Join(mediaDir, name), width: w, height: h, fps: 30, dur: d}
	start := time.Now()
	br := strconv.Itoa(bitrate)
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", w, h),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmtSecs(d),
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
		"-b:v", br, "-maxrate", br, "-bufsize", strconv.Itoa(2*bitrate),
		"-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "128k", "-ac", "2",
		"-movflags", "+faststart", "-f", "mp4", in.path).CombinedOutput()
	if err != nil {
		b.Fatalf("encode job input: %v\n%s", err, out)
	}
	st, err := os.Stat(in.path)
	if err != nil {
		b.Fatal(err)
	}
	in.desc = fmt.Sprintf("%s of %dx%dp30 testsrc2 H.264 (x264 ultrafast, GOP 2 s) + 48 kHz stereo AAC 128k, %.0f kbit/s, MP4 (faststart), made in %.1f s",
		d, w, h, float64(st.Size())*8/d.Seconds()/1000, time.Since(start).Seconds())
	return in
}

// ---------------------------------------------------------------------------
// One job against one bare command

// jobRun is one timed run of a job through mps or of the bare command.
type jobRun struct {
	wall   time.Duration
	cpu    time.Duration // mps + children, or the bare ffmpeg
	ownCPU time.Duration // mps's own process
	busy   float64       // the machine's busy share during the run
	other  float64       // cores the rest of the machine used meanwhile
	bytes  int64         // output written

	// mps only
	server     time.Duration // created_at -> finished_at
	queue      time.Duration // created_at -> started_at
	ffFirst    time.Duration // submit -> ffmpeg child first seen
	ffLast     time.Duration // submit -> ffmpeg child last seen
	ffChildren int
	// probeIn and probeOut are the wall times of the job's ffprobe runs
	// (input; first output) repeated bare after the job.
	probeIn, probeOut time.Duration
	mps               bool
}

// otherCores is the CPU the rest of the machine used during a run of wall
// time, in cores: the machine's busy share minus ours (the measured
// processes and this one).
func otherCores(busy float64, wall, ours time.Duration) float64 {
	return max(0, busy*float64(runtime.NumCPU())-ours.Seconds()/wall.Seconds())
}

func (r *jobRun) String() string {
	s := fmt.Sprintf("wall %.2f s, CPU %.1f s (%.2f cores), %s written, machine busy %.0f%% (other load %.2f cores)",
		r.wall.Seconds(), r.cpu.Seconds(), r.cpu.Seconds()/r.wall.Seconds(), mb(r.bytes), r.busy*100, r.other)
	if r.mps {
		s += fmt.Sprintf("; server created->finished %.2f s, created->started %s; mps process %.2f CPU-s; ffmpeg child seen %.1f-%.1f s after submit (%d ffmpeg processes); bare ffprobe of the input %s, of the output %s",
			r.server.Seconds(), ms(r.queue), r.ownCPU.Seconds(), r.ffFirst.Seconds(), r.ffLast.Seconds(), r.ffChildren, ms(r.probeIn), ms(r.probeOut))
	}
	return s
}

// runMPSJob submits one job with task on in and waits for it.
func runMPSJob(b *testing.B, js *jobServer, output string, in jobInput, task vod.TaskSpec) *jobRun {
	b.Helper()
	ctx := context.Background()
	pid := js.s.PID()
	own0, all0, err := procCPUAll(pid)
	if err != nil {
		b.Fatal(err)
	}
	busy0, total0 := systemCPU()
	self0, _ := procCPU(os.Getpid())
	watch := watchChildren(pid, "ffmpeg", 100*time.Millisecond)
	j, at, err := js.submit(ctx, vod.JobSpec{Input: vod.JobInput{Path: in.name}, Output: output, Tasks: []vod.TaskSpec{task}})
	if err != nil {
		watch.Stop()
		b.Fatal(err)
	}
	done, seen, err := js.wait(ctx, j.ID, 50*time.Millisecond, 20*time.Minute, nil)
	first, last, nff := watch.Stop()
	if err != nil {
		b.Fatal(err)
	}
	if done.State != vod.StateSucceeded {
		b.Fatalf("job %s %s: %s\nmps log:\n%s", done.ID, done.State, done.Error, testutil.Tail(js.s.Log.String(), 40))
	}
	own1, all1, err := procCPUAll(pid)
	if err != nil {
		b.Fatal(err)
	}
	busy1, total1 := systemCPU()
	r := &jobRun{mps: true, wall: seen.Sub(at), cpu: all1 - all0, ownCPU: own1 - own0,
		bytes: dirSize(filepath.Join(js.jobs, done.OutputDir)), ffChildren: nff}
	if total1 > total0 {
		r.busy = float64(busy1-busy0) / float64(total1-total0)
	}
	if done.FinishedAt != nil {
		r.server = done.FinishedAt.Sub(done.CreatedAt)
	}
	if done.StartedAt != nil {
		r.queue = done.StartedAt.Sub(done.CreatedAt)
	}
	if !first.IsZero() {
		r.ffFirst, r.ffLast = first.Sub(at), last.Sub(at)
	}
	self1, _ := procCPU(os.Getpid())
	r.other = otherCores(r.busy, r.wall, r.cpu+self1-self0)
	var kinds []string
	for _, t := range done.Tasks {
		for _, o := range t.Outputs {
			kinds = append(kinds, o.Kind+":"+filepath.Base(o.Path))
		}
	}
	if len(kinds) == 0 {
		b.Fatalf("job %s succeeded without outputs", done.ID)
	}
	// What the job's two probes cost, run bare on the same files: the
	// input before the encode, the first output (the playlist) after it.
	probe := func(path string) time.Duration {
		w, _, err := runTimed("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", path)
		if err != nil {
			b.Logf("ffprobe %s: %v", path, err)
		}
		return w
	}
	r.probeIn = probe(in.path)
	if t := done.Tasks[0]; len(t.Outputs) > 0 {
		r.probeOut = probe(filepath.Join(js.jobs, filepath.FromSlash(t.Outputs[0].Path)))
	}
	_ = os.RemoveAll(filepath.Join(js.jobs, done.OutputDir))
	return r
}

// idlePolledCPU returns the cores mps uses with no job running while the
// benchmark polls it every 50 ms, as it polls a running job.
func idlePolledCPU(b *testing.B, js *jobServer, d time.Duration) float64 {
	b.Helper()
	own0, _, err := procCPUAll(js.s.PID())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < d {
		if err := js.call(context.Background(), http.MethodGet, "/api/v1/jobs?limit=1", nil, nil, http.StatusOK); err != nil {
			b.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	own1, _, err := procCPUAll(js.s.PID())
	if err != nil {
		b.Fatal(err)
	}
	return (own1 - own0).Seconds() / time.Since(start).Seconds()
}

// runBareJob runs the bare ffmpeg command into a fresh folder below root.
func runBareJob(b *testing.B, root, name string, args func(dir string) []string) *jobRun {
	b.Helper()
	r, err := bareJob(root, name, args)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// bareJob is runBareJob without the testing.B, for another goroutine.
func bareJob(root, name string, args func(dir string) []string) (*jobRun, error) {
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	busy0, total0 := systemCPU()
	self0, _ := procCPU(os.Getpid())
	wall, cpu, err := runTimed("ffmpeg", args(dir)...)
	if err != nil {
		return nil, fmt.Errorf("bare ffmpeg: %v", err)
	}
	busy1, total1 := systemCPU()
	self1, _ := procCPU(os.Getpid())
	r := &jobRun{wall: wall, cpu: cpu, bytes: dirSize(dir)}
	if total1 > total0 {
		r.busy = float64(busy1-busy0) / float64(total1-total0)
	}
	r.other = otherCores(r.busy, r.wall, r.cpu+self1-self0)
	if r.bytes == 0 {
		return nil, fmt.Errorf("bare ffmpeg wrote nothing in %s", dir)
	}
	_ = os.RemoveAll(dir)
	return r, nil
}

// runTimed runs a command to its end and returns its wall and CPU time.
func runTimed(name string, args ...string) (wall, cpu time.Duration, err error) {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return wall, cpu, fmt.Errorf("%s: %v\n%s", name, err, testutil.Tail(out.String(), 20))
	}
	return wall, cpu, nil
}

// jobRung is a rung of the adaptive preset as the job sizes it.
type jobRung struct {
	w, h int
	v    transcoder.Video
}

// jobAdaptiveRungs sizes d's rungs over a srcW×srcH input as vod/adaptive.go's
// adpPlan does (transcoder.FitBox): a rung larger than the input is skipped unless the template
// upscales; when every rung is, the last one is kept at the input's size.
func jobAdaptiveRungs(d transcoder.Template, srcW, srcH int) []jobRung {
	fit := func(boxW, boxH int) (int, int, bool) { return transcoder.FitBox(srcW, srcH, boxW, boxH) }
	var out []jobRung
	for _, r := range d.Rungs {
		w, h, up := fit(r.Video.Width, r.Video.Height)
		if up && !d.Upscale {
			continue
		}
		out = append(out, jobRung{w: w, h: h, v: r.Video})
	}
	if len(out) == 0 {
		r := d.Rungs[len(d.Rungs)-1]
		w, h, _ := fit(0, 0)
		out = append(out, jobRung{w: w, h: h, v: r.Video})
	}
	return out
}

// bareAdaptiveArgs is the adaptive job's encode as one bare ffmpeg
// command: the arguments of vod/adaptive.go's adpArgs and adpVideoArgs
// (without RunFFmpeg's -progress pipe:1), writing v0.mp4, v1.mp4, ... and
// audio.mp4 into dir.
func bareAdaptiveArgs(src, dir string, d transcoder.Template, rungs []jobRung) []string {
	args := []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-i", src}
	split := fmt.Sprintf("[0:v:0]split=%d", len(rungs))
	for i := range rungs {
		split += fmt.Sprintf("[s%d]", i)
	}
	graph := []string{split}
	for i, r := range rungs {
		chain := fmt.Sprintf("scale=%d:%d,setsar=1", r.w, r.h)
		if r.v.FPS > 0 {
			chain += ",fps=" + strconv.FormatFloat(r.v.FPS, 'f', -1, 64)
		}
		graph = append(graph, fmt.Sprintf("[s%d]%s[v%d]", i, chain, i))
	}
	args = append(args, "-filter_complex", strings.Join(graph, ";"))
	frag := []string{"-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof"}
	for i, r := range rungs {
		v := r.v
		keyint := strconv.Itoa(max(250, int(v.GOP.Seconds()*120)+1))
		g := strconv.FormatFloat(v.GOP.Seconds(), 'f', -1, 64)
		args = append(args, "-map", fmt.Sprintf("[v%d]", i))
		if v.Codec == transcoder.CodecH265 {
			args = append(args, "-c:v", "libx265", "-preset", v.Preset, "-tag:v", "hvc1",
				"-x265-params", "log-level=error:scenecut=0:open-gop=0:bframes=0",
				"-bf", "0", "-g", keyint, "-forced-idr", "1")
		} else {
			args = append(args, "-c:v", "libx264", "-preset", v.Preset, "-sc_threshold", "0",
				"-bf", "0", "-g", keyint, "-forced-idr", "1")
		}
		args = append(args, "-pix_fmt", "yuv420p",
			"-force_key_frames", fmt.Sprintf("expr:if(isnan(prev_forced_t),1,gte(floor((t+0.0001)/%s),floor((prev_forced_t+0.0001)/%s)+1))", g, g),
			"-fps_mode:v", "passthrough")
		if v.Profile != "" {
			args = append(args, "-profile:v", v.Profile)
		}
		args = append(args, "-b:v", v.Bitrate.String(), "-maxrate", v.MaxRate.String(), "-bufsize", v.BufSize.String())
		args = append(args, "-an", "-sn", "-dn")
		args = append(args, frag...)
		args = append(args, filepath.Join(dir, fmt.Sprintf("v%d.mp4", i)))
	}
	a := d.Rungs[0].Audio
	if a.Codec != transcoder.AudioNone {
		args = append(args, "-map", "0:a:0", "-vn", "-sn", "-dn")
		if a.Codec == transcoder.AudioCopy {
			args = append(args, "-c:a", "copy")
		} else {
			args = append(args, "-c:a", "aac", "-b:a", a.Bitrate.String(),
				"-ar", strconv.Itoa(a.SampleRate), "-ac", strconv.Itoa(a.Channels))
		}
		args = append(args, frag...)
		args = append(args, filepath.Join(dir, "audio.mp4"))
	}
	return args
}

// bareMP4720Args is the transcode job of the mp4-720p preset as one bare
// ffmpeg command (vod/transcode.go's tcEncodeJob.args on a 1080p input,
// without -progress pipe:1).
func bareMP4720Args(src, dir string, fps float64) []string {
	return []string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-i", src,
		"-filter_complex", "[0:v:0]scale=1280:720:flags=bicubic,setsar=1[vout]", "-map", "[vout]",
		"-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", strconv.Itoa(int(math.Round(2 * fps))),
		"-preset", "medium", "-profile:v", "high", "-b:v", "2500000", "-maxrate", "2750000", "-bufsize", "5000000",
		"-map", "0:a:0", "-c:a", "aac", "-b:a", "128000",
		"-map_metadata", "0", "-map_chapters", "-1", "-sn", "-dn", "-movflags", "+faststart",
		"-f", "mp4", filepath.Join(dir, "output.mp4")}
}

func meanOf(rs []*jobRun, f func(*jobRun) float64) float64 {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, f(r))
	}
	return mean(xs)
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// ---------------------------------------------------------------------------
// Many small jobs

// burstRun is one burst of small jobs through mps.
type burstRun struct {
	total       time.Duration // first POST -> last job seen finished
	serverSpan  time.Duration // first created_at -> last finished_at
	createdSpan time.Duration // first -> last created_at
	cpu, ownCPU time.Duration
	busy        float64
	starts      []time.Duration // created -> started, per job
	gaps        []time.Duration // worker free -> started, per job
	post        dist
	start, gap  dist
	run         dist
}

func (r *burstRun) String() string {
	return fmt.Sprintf("total %.2f s; submit -> start %s; pickup gap %s; run %s; CPU %.1f s (mps process %.1f)",
		r.total.Seconds(), r.start, r.gap, r.run, r.cpu.Seconds(), r.ownCPU.Seconds())
}

// runBurst submits n jobs at once and waits for all of them.
func runBurst(b *testing.B, js *jobServer, n int, in jobInput, task vod.TaskSpec) *burstRun {
	b.Helper()
	ctx := context.Background()
	pid := js.s.PID()
	own0, all0, err := procCPUAll(pid)
	if err != nil {
		b.Fatal(err)
	}
	busy0, total0 := systemCPU()
	ids := make([]string, n)
	posts := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			j, at, err := js.submit(ctx, vod.JobSpec{Input: vod.JobInput{Path: in.name}, Tasks: []vod.TaskSpec{task}})
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
			b.Fatalf("submit job %d of %d: %v", i+1, n, err)
		}
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	jobs := map[string]*vod.Job{}
	var seen time.Time
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list struct {
			Jobs []*vod.Job `json:"jobs"`
		}
		if err := js.call(ctx, http.MethodGet, "/api/v1/jobs?limit="+strconv.Itoa(n), nil, &list, http.StatusOK); err != nil {
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
				jobs[j.ID] = j
				done++
			}
		}
		if done == n {
			break
		}
		if seen.After(deadline) {
			b.Fatalf("%d of %d jobs finished after 10 minutes", done, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	own1, all1, err := procCPUAll(pid)
	if err != nil {
		b.Fatal(err)
	}
	busy1, total1 := systemCPU()

	r := &burstRun{total: seen.Sub(t0), cpu: all1 - all0, ownCPU: own1 - own0, post: summarize(posts)}
	if total1 > total0 {
		r.busy = float64(busy1-busy0) / float64(total1-total0)
	}
	var list []*vod.Job
	var firstCreated, lastCreated, lastFinished time.Time
	var runs []time.Duration
	for _, id := range ids {
		j := jobs[id]
		if j.State != vod.StateSucceeded || j.StartedAt == nil || j.FinishedAt == nil {
			b.Fatalf("job %s: %s (attempts %d): %s", j.ID, j.State, j.Attempts, j.Error)
		}
		if o := j.Tasks[0].Outputs; len(o) != 1 || o[0].Kind != "image" || o[0].Width != 640 {
			b.Fatalf("job %s: want one 640-wide image, got %+v", j.ID, o)
		}
		if j.Attempts != 1 {
			b.Logf("job %s took %d attempts", j.ID, j.Attempts)
		}
		list = append(list, j)
		r.starts = append(r.starts, j.StartedAt.Sub(j.CreatedAt))
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
	r.gaps = pickupGaps(list, 2)
	r.start, r.gap, r.run = summarize(r.starts), summarize(r.gaps), summarize(runs)
	for _, id := range ids {
		_ = os.RemoveAll(filepath.Join(js.jobs, jobs[id].OutputDir))
	}
	return r
}

// pickupGaps replays workers over the jobs in the order they started: a
// job could start at the later of its creation and the earliest time a
// worker became free; the gap is how much later it did start.
func pickupGaps(jobs []*vod.Job, workers int) []time.Duration {
	js := slices.Clone(jobs)
	slices.SortFunc(js, func(a, b *vod.Job) int { return a.StartedAt.Compare(*b.StartedAt) })
	free := make([]time.Time, workers) // zero: free from the start
	var gaps []time.Duration
	for _, j := range js {
		k := 0
		for i := range free {
			if free[i].Before(free[k]) {
				k = i
			}
		}
		ready := j.CreatedAt
		if free[k].After(ready) {
			ready = free[k]
		}
		gaps = append(gaps, max(0, j.StartedAt.Sub(ready)))
		free[k] = *j.FinishedAt
	}
	return gaps
}

// bareBurst is the same commands run bare.
type bareBurst struct {
	wall time.Duration   // all of them
	sum  time.Duration   // sum of each command's wall time
	cpu  time.Duration   // sum of their CPU
	each []time.Duration // wall time of each (ffmpeg only, or ffprobe + ffmpeg)
}

func (r *bareBurst) String() string {
	return fmt.Sprintf("%.2f s wall (sum of commands %.2f s, CPU %.2f s)", r.wall.Seconds(), r.sum.Seconds(), r.cpu.Seconds())
}

// runBareBurst runs n commands, parallel at a time: ffprobe with probe
// (when not nil), then ffmpeg with args, each job into its own folder.
func runBareBurst(b *testing.B, dir string, n, parallel int, probe []string, args func(out string) []string) *bareBurst {
	b.Helper()
	r := &bareBurst{each: make([]time.Duration, n)}
	cpus := make([]time.Duration, n)
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		out := filepath.Join(dir, strconv.Itoa(i), "snap_00001.jpg")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			b.Fatal(err)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if probe != nil {
				w, c, err := runTimed("ffprobe", probe...)
				r.each[i] += w
				cpus[i] += c
				if err != nil {
					errs[i] = err
					return
				}
			}
			w, c, err := runTimed("ffmpeg", args(out)...)
			r.each[i] += w
			cpus[i] += c
			if err == nil {
				if st, serr := os.Stat(out); serr != nil || st.Size() == 0 {
					err = fmt.Errorf("no image written to %s", out)
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	r.wall = time.Since(start)
	for i := range n {
		if errs[i] != nil {
			b.Fatalf("bare command %d: %v", i+1, errs[i])
		}
		r.sum += r.each[i]
		r.cpu += cpus[i]
	}
	_ = os.RemoveAll(dir)
	return r
}
