//go:build bench

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// BenchmarkRecording measures what recording costs: the same N streams
// (default 20, MPS_BENCH_RECORD_STREAMS) of 1 Mbit/s 720p30 H.264 + AAC are
// published to two fresh mps processes in the same run, one that records
// every stream (a `recording:` rule matching live/*, fragmented MP4 in a
// temporary folder) and one that only serves them live (LL-HLS/DASH, the
// defaults). The publishers are the Go RTMP clients of BenchmarkIngest,
// copying the pre-encoded access units in real time, so no encoder runs
// during the windows.
//
// The two servers run at the same time and are measured over the same
// window, so that both see the same load from the rest of this shared
// machine (one after the other, the live run alone varied by ±15 % in CPU
// between runs); MPS_BENCH_RECORD_SEQUENTIAL=1 runs them one after the
// other instead. The window (MPS_BENCH_DURATION, default 30 s) starts 15 s
// + MPS_BENCH_WARMUP after the first publisher. Over it the benchmark
// measures each mps's CPU (utime+stime from /proc/PID/stat), its peak and
// average RSS (VmRSS every 100 ms), the Go heap it allocated (from
// /metrics), what it wrote (/proc/PID/io) and how fast the recordings
// folder grew, and reports the ratios recording ÷ live.
//
// It fails only on correctness: a publisher error, a stream not packaged at
// the end, or a stream whose archive is missing or empty.
//
// Whether the write path copies media bytes at most once cannot be seen
// from outside the process; the allocation figure here is only a proxy (a
// copy into a reused buffer allocates nothing). The recorder package's own
// test and benchmark (recorder/writepath_test.go) cover it.
func BenchmarkRecording(b *testing.B) {
	n := envInts(b, "MPS_BENCH_RECORD_STREAMS", []int{20})[0]
	sequential := os.Getenv("MPS_BENCH_RECORD_SEQUENTIAL") != ""
	warmup, window := phaseTimes(b)
	src := testSource(b)
	how := "both servers at the same time, over the same window"
	if sequential {
		how = "one server after the other"
	}
	fmt.Printf("machine: %s\nwindow %v from 15 s + %v after the first publisher; %d streams per server; %s\n",
		machine(), window, warmup, n, how)

	mediaRate := src.mediaBytesPerSecond()
	live := &recRun{name: "live", streams: n}
	rec := &recRun{name: "recording", streams: n, recording: true}
	if sequential {
		// The recording run goes first: if the recorder is missing or
		// rejects the configuration, the benchmark stops before spending a
		// live run.
		runRecordingPhases(b, src, n, warmup, window, rec)
		runRecordingPhases(b, src, n, warmup, window, live)
	} else {
		runRecordingPhases(b, src, n, warmup, window, live, rec)
	}

	reportRecordingRun(b, live, mediaRate)
	reportRecordingRun(b, rec, mediaRate)

	cpuX := rec.proc.Cores() / live.proc.Cores()
	peakX := float64(rec.proc.PeakRSS) / float64(live.proc.PeakRSS)
	avgX := float64(rec.avgRSS) / float64(live.avgRSS)
	wall := rec.proc.Wall.Seconds()
	dirRate := float64(rec.dirBytes1-rec.dirBytes0) / wall
	inRate := mediaRate * float64(n)
	lines := []string{
		fmt.Sprintf("%-10s %10s %12s %12s %14s %14s %14s %8s", "run", "mps cores", "peak RSS", "avg RSS", "Go alloc MB/s", "wchar MB/s", "folder MB/s", "busy"),
	}
	for _, r := range []*recRun{live, rec} {
		lines = append(lines, fmt.Sprintf("%-10s %10.3f %12s %12s %14s %14.2f %14s %7.0f%%",
			r.name, r.proc.Cores(), mb(r.proc.PeakRSS), mb(r.avgRSS), r.allocRateString(),
			float64(r.io1.wchar-r.io0.wchar)/r.proc.Wall.Seconds()/1e6, r.dirRateString(), r.busy*100))
	}
	lines = append(lines,
		fmt.Sprintf("recording / live: CPU x%.2f, peak RSS x%.2f, average RSS x%.2f", cpuX, peakX, avgX),
		fmt.Sprintf("extra CPU per recorded stream: %.4f cores (%.2f CPU-s per stream-minute); extra average RSS per stream: %s",
			(rec.proc.Cores()-live.proc.Cores())/float64(n), (rec.proc.Cores()-live.proc.Cores())/float64(n)*60,
			mb((rec.avgRSS-live.avgRSS)/int64(n))),
		fmt.Sprintf("recordings folder grew %.2f MB/s (%.1f Mbit/s) for %.2f MB/s of media pushed: x%.3f of the media bytes",
			dirRate/1e6, dirRate*8/1e6, inRate/1e6, dirRate/inRate),
	)
	if rec.allocBytes >= 0 && live.allocBytes >= 0 {
		extra := rec.allocBytes/rec.proc.Wall.Seconds() - live.allocBytes/live.proc.Wall.Seconds()
		lines = append(lines, fmt.Sprintf("Go heap allocated by recording, per media byte recorded: %.2f (proxy only; not a count of copies)", extra/inRate))
	}
	report(fmt.Sprintf("BenchmarkRecording summary: %d streams recorded vs the same %d streams live", n, n), lines...)

	b.Logf("recording/live (%d streams, %.0f s window): CPU x%.3f (%.3f vs %.3f cores), peak RSS x%.3f (%s vs %s), avg RSS x%.3f (%s vs %s); recordings written %.2f MB/s (x%.3f of media)",
		n, wall, cpuX, rec.proc.Cores(), live.proc.Cores(), peakX, mb(rec.proc.PeakRSS), mb(live.proc.PeakRSS),
		avgX, mb(rec.avgRSS), mb(live.avgRSS), dirRate/1e6, dirRate/inRate)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(cpuX, "cpu-x-live")
	b.ReportMetric(peakX, "peak-rss-x-live")
	b.ReportMetric(avgX, "avg-rss-x-live")
	b.ReportMetric(live.proc.Cores(), "live-cores")
	b.ReportMetric(rec.proc.Cores(), "rec-cores")
	b.ReportMetric(float64(live.proc.PeakRSS)/(1<<20), "live-peak-MB")
	b.ReportMetric(float64(rec.proc.PeakRSS)/(1<<20), "rec-peak-MB")
	b.ReportMetric(dirRate/1e6, "rec-MB/s")
	b.ReportMetric(dirRate/inRate, "bytes-x-media")
}

