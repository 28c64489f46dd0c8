//go:build bench

package bench

// Shared helpers: the built binary, starting and stopping `mps serve` on
// free loopback ports, child processes, /proc sampling, test media made with
// ffmpeg, settings from the environment and small statistics.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

var (
	workDir  string // temporary folder of this run
	mpsBin   string // the built binary
	buildErr error
)

func TestMain(m *testing.M) {
	// The readers and publishers share the machine with the server: collect
	// garbage less often, so that they take less of it.
	debug.SetGCPercent(400)
	code := func() int {
		root, err := testutil.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		workDir, err = os.MkdirTemp("", "mps-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		if os.Getenv("MPS_BENCH_KEEP") != "" {
			fmt.Fprintln(os.Stderr, "bench: keeping", workDir)
		} else {
			defer os.RemoveAll(workDir)
		}
		mpsBin = filepath.Join(workDir, "mps")
		cmd := exec.Command("go", "build", "-o", mpsBin, "./cmd/mps")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/mps: %v\n%s", err, out)
		}
		return m.Run()
	}()
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// Settings

// envDuration reads a duration such as "30s" from the environment.
func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a positive duration such as 30s", name, v)
	}
	return d
}

// envInts reads a comma-separated list of positive numbers.
func envInts(tb testing.TB, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q: want positive numbers separated by commas", name, v)
		}
		out = append(out, n)
	}
	return out
}

// phaseTimes are the warm-up and measured window of every phase.
func phaseTimes(tb testing.TB) (warmup, window time.Duration) {
	return envDuration(tb, "MPS_BENCH_WARMUP", 5*time.Second), envDuration(tb, "MPS_BENCH_DURATION", 30*time.Second)
}

// ---------------------------------------------------------------------------
// Process output

// ---------------------------------------------------------------------------
// The server

// benchConfig is the shipped default configuration (2 s segments, 200 ms
// parts) with a quieter log: info would be fine, debug logs every request.
const benchConfig = `
log:
  level: info
`

// server is one running `mps serve`.
type server struct {
	RTMPAddr string
	HTTPAddr string
	Log      *testutil.LogBuffer
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
}