// recRun is one run of BenchmarkRecording.
type recRun struct {
	name      string // "live" or "recording"
	streams   int
	recording bool
	dir       string // recordings folder (recording run)

	srv    *server
	client *http.Client
	pubs   []*publisher
	mu     sync.Mutex // guards pubErrs

	// during the window
	meter    *meter
	avg      *avgRSS
	alloc0   float64
	gc0      float64
	allocErr error
	units0   int64

	proc     usage
	avgRSS   int64
	startRSS int64
	self     time.Duration
	busy     float64

	unitsRate float64
	io0, io1  procIO
	// allocBytes is go_memstats_alloc_bytes_total's rise in the window; -1
	// when /metrics did not give it.
	allocBytes float64
	gcs        float64
	// dirBytes0 and dirBytes1 are the recordings folder's size at the
	// window's start and end.
	dirBytes0, dirBytes1 int64
	firstArchive         time.Duration // publish start -> every stream has an archive
	windowAt             time.Duration // publish start -> the window's start

	live     int
	archives map[int][]archiveFile // by stream index, after mps stopped
	sidecars map[string]sidecar    // archive path (relative) -> its .json
	apiNote  string
	probe    string
	pubErrs  []string
	problems []string
}

func (r *recRun) allocRateString() string {
	if r.allocBytes < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.allocBytes/r.proc.Wall.Seconds()/1e6)
}

func (r *recRun) dirRateString() string {
	if !r.recording {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(r.dirBytes1-r.dirBytes0)/r.proc.Wall.Seconds()/1e6)
}

// archiveFile is one media file in the recordings folder.
type archiveFile struct {
	rel  string
	size int64
}

// sidecar is the part of an archive's .json the benchmark reads.
type sidecar struct {
	State    string  `json:"state"`
	Duration float64 `json:"duration"`
	Size     int64   `json:"size"`
	Error    string  `json:"error"`
}

// recordingConfig records every stream of the live application, source
// only, as fragmented MP4 below dir, with the default path template.
func recordingConfig(dir string) string {
	return benchConfig + fmt.Sprintf(`
recording:
  dir: %q
  format: fmp4
  rules:
    - match: "live/*"
      renditions: [source]
`, dir)
}

// recStreamName is the name of stream i.
func recStreamName(i int) string { return fmt.Sprintf("live/rec%d", i) }

// runRecordingPhases runs the phases at the same time: each gets a fresh
// server and n publishers (started in turns, over two seconds), and all are
// measured over the same window.
func runRecordingPhases(b *testing.B, src *source, n int, warmup, window time.Duration, phases ...*recRun) {
	for _, r := range phases {
		r.setup(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	// Publishers start over two seconds, so that their keyframes (and the
	// recorder's fragments) do not all fall on the same instant.
	start := time.Now()
	for i := range n {
		for _, r := range phases {
			r.publish(ctx, &wg, src, i)
		}
		time.Sleep(2 * time.Second / time.Duration(n))
	}
	for _, r := range phases {
		r.waitReady(b, ctx, start)
	}
	// Every run measures the same stretch of each stream's life: from a
	// fixed time after the first publisher started, when the packager's
	// segment window is full (9 segments of 2 s), plus the warm-up.
	settle := 15*time.Second + warmup
	if wait := time.Until(start.Add(settle)); wait > 0 {
		time.Sleep(wait)
	}
	for _, r := range phases {
		r.windowAt = time.Since(start)
		r.begin(b, ctx)
	}
	time.Sleep(window)
	for _, r := range phases {
		r.end(b, ctx)
	}
	for _, r := range phases {
		r.checkLive(ctx)
	}
	cancel()
	wg.Wait()
	for _, r := range phases {
		r.finish(b)
	}
}

// setup starts the phase's server.
func (r *recRun) setup(b *testing.B) {
	r.allocBytes = -1
	cfg := benchConfig
	if r.recording {
		r.dir = filepath.Join(b.TempDir(), "recordings")
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			b.Fatal(err)
		}
		cfg = recordingConfig(r.dir)
	}
	r.srv = startServer(b, cfg)
	r.startRSS = idleRSS(b, r.srv.PID(), time.Second)
	r.client = newHTTPClient(8)
}

// publish starts the publisher of stream i.
func (r *recRun) publish(ctx context.Context, wg *sync.WaitGroup, src *source, i int) {
	p := &publisher{URL: r.srv.RTMPURL(recStreamName(i)), Src: src}
	r.pubs = append(r.pubs, p)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.run(ctx); err != nil {
			r.mu.Lock()
			r.pubErrs = append(r.pubErrs, err.Error())
			r.mu.Unlock()
		}
	}()
}