// startServer starts mps with config merged over the defaults and waits for
// /healthz. It is stopped at cleanup.
func startServer(tb testing.TB, config string) *server {
	tb.Helper()
	if buildErr != nil {
		tb.Fatalf("mps binary not built: %v", buildErr)
	}
	var lastErr error
	for range 3 {
		s, err := tryStartServer(tb, config)
		if err == nil {
			tb.Cleanup(func() {
				s.Stop(tb)
				for _, bad := range []string{"panic:", "fatal error:", "DATA RACE"} {
					if strings.Contains(s.Log.String(), bad) {
						tb.Errorf("mps log contains %q:\n%s", bad, testutil.Tail(s.Log.String(), 80))
					}
				}
			})
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	tb.Fatalf("start mps: %v", lastErr)
	return nil
}

func tryStartServer(tb testing.TB, config string) (*server, error) {
	dir := tb.TempDir()
	cfgPath := filepath.Join(dir, "mps.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	s := &server{
		RTMPAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(tb)),
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(tb)),
		Log:      &testutil.LogBuffer{},
		exited:   make(chan struct{}),
	}
	s.cmd = exec.Command(mpsBin, "serve", "--config", cfgPath)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "MPS_RTMP_ADDRESS="+s.RTMPAddr, "MPS_HTTP_ADDRESS="+s.HTTPAddr)
	s.cmd.Stdout, s.cmd.Stderr = s.Log, s.Log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("mps exited before it was healthy (%v):\n%s", s.exitErr, testutil.Tail(s.Log.String(), 40))
		default:
		}
		resp, err := client.Get("http://" + s.HTTPAddr + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
			return nil, fmt.Errorf("mps not healthy after 30 s:\n%s", testutil.Tail(s.Log.String(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the server's process id.
func (s *server) PID() int { return s.cmd.Process.Pid }

// Alive reports whether the server is still running.
func (s *server) Alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Stop ends the server with SIGTERM (SIGKILL after 15 s).
func (s *server) Stop(tb testing.TB) {
	if !s.Alive() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		tb.Errorf("mps did not exit within 15 s of SIGTERM")
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

// URL is the http URL of path.
func (s *server) URL(path string) string { return "http://" + s.HTTPAddr + path }

// RTMPURL is the URL that publishes stream name ("live/x").
func (s *server) RTMPURL(name string) string { return "rtmp://" + s.RTMPAddr + "/" + name }

// Problems returns the server's warning and error log lines.
func (s *server) Problems() []string {
	return s.Log.LinesWithAny("level=WARN", "level=ERROR", "panic:")
}

// ---------------------------------------------------------------------------
// Child processes (ffmpeg)

// proc is a running child process.
type proc struct {
	cmd    *exec.Cmd
	Stderr *testutil.LogBuffer
	done   chan struct{}
	err    error
}

// startProc runs name with args until Stop or cleanup.
func startProc(tb testing.TB, name string, args ...string) *proc {
	tb.Helper()
	p := &proc{cmd: exec.Command(name, args...), Stderr: &testutil.LogBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.Stderr
	p.cmd.Stderr = p.Stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(p.Stop)
	return p
}

func (p *proc) PID() int { return p.cmd.Process.Pid }

func (p *proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop ends the process with SIGTERM, then SIGKILL, and waits for it.
func (p *proc) Stop() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// ---------------------------------------------------------------------------
// /proc sampling

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; Linux fixes it
// at 100 for user space.
const clockTicks = 100

// procCPU returns a process's user+system CPU time so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime %q %q", pid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// procRSS returns a process's resident set size (VmRSS) in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status VmRSS %q: %v", pid, v, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// systemCPU returns the machine's busy and total jiffies from /proc/stat.
func systemCPU() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// usage is what a process used during a measured window.
type usage struct {
	Wall    time.Duration
	CPU     time.Duration // user+system
	PeakRSS int64
	EndRSS  int64
}

// Cores is the average number of cores the process kept busy.
func (u usage) Cores() float64 { return u.CPU.Seconds() / u.Wall.Seconds() }

// meter measures processes over a window: CPU time from the deltas of
// /proc/PID/stat, RSS as the peak of VmRSS sampled every 100 ms.
type meter struct {
	pids   []int
	start  time.Time
	cpu0   []time.Duration
	busy0  int64
	total0 int64
	self0  time.Duration
	mu     sync.Mutex
	peak   []int64
	last   []int64
	stop   chan struct{}
	done   chan struct{}
}

// startMeter starts measuring pids (which must be running).
func startMeter(tb testing.TB, pids ...int) *meter {
	tb.Helper()
	m := &meter{pids: pids, peak: make([]int64, len(pids)), last: make([]int64, len(pids)),
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, pid := range pids {
		c, err := procCPU(pid)
		if err != nil {
			tb.Fatalf("meter: %v", err)
		}
		m.cpu0 = append(m.cpu0, c)
	}
	m.self0, _ = procCPU(os.Getpid())
	m.busy0, m.total0 = systemCPU()
	m.start = time.Now()
	m.sample()
	go func() {
		defer close(m.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m
}

func (m *meter) sample() {
	for i, pid := range m.pids {
		rss, err := procRSS(pid)
		if err != nil {
			continue
		}
		m.mu.Lock()
		m.last[i] = rss
		m.peak[i] = max(m.peak[i], rss)
		m.mu.Unlock()
	}
}

// window is the result of a meter: one usage per pid, plus the benchmark
// process's own CPU and the whole machine's load.
type window struct {
	Procs       []usage
	SelfCPU     time.Duration // this process: publishers and readers
	MachineBusy float64       // share of all cores busy, 0..1
}

// Stop ends the window.
func (m *meter) Stop(tb testing.TB) window {
	tb.Helper()
	m.sample()
	close(m.stop)
	<-m.done
	wall := time.Since(m.start)
	var w window
	for i, pid := range m.pids {
		c, err := procCPU(pid)
		if err != nil {
			tb.Fatalf("meter: %v (did the process exit?)", err)
		}
		m.mu.Lock()
		w.Procs = append(w.Procs, usage{Wall: wall, CPU: c - m.cpu0[i], PeakRSS: m.peak[i], EndRSS: m.last[i]})
		m.mu.Unlock()
	}
	self, _ := procCPU(os.Getpid())
	w.SelfCPU = self - m.self0
	busy, total := systemCPU()
	if total > m.total0 {
		w.MachineBusy = float64(busy-m.busy0) / float64(total-m.total0)
	}
	return w
}

// idleRSS samples a process's RSS for d and returns the peak.
func idleRSS(tb testing.TB, pid int, d time.Duration) int64 {
	m := startMeter(tb, pid)
	time.Sleep(d)
	return m.Stop(tb).Procs[0].PeakRSS
}

// ---------------------------------------------------------------------------
// Test media

// media is the pre-encoded source every publisher copies: 720p30 H.264
// (about 900 kbit/s, a keyframe every 2 s, like OBS) and 48 kHz stereo AAC
// at 96 kbit/s, about 1 Mbit/s in all. It is encoded once per run, so no
// encoder runs while the server is measured.
type media struct {
	FLV      string // for ffmpeg and the Go publisher
	Duration time.Duration
}

const mediaDuration = 30 * time.Second

var (
	mediaOnce sync.Once
	mediaVal  media
	mediaErr  error
)

func testMedia(tb testing.TB) media {
	tb.Helper()
	mediaOnce.Do(func() {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			mediaErr = fmt.Errorf("ffmpeg is not installed (make installs it): %w", err)
			return
		}
		m := media{FLV: filepath.Join(workDir, "src.flv"), Duration: mediaDuration}
		secs := strconv.Itoa(int(mediaDuration.Seconds()))
		encode := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", secs,
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
			"-b:v", "900k", "-maxrate", "900k", "-bufsize", "1800k",
			"-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
			"-c:a", "aac", "-b:a", "96k", "-ac", "2",
			"-f", "flv", m.FLV}
		start := time.Now()
		if out, err := exec.Command("ffmpeg", encode...).CombinedOutput(); err != nil {
			mediaErr = fmt.Errorf("encode test media: %v\n%s", err, out)
			return
		}
		st, _ := os.Stat(m.FLV)
		fmt.Printf("test media: %s of 1280x720p30 H.264 + AAC, %.0f kbit/s, encoded in %.1f s\n",
			mediaDuration, float64(st.Size())*8/mediaDuration.Seconds()/1000, time.Since(start).Seconds())
		mediaVal = m
	})
	if mediaErr != nil {
		tb.Fatal(mediaErr)
	}
	return mediaVal
}

// ffmpegPublish copies the test media in a loop, in real time, to an RTMP URL.
func ffmpegPublish(tb testing.TB, url string) *proc {
	tb.Helper()
	m := testMedia(tb)
	return startProc(tb, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-stream_loop", "-1", "-i", m.FLV, "-c", "copy", "-f", "flv", url)
}

// ---------------------------------------------------------------------------
// Statistics and output

// dist summarizes a set of durations.
type dist struct {
	N                  int
	P50, P95, P99, Max time.Duration
}

func summarize(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
	}
	return dist{N: len(s), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: s[len(s)-1]}
}

func (d dist) String() string {
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)", ms(d.P50), ms(d.P95), ms(d.P99), ms(d.Max), d.N)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// report prints lines under a heading, so they can be copied to RESULTS.md.
func report(title string, lines ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== %s\n", title)
	for _, l := range lines {
		b.WriteString("    " + l + "\n")
	}
	fmt.Print(b.String())
}

// machine describes where the benchmark ran.
func machine() string {
	host, _ := os.Hostname()
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%s, %d cores (%s), %s, load before: %s", host, runtime.NumCPU(), model, runtime.Version(), load)
}

// waitHTTP polls url until it answers 200, at most timeout.
func waitHTTP(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("GET %s: no 200 within %v (last: %s)", url, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