// waitReady waits until every stream is packaged and, when recording, has
// a non-empty archive, so that the window measures steady recording.
func (r *recRun) waitReady(b *testing.B, ctx context.Context, start time.Time) {
	s := r.srv
	for i := range r.streams {
		u := s.URL("/" + recStreamName(i) + "/t0.m3u8")
		if err := waitHTTP(ctx, r.client, u, 30*time.Second); err != nil {
			b.Fatalf("%s run, stream %d: %v\nmps: %s", r.name, i, err, testutil.Tail(s.Log.String(), 30))
		}
	}
	if !r.recording {
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, _ := scanArchives(r.dir, r.streams)
		missing := 0
		for i := range r.streams {
			if totalSize(files[i]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			r.firstArchive = time.Since(start)
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("recording run: %d of %d streams have no non-empty archive in %s %v after publishing started\nfolder:\n%s\nmps:\n%s",
				missing, r.streams, r.dir, time.Since(start).Round(time.Second), listTree(r.dir, 30), testutil.Tail(s.Log.String(), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *recRun) units() (t int64) {
	for _, p := range r.pubs {
		t += p.Frames.Load()
	}
	return t
}

// begin starts the measured window.
func (r *recRun) begin(b *testing.B, ctx context.Context) {
	pid := r.srv.PID()
	r.meter = startMeter(b, pid)
	r.avg = startAvgRSS(pid)
	r.io0, _ = readProcIO(pid)
	r.alloc0, r.gc0, r.allocErr = scrapeGoAlloc(ctx, r.client, r.srv.URL("/metrics"))
	r.dirBytes0 = dirSize(r.dir)
	r.units0 = r.units()
}

// end ends the measured window.
func (r *recRun) end(b *testing.B, ctx context.Context) {
	pid := r.srv.PID()
	w := r.meter.Stop(b)
	r.avgRSS = r.avg.Stop()
	r.io1, _ = readProcIO(pid)
	alloc1, gc1, err1 := scrapeGoAlloc(ctx, r.client, r.srv.URL("/metrics"))
	r.dirBytes1 = dirSize(r.dir)
	r.unitsRate = float64(r.units()-r.units0) / w.Procs[0].Wall.Seconds()
	r.proc, r.self, r.busy = w.Procs[0], w.SelfCPU, w.MachineBusy
	if r.allocErr == nil && err1 == nil {
		r.allocBytes, r.gcs = alloc1-r.alloc0, gc1-r.gc0
	} else {
		b.Logf("%s run: no Go allocation figure from /metrics: %v %v", r.name, r.allocErr, err1)
	}
}

// checkLive counts the streams still packaged and asks the recordings API.
func (r *recRun) checkLive(ctx context.Context) {
	for i := range r.streams {
		if err := waitHTTP(ctx, r.client, r.srv.URL("/"+recStreamName(i)+"/t0.m3u8"), 5*time.Second); err == nil {
			r.live++
		}
	}
	if r.recording {
		r.apiNote = recordingsAPINote(ctx, r.client, r.srv, r.streams)
	}
}

// finish stops the server (a clean stop closes the archives) and checks
// the phase.
func (r *recRun) finish(b *testing.B) {
	r.srv.Stop(b)
	r.problems = r.srv.Problems()
	if len(r.pubErrs) > 0 {
		b.Errorf("%s run: %d publishers failed: %s", r.name, len(r.pubErrs), r.pubErrs[0])
	}
	if r.live < r.streams {
		b.Errorf("%s run: only %d of %d streams had a playlist at the end", r.name, r.live, r.streams)
	}
	if r.recording {
		checkArchives(b, r, r.srv)
	}
}

// checkArchives fails the benchmark when a stream's archive is missing or
// empty, and notes what the sidecars and ffprobe say.
func checkArchives(b *testing.B, r *recRun, s *server) {
	files, sidecars := scanArchives(r.dir, r.streams)
	r.archives, r.sidecars = files, sidecars
	var bad []string
	for i := range r.streams {
		if len(files[i]) == 0 {
			bad = append(bad, fmt.Sprintf("%s: no archive", recStreamName(i)))
			continue
		}
		for _, f := range files[i] {
			if f.size == 0 {
				bad = append(bad, fmt.Sprintf("%s: %s is empty", recStreamName(i), f.rel))
			}
		}
	}
	if len(bad) > 0 {
		b.Errorf("recording run: %d archive problems in %s:\n  %s\nfolder:\n%s\nmps:\n%s", len(bad), r.dir,
			strings.Join(bad[:min(len(bad), 10)], "\n  "), listTree(r.dir, 40), testutil.Tail(s.Log.String(), 40))
	}
	// Informative: does one archive open, and how long is it?
	if len(files[0]) > 0 {
		if _, err := exec.LookPath("ffprobe"); err == nil {
			f := filepath.Join(r.dir, files[0][0].rel)
			out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name",
				"-of", "compact=p=0:nk=1", f).CombinedOutput()
			r.probe = strings.Join(strings.Fields(string(out)), " ")
			if err != nil {
				r.probe = fmt.Sprintf("ffprobe failed (%v): %s", err, r.probe)
			}
			r.probe = files[0][0].rel + ": " + r.probe
		}
	}
}

// scanArchives lists the media files (not the .json sidecars) below dir by
// stream, from the default path template's leading {name}, and reads the
// sidecars.
func scanArchives(dir string, n int) (map[int][]archiveFile, map[string]sidecar) {
	files := map[int][]archiveFile{}
	sidecars := map[string]sidecar{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if strings.HasSuffix(rel, ".json") {
			var sc sidecar
			if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &sc) == nil {
				sidecars[strings.TrimSuffix(rel, ".json")] = sc
			}
			return nil
		}
		switch filepath.Ext(rel) {
		case ".mp4", ".m4s", ".m3u8":
		default:
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		for i := range n {
			if strings.HasPrefix(rel, recStreamName(i)+"/") {
				files[i] = append(files[i], archiveFile{rel: rel, size: info.Size()})
			}
		}
		return nil
	})
	return files, sidecars
}

func totalSize(files []archiveFile) (t int64) {
	for _, f := range files {
		t += f.size
	}
	return t
}

// dirSize is the total size of the regular files below dir (0 for "").
func dirSize(dir string) (t int64) {
	if dir == "" {
		return 0
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				t += info.Size()
			}
		}
		return nil
	})
	return t
}

// listTree lists up to limit files below dir with their sizes, for failures.
func listTree(dir string, limit int) string {
	var lines []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, fmt.Sprintf("  %s: %v", p, err))
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if info, err := d.Info(); err == nil && !d.IsDir() {
			lines = append(lines, fmt.Sprintf("  %s (%d bytes)", rel, info.Size()))
		}
		return nil
	})
	if len(lines) == 0 {
		return "  (empty)"
	}
	if len(lines) > limit {
		lines = append(lines[:limit], fmt.Sprintf("  ... %d more", len(lines)-limit))
	}
	return strings.Join(lines, "\n")
}

// recordingsAPINote asks the recordings API about stream 0; informative
// only (the API may lag the recorder while it is being built).
func recordingsAPINote(ctx context.Context, client *http.Client, s *server, n int) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("/api/v1/recordings?limit=1000"), nil)
	resp, err := client.Do(req)
	if err != nil {
		return "GET /api/v1/recordings: " + err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("GET /api/v1/recordings: %s %s", resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	var page struct {
		Recordings []struct {
			Stream string `json:"stream"`
			State  string `json:"state"`
			Size   int64  `json:"size"`
		} `json:"recordings"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return "GET /api/v1/recordings: " + err.Error()
	}
	streams := map[string]bool{}
	states := map[string]int{}
	for _, rec := range page.Recordings {
		streams[rec.Stream] = true
		states[rec.State]++
	}
	return fmt.Sprintf("GET /api/v1/recordings (while recording): total %d, %d of %d streams listed, states %v",
		page.Total, len(streams), n, states)
}

// ---------------------------------------------------------------------------
// Measurements

// mediaBytesPerSecond is the source's media payload per second of one
// stream, as an MP4 sample holds it (H.264 NAL units with 4-byte lengths,
// raw AAC frames).
func (s *source) mediaBytesPerSecond() float64 {
	var t int
	for _, u := range s.units {
		if u.video {
			for _, nalu := range u.au {
				t += 4 + len(nalu)
			}
		} else {
			t += len(u.frame)
		}
	}
	return float64(t) / s.loop.Seconds()
}

// avgRSS samples a process's VmRSS every 100 ms and averages it.
type avgRSS struct {
	stop chan struct{}
	done chan struct{}
	sum  int64
	n    int64
}

func startAvgRSS(pid int) *avgRSS {
	a := &avgRSS{stop: make(chan struct{}), done: make(chan struct{})}
	sample := func() {
		if rss, err := procRSS(pid); err == nil {
			a.sum += rss
			a.n++
		}
	}
	sample()
	go func() {
		defer close(a.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return a
}

// Stop returns the average RSS in bytes.
func (a *avgRSS) Stop() int64 {
	close(a.stop)
	<-a.done
	if a.n == 0 {
		return 0
	}
	return a.sum / a.n
}

// procIO is a process's /proc/PID/io counters.
type procIO struct {
	wchar, syscw, writeBytes int64
}

func readProcIO(pid int) (procIO, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return procIO{}, err
	}
	defer f.Close()
	var p procIO
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch k {
		case "wchar":
			p.wchar = n
		case "syscw":
			p.syscw = n
		case "write_bytes":
			p.writeBytes = n
		}
	}
	return p, sc.Err()
}

// scrapeGoAlloc reads go_memstats_alloc_bytes_total and the GC count from
// mps's /metrics.
func scrapeGoAlloc(ctx context.Context, client *http.Client, url string) (alloc, gcs float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "go_memstats_alloc_bytes_total "); ok {
			alloc, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
			found = err == nil
		}
		if v, ok := strings.CutPrefix(line, "go_gc_duration_seconds_count "); ok {
			gcs, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("GET %s: no go_memstats_alloc_bytes_total", url)
	}
	return alloc, gcs, sc.Err()
}

// ---------------------------------------------------------------------------
// Output

func reportRecordingRun(b *testing.B, r *recRun, mediaRate float64) {
	wall := r.proc.Wall.Seconds()
	perPass := float64(len(testSource(b).units)) / testSource(b).loop.Seconds()
	what := "served live only (LL-HLS/DASH packaging, no recording)"
	if r.recording {
		what = "served live and every stream recorded (fmp4, source rendition)"
	}
	lines := []string{
		fmt.Sprintf("window %.1f s from %.1f s after the first publisher started; %d RTMP publishers of %.2f Mbit/s media each, %s",
			wall, r.windowAt.Seconds(), r.streams, mediaRate*8/1e6, what),
		fmt.Sprintf("mps CPU: %.2f s = %.3f cores; per stream %.4f cores", r.proc.CPU.Seconds(), r.proc.Cores(), r.proc.Cores()/float64(r.streams)),
		fmt.Sprintf("mps RSS: peak %s, average %s, end %s, fresh server %s", mb(r.proc.PeakRSS), mb(r.avgRSS), mb(r.proc.EndRSS), mb(r.startRSS)),
	}
	if r.allocBytes >= 0 {
		lines = append(lines, fmt.Sprintf("Go heap allocated: %.1f MB/s (%.2f bytes per media byte pushed), %.1f GCs/s",
			r.allocBytes/wall/1e6, r.allocBytes/wall/(mediaRate*float64(r.streams)), r.gcs/wall))
	}
	lines = append(lines, fmt.Sprintf("/proc/PID/io: wchar %.2f MB/s, %.0f write syscalls/s, write_bytes (to storage) %.2f MB/s",
		float64(r.io1.wchar-r.io0.wchar)/wall/1e6, float64(r.io1.syscw-r.io0.syscw)/wall, float64(r.io1.writeBytes-r.io0.writeBytes)/wall/1e6))
	if r.recording {
		grew := float64(r.dirBytes1 - r.dirBytes0)
		in := mediaRate * float64(r.streams) * wall
		lines = append(lines,
			fmt.Sprintf("recordings folder: grew %.1f MB in the window = %.2f MB/s (%.1f Mbit/s), x%.3f of the %.1f MB of media pushed; every stream had an archive %.1f s after the first publisher started",
				grew/1e6, grew/wall/1e6, grew*8/wall/1e6, grew/in, in/1e6, r.firstArchive.Seconds()))
		var files, empty int
		var total int64
		for i := range r.streams {
			files += len(r.archives[i])
			total += totalSize(r.archives[i])
			for _, f := range r.archives[i] {
				if f.size == 0 {
					empty++
				}
			}
		}
		states := map[string]int{}
		for _, sc := range r.sidecars {
			states[sc.State]++
		}
		var st []string
		for k, v := range states {
			st = append(st, fmt.Sprintf("%s=%d", k, v))
		}
		sort.Strings(st)
		lines = append(lines, fmt.Sprintf("after mps stopped: %d archive files for %d streams, %s in all, %d empty; sidecar states: %s",
			files, r.streams, mb(total), empty, strings.Join(st, " ")))
		if r.probe != "" {
			lines = append(lines, "ffprobe "+r.probe)
		}
		if r.apiNote != "" {
			lines = append(lines, r.apiNote)
		}
	}
	lines = append(lines,
		fmt.Sprintf("publishers wrote %.0f access units/s (%.0f/s in real time); streams live at the end: %d of %d; publisher errors: %d",
			r.unitsRate, perPass*float64(r.streams), r.live, r.streams, len(r.pubErrs)),
		fmt.Sprintf("publishers (this process, all of the run's publishers): %.2f cores; machine busy %.0f%%", r.self.Seconds()/wall, r.busy*100),
		fmt.Sprintf("mps warnings/errors in the log: %d", len(r.problems)),
	)
	for i, e := range r.pubErrs {
		if i == 5 {
			break
		}
		lines = append(lines, "  publisher: "+e)
	}
	for i, p := range r.problems {
		if i == 8 {
			lines = append(lines, fmt.Sprintf("  ... %d more", len(r.problems)-8))
			break
		}
		lines = append(lines, "  log: "+p)
	}
	report(fmt.Sprintf("BenchmarkRecording %s run", r.name), lines...)
}
