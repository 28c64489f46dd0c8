//go:build bench

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// BenchmarkLadder measures the shipped default ladder (passthrough source +
// 720p/480p/360p x264 superfast, AAC 128k) on a 1080p30 publisher, against
// a bare ffmpeg that does the same transcode, in the same run:
//
//  1. mps: an `ffmpeg -re -stream_loop -1 -c copy -f flv` publisher pushes to
//     rtmp://HOST/live/ladder?ladder=default. Measured: the CPU of mps plus
//     its ffmpeg child, the ladder's speed (frames the child encoded per
//     second of wall time, from its -progress reports, ÷ 30 fps), and the
//     time from the publisher's start to the first segment (and first part)
//     in the playlist of every rung.
//  2. ffmpeg: one `ffmpeg -re -stream_loop -1 -i src.flv` that decodes once,
//     splits into the same three rungs with the same encoder settings as the
//     ladder's child (copied from transcoder/args.go, plus the same thumbnail
//     output) and writes MPEG-TS files. Measured the same way.
//  3. headroom: the same bare ffmpeg without -re, on MPS_BENCH_DURATION of
//     media, to show how much faster than real time the machine can run the
//     ladder at all (both runs above are capped at 1.0x by -re and the live
//     source).
//
// The headline is the CPU ratio mps ÷ bare ffmpeg (target ≤ 1.05) and each
// side's speed (target ≥ 1.0x). Nothing asserts them: the machine is shared.
func BenchmarkLadder(b *testing.B) {
	warmup, window := phaseTimes(b)
	testutil.RequireTools(b, "ffmpeg")
	m := ladderTestMedia(b)
	fmt.Printf("machine: %s\nwarm-up %v, window %v per run\n", machine(), warmup, window)

	mr := runLadderMPS(b, m, warmup, window)
	br := runLadderBare(b, m, warmup, window, true)
	hr := runLadderBare(b, m, 0, window, false)

	ratio := mr.cores() / br.cores()
	// CPU per encoded frame: the window's cores over the frame rate
	// measured across (nearly) the same window.
	perFrame := func(r *ladderRun) float64 { return r.cores() / (float64(r.frames) / r.frameSpan.Seconds()) * 1000 }
	lines := []string{
		fmt.Sprintf("input: %s", m.Desc),
		fmt.Sprintf("window: mps %.1f s, bare %.1f s (after %v warm-up)", mr.wall.Seconds(), br.wall.Seconds(), warmup),
		fmt.Sprintf("mps:  %.2f CPU-s = %.3f cores (mps %.3f + ffmpeg child %.3f); speed %.3fx (%d frames in %.1f s), ffmpeg's own speed %s; %.2f CPU-ms/frame",
			mr.cpu().Seconds(), mr.cores(), mr.procs[0].Cores(), mr.childCores(), mr.speed, mr.frames, mr.frameSpan.Seconds(), mr.ffSpeed, perFrame(mr)),
		fmt.Sprintf("bare: %.2f CPU-s = %.3f cores (one ffmpeg); speed %.3fx (%d frames in %.1f s), ffmpeg's own speed %s; %.2f CPU-ms/frame",
			br.cpu().Seconds(), br.cores(), br.speed, br.frames, br.frameSpan.Seconds(), br.ffSpeed, perFrame(br)),
		fmt.Sprintf("CPU mps / bare: x%.3f (target <= 1.05); per encoded frame x%.3f; mps's own process alone is %.1f%% of the bare ffmpeg",
			ratio, perFrame(mr)/perFrame(br), 100*mr.procs[0].Cores()/br.cores()),
		fmt.Sprintf("headroom (bare ffmpeg, no -re, %v of media): speed %.3fx (%.1f s wall), %.3f cores, %.2f CPU-ms/frame",
			window, hr.speed, hr.wall.Seconds(), hr.cores(), perFrame(hr)),
		fmt.Sprintf("publisher (ffmpeg -c copy -f flv): %.4f cores", mr.procs[len(mr.procs)-1].Cores()),
		fmt.Sprintf("machine busy: mps window %.0f%% (other load %.2f cores), bare window %.0f%% (other load %.2f cores), headroom %.0f%% (other load %.2f cores)",
			mr.busy*100, mr.otherLoad(), br.busy*100, br.otherLoad(), hr.busy*100, hr.otherLoad()),
	}
	var firsts []string
	for _, f := range mr.firsts {
		firsts = append(firsts, fmt.Sprintf("%s %.2f s (part %.2f s)", f.rung, f.segment.Seconds(), f.part.Seconds()))
	}
	lines = append(lines, "publish -> first segment listed: "+strings.Join(firsts, ", "))
	if mr.childStart > 0 {
		lines = append(lines, fmt.Sprintf("publish -> ffmpeg child seen: %.2f s", mr.childStart.Seconds()))
	}
	lines = append(lines, fmt.Sprintf("ladder: state %s, restarts %d, child drop/dup frames %d/%d; mps warnings/errors in the log: %d",
		mr.state, mr.restarts, mr.drop, mr.dup, len(mr.problems)))
	for i, p := range mr.problems {
		if i == 5 {
			lines = append(lines, fmt.Sprintf("  ... %d more", len(mr.problems)-5))
			break
		}
		lines = append(lines, "  log: "+p)
	}
	report("BenchmarkLadder (default ladder on 1080p30: mps vs bare ffmpeg)", lines...)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ratio, "cpu-x-ffmpeg")
	b.ReportMetric(mr.cores(), "mps-cores")
	b.ReportMetric(br.cores(), "ffmpeg-cores")
	b.ReportMetric(mr.speed, "mps-speed")
	b.ReportMetric(br.speed, "ffmpeg-speed")
	b.ReportMetric(hr.speed, "max-speed")
	var worst time.Duration
	for _, f := range mr.firsts {
		worst = max(worst, f.segment)
	}
	b.ReportMetric(worst.Seconds(), "s-first-seg")
}

// ---------------------------------------------------------------------------
// Input

// ladderMedia is the 1080p30 source of BenchmarkLadder, encoded once.
type ladderMedia struct {
	FLV      string
	Duration time.Duration
	FPS      float64
	Desc     string
}

const ladderMediaDuration = 40 * time.Second

var (
	ladderMediaOnce sync.Once
	ladderMediaVal  ladderMedia
	ladderMediaErr  error
)

// ladderTestMedia encodes 40 s of 1920x1080p30 testsrc2 (x264 ultrafast,
// 4.5 Mbit/s, a keyframe every 2 s, like a streaming encoder) with a 48 kHz
// stereo AAC sine, to FLV, so that the publisher only copies it.
func ladderTestMedia(tb testing.TB) ladderMedia {
	tb.Helper()
	ladderMediaOnce.Do(func() {
		m := ladderMedia{FLV: filepath.Join(workDir, "ladder-src.flv"), Duration: ladderMediaDuration, FPS: 30}
		secs := strconv.Itoa(int(m.Duration.Seconds()))
		start := time.Now()
		out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", secs,
			"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
			"-b:v", "4500k", "-maxrate", "4500k", "-bufsize", "9000k",
			"-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
			"-c:a", "aac", "-b:a", "128k", "-ac", "2",
			"-f", "flv", m.FLV).CombinedOutput()
		if err != nil {
			ladderMediaErr = fmt.Errorf("encode ladder test media: %v\n%s", err, out)
			return
		}
		st, err := os.Stat(m.FLV)
		if err != nil {
			ladderMediaErr = err
			return
		}
		m.Desc = fmt.Sprintf("%s of 1920x1080p30 testsrc2 H.264 (x264 ultrafast, GOP 2 s) + 48 kHz stereo AAC 128k, %.0f kbit/s, FLV, looped",
			m.Duration, float64(st.Size())*8/m.Duration.Seconds()/1000)
		fmt.Printf("ladder test media: %s; encoded in %.1f s\n", m.Desc, time.Since(start).Seconds())
		ladderMediaVal = m
	})
	if ladderMediaErr != nil {
		tb.Fatal(ladderMediaErr)
	}
	return ladderMediaVal
}

// ---------------------------------------------------------------------------
// Results

// ladderRun is one measured run of BenchmarkLadder.
type ladderRun struct {
	procs []usage // measured processes: mps, its child, the publisher; or the bare ffmpeg
	// nCounted is how many of procs count as the ladder's CPU (mps and its
	// child, or the bare ffmpeg); the others (the publisher) are shown
	// apart.
	nCounted  int
	wall      time.Duration
	self      time.Duration
	busy      float64
	frames    int64         // frames encoded (first output) between two progress reports
	frameSpan time.Duration // time between those reports
	speed     float64       // frames / frameSpan / fps
	ffSpeed   string        // ffmpeg's own speed= figure at the end of the window

	// mps only
	firsts     []rungFirst
	childStart time.Duration
	state      string
	restarts   int
	drop, dup  int64
	problems   []string
}

type rungFirst struct {
	rung          string
	part, segment time.Duration
}

func (r *ladderRun) cpu() (t time.Duration) {
	for _, u := range r.procs[:r.nCounted] {
		t += u.CPU
	}
	return t
}

func (r *ladderRun) cores() float64 { return r.cpu().Seconds() / r.wall.Seconds() }

func (r *ladderRun) childCores() float64 { return r.cores() - r.procs[0].Cores() }

// otherLoad is the CPU the rest of the machine used during the window, in
// cores: everything but the measured processes and this one.
func (r *ladderRun) otherLoad() float64 {
	ours := r.self.Seconds()
	for _, u := range r.procs {
		ours += u.CPU.Seconds()
	}
	return max(0, r.busy*float64(runtime.NumCPU())-ours/r.wall.Seconds())
}

// progressReport is one -progress report with the time it arrived.
type progressReport struct {
	at    time.Time
	frame int64
	speed string
	drop  int64
	dup   int64
}

// frameRate returns the frames encoded between the reports that arrived
// nearest to t0 and t1, and the time between them.
func frameRate(reports []progressReport, t0, t1 time.Time) (frames int64, span time.Duration, last progressReport, ok bool) {
	var r0, r1 *progressReport
	dist := func(a, b time.Time) time.Duration { return max(a.Sub(b), b.Sub(a)) }
	for i := range reports {
		r := &reports[i]
		if r0 == nil || dist(r.at, t0) < dist(r0.at, t0) {
			r0 = r
		}
		if r1 == nil || dist(r.at, t1) < dist(r1.at, t1) {
			r1 = r
		}
	}
	if r0 == nil || r1 == nil || r1.at.Sub(r0.at) <= 0 {
		return 0, 0, progressReport{}, false
	}
	return r1.frame - r0.frame, r1.at.Sub(r0.at), *r1, true
}

// ---------------------------------------------------------------------------
// Run 1: mps

// ladderRungs are the rungs of the shipped default ladder, by folder under
// the source's ("" is the passthrough source).
var ladderRungs = []string{"", "720p", "480p", "360p"}

func runLadderMPS(b *testing.B, m ladderMedia, warmup, window time.Duration) *ladderRun {
	s := startServer(b, benchConfig)
	const name = "live/ladder"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := newHTTPClient(8)
	r := &ladderRun{}

	start := time.Now()
	pub := startProc(b, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-stream_loop", "-1", "-i", m.FLV, "-c", "copy", "-f", "flv", s.RTMPURL(name)+"?ladder=default")

	// The ffmpeg child, as soon as it appears.
	childSeen := make(chan time.Duration, 1)
	go func() {
		for ctx.Err() == nil {
			if len(descendants(s.PID())) > 0 {
				childSeen <- time.Since(start)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Each rung's video playlist, until it lists a part and a segment.
	r.firsts = make([]rungFirst, len(ladderRungs))
	var wg sync.WaitGroup
	errs := make(chan error, len(ladderRungs))
	for i, rung := range ladderRungs {
		r.firsts[i].rung = rung
		if rung == "" {
			r.firsts[i].rung = "source"
		}
		dir := "/" + name + "/"
		if rung != "" {
			dir += rung + "/"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := &r.firsts[i]
			deadline := time.Now().Add(90 * time.Second)
			for f.segment == 0 {
				if time.Now().After(deadline) || ctx.Err() != nil {
					errs <- fmt.Errorf("%s: no segment listed in %st0.m3u8 within 90 s", f.rung, dir)
					return
				}
				body, ok := getBody(ctx, client, s.URL(dir+"t0.m3u8"))
				if ok {
					now := time.Since(start)
					if f.part == 0 && strings.Contains(body, "#EXT-X-PART:") {
						f.part = now
					}
					if strings.Contains(body, "#EXTINF:") {
						f.segment = now
						if f.part == 0 {
							f.part = now
						}
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("%v\npublisher: %s\nmps: %s", err, testutil.Tail(pub.Stderr.String(), 10), testutil.Tail(s.Log.String(), 30))
	}
	select {
	case r.childStart = <-childSeen:
	default:
	}

	time.Sleep(warmup)
	kids := descendants(s.PID())
	if len(kids) != 1 {
		b.Fatalf("want one ffmpeg child of mps, found %v", kids)
	}
	if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", kids[0])); err == nil {
		b.Logf("mps's ffmpeg child: %s", strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
	}
	info0, err := getLadderInfo(ctx, client, s.URL("/api/v1/streams/"+name+"/ladder"))
	if err != nil {
		b.Fatal(err)
	}
	meter := startMeter(b, s.PID(), kids[0], pub.PID())
	t0 := time.Now()
	// Poll the ladder's progress through the window, as an operator's
	// dashboard would (once a second), to pair frame counts with times.
	var reports []progressReport
	reports = append(reports, info0.report())
	tick := time.NewTicker(time.Second)
	for end := t0.Add(window); time.Now().Before(end); {
		<-tick.C
		info, err := getLadderInfo(ctx, client, s.URL("/api/v1/streams/"+name+"/ladder"))
		if err != nil {
			b.Errorf("ladder info: %v", err)
			continue
		}
		reports = append(reports, info.report())
		r.state, r.restarts = info.State, info.Restarts
		if info.PID != kids[0] {
			b.Errorf("the ladder's ffmpeg child changed from %d to %d (restarts %d, last error %q)", kids[0], info.PID, info.Restarts, info.LastError)
		}
	}
	tick.Stop()
	t1 := time.Now()
	w := meter.Stop(b)
	r.procs, r.nCounted = w.Procs, 2
	r.wall, r.self, r.busy = w.Procs[0].Wall, w.SelfCPU, w.MachineBusy
	// The report at the end of the window arrives up to a second later.
	time.Sleep(1100 * time.Millisecond)
	if info, err := getLadderInfo(ctx, client, s.URL("/api/v1/streams/"+name+"/ladder")); err == nil {
		reports = append(reports, info.report())
	}
	frames, span, last, ok := frameRate(reports, t0, t1)
	if !ok {
		b.Fatalf("no progress reports from the ladder during the window")
	}
	r.frames, r.frameSpan = frames, span
	r.speed = float64(frames) / span.Seconds() / m.FPS
	r.ffSpeed, r.drop, r.dup = last.speed, last.drop, last.dup

	// Every rung must still be live.
	for _, rung := range ladderRungs {
		dir := "/" + name + "/"
		if rung != "" {
			dir += rung + "/"
		}
		if _, ok := getBody(ctx, client, s.URL(dir+"t0.m3u8")); !ok {
			b.Errorf("rung %q: no playlist at the end", rung)
		}
	}
	if !pub.Running() {
		b.Errorf("publisher exited: %s", testutil.Tail(pub.Stderr.String(), 10))
	}
	pub.Stop()
	s.Stop(b)
	r.problems = s.Problems()
	// The child must be gone before the next run measures anything.
	for i := 0; i < 100 && procAlive(kids[0]); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if procAlive(kids[0]) {
		b.Errorf("ffmpeg child %d still running 5 s after mps stopped", kids[0])
	}
	return r
}

// ladderInfo is the part of GET /api/v1/streams/{name}/ladder used here.
type ladderInfo struct {
	State     string `json:"state"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error"`
	PID       int    `json:"pid"`
	Progress  struct {
		Frame      int64     `json:"frame"`
		Speed      float64   `json:"speed"`
		DropFrames int64     `json:"drop_frames"`
		DupFrames  int64     `json:"dup_frames"`
		Updated    time.Time `json:"updated"`
	} `json:"progress"`
}

func (li ladderInfo) report() progressReport {
	return progressReport{at: li.Progress.Updated, frame: li.Progress.Frame,
		speed: strconv.FormatFloat(li.Progress.Speed, 'f', 3, 64) + "x",
		drop:  li.Progress.DropFrames, dup: li.Progress.DupFrames}
}

func getLadderInfo(ctx context.Context, client *http.Client, url string) (ladderInfo, error) {
	var li ladderInfo
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return li, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return li, err
	}
	if resp.StatusCode != http.StatusOK {
		return li, fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return li, json.Unmarshal(body, &li)
}

// getBody returns the body of a 200 answer.
func getBody(ctx context.Context, client *http.Client, url string) (string, bool) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err == nil && resp.StatusCode == http.StatusOK
}

// descendants lists the processes below pid, from the ppid field of
// /proc/*/stat.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1]) // field 4
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// procAlive reports whether pid exists and is not a zombie.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// ---------------------------------------------------------------------------
// Runs 2 and 3: bare ffmpeg

// bareRung is one rung of the default ladder, as transcoder.makePlan sizes
// it for a 1920x1080 source.
type bareRung struct {
	name          string
	width, height int
	bitrate       int // bit/s
}

var bareRungs = []bareRung{
	{"720p", 1280, 720, 2_800_000},
	{"480p", 854, 480, 1_400_000},
	{"360p", 640, 360, 800_000},
}

// bareLadderArgs is the command line of a bare ffmpeg doing what the
// ladder's child does (transcoder/args.go, buildArgs): one decode, a split
// into the rungs and the thumbnail branch, each rung x264 superfast with no
// B-frames, forced IDR keyframes every 2 s, VBV at 1.1x/2x the bitrate, and
// AAC 128k 48 kHz stereo, muxed to MPEG-TS with the same muxer options. Only
// the input (a file read with -re instead of MPEG-TS on stdin with -copyts)
// and the outputs (files instead of pipes) differ.
func bareLadderArgs(src, dir string, realtime bool, limit time.Duration) []string {
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+warning", "-y"}
	if realtime {
		args = append(args, "-re")
	}
	args = append(args, "-stream_loop", "-1")
	if limit > 0 {
		args = append(args, "-t", fmtSecs(limit))
	}
	args = append(args, "-i", src, "-progress", "pipe:1", "-stats_period", "1")
	graph := []string{
		"[0:v:0]split=2[vsrc][thsrc]",
		"[thsrc]select='isnan(prev_selected_t)+gte(t-prev_selected_t,5)',scale=320:-2[thumb]",
		"[vsrc]split=3[s0][s1][s2]",
	}
	for i, r := range bareRungs {
		graph = append(graph, fmt.Sprintf("[s%d]scale=%d:%d,setsar=1[v%d]", i, r.width, r.height, i))
	}
	args = append(args, "-filter_complex", strings.Join(graph, ";"))
	// The child's expression, with its first PTS at 0.
	const kf = "expr:if(isnan(prev_forced_t),1,gte(floor((t+0.0001)/2),floor((prev_forced_t+0.0001)/2)+1))"
	for i, r := range bareRungs {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i),
			"-c:v", "libx264", "-preset", "superfast", "-sc_threshold", "0",
			"-bf", "0", "-g", "250", "-forced-idr", "1", "-pix_fmt", "yuv420p",
			"-force_key_frames", kf,
			"-enc_time_base:v", "1:90000", "-fps_mode:v", "passthrough",
			"-b:v", fmt.Sprintf("%dk", r.bitrate/1000),
			"-maxrate", fmt.Sprintf("%dk", r.bitrate*11/10/1000),
			"-bufsize", fmt.Sprintf("%dk", r.bitrate*2/1000),
			"-map", "0:a:0", "-c:a", "aac", "-ar", "48000", "-b:a", "128k", "-ac", "2",
			"-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1",
			"-max_muxing_queue_size", "4096", filepath.Join(dir, r.name+".ts"))
	}
	args = append(args, "-map", "[thumb]", "-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p",
		"-fps_mode:v", "passthrough", "-f", "image2", "-update", "1", filepath.Join(dir, "thumb.jpg"))
	return args
}

func fmtSecs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// progressLog collects ffmpeg's -progress reports with their arrival times.
type progressLog struct {
	mu      sync.Mutex
	reports []progressReport
	first   chan struct{} // closed at the first report with frames
	once    sync.Once
}

func (p *progressLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	var cur progressReport
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "frame":
			cur.frame, _ = strconv.ParseInt(v, 10, 64)
		case "speed":
			cur.speed = v
		case "drop_frames":
			cur.drop, _ = strconv.ParseInt(v, 10, 64)
		case "dup_frames":
			cur.dup, _ = strconv.ParseInt(v, 10, 64)
		case "progress":
			cur.at = time.Now()
			p.mu.Lock()
			p.reports = append(p.reports, cur)
			p.mu.Unlock()
			if cur.frame > 0 {
				p.once.Do(func() { close(p.first) })
			}
		}
	}
}

func (p *progressLog) snapshot() []progressReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]progressReport(nil), p.reports...)
}

// runLadderBare runs the bare ffmpeg ladder. With realtime, it reads the
// input with -re and is measured over window after warmup; without, it
// transcodes window's worth of media as fast as it can and is measured
// from start to exit.
func runLadderBare(b *testing.B, m ladderMedia, warmup, window time.Duration, realtime bool) *ladderRun {
	dir := b.TempDir()
	var limit time.Duration
	if !realtime {
		limit = window
	}
	cmd := exec.Command("ffmpeg", bareLadderArgs(m.FLV, dir, realtime, limit)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	p := &proc{cmd: cmd, Stderr: &testutil.LogBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.Stderr
	pl := &progressLog{first: make(chan struct{})}
	readDone := make(chan struct{})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatalf("start ffmpeg: %v", err)
	}
	go func() {
		defer close(readDone)
		pl.read(stdout)
	}()
	go func() {
		<-readDone // Wait closes stdout: read it to the end first
		p.err = cmd.Wait()
		close(p.done)
	}()
	b.Cleanup(p.Stop)
	r := &ladderRun{nCounted: 1}
	if !realtime {
		// Measured from start to exit: ffmpeg's CPU comes from its rusage.
		busy0, total0 := systemCPU()
		self0, _ := procCPU(os.Getpid())
		<-p.done
		r.wall = time.Since(start)
		if p.err != nil {
			b.Fatalf("bare ffmpeg (no -re): %v\n%s", p.err, testutil.Tail(p.Stderr.String(), 20))
		}
		st := cmd.ProcessState
		r.procs = []usage{{Wall: r.wall, CPU: st.UserTime() + st.SystemTime()}}
		self, _ := procCPU(os.Getpid())
		r.self = self - self0
		busy, total := systemCPU()
		if total > total0 {
			r.busy = float64(busy-busy0) / float64(total-total0)
		}
		reps := pl.snapshot()
		if len(reps) == 0 {
			b.Fatalf("bare ffmpeg (no -re): no progress report")
		}
		last := reps[len(reps)-1]
		r.frames, r.frameSpan, r.ffSpeed = last.frame, r.wall, last.speed
		r.speed = window.Seconds() / r.wall.Seconds()
		return r
	}

	select {
	case <-pl.first:
	case <-p.done:
		b.Fatalf("bare ffmpeg exited: %v\n%s", p.err, testutil.Tail(p.Stderr.String(), 20))
	case <-time.After(30 * time.Second):
		b.Fatalf("bare ffmpeg: no frame encoded in 30 s\n%s", testutil.Tail(p.Stderr.String(), 20))
	}
	time.Sleep(warmup)
	meter := startMeter(b, p.PID())
	t0 := time.Now()
	time.Sleep(window)
	t1 := time.Now()
	w := meter.Stop(b)
	r.procs = w.Procs
	r.wall, r.self, r.busy = w.Procs[0].Wall, w.SelfCPU, w.MachineBusy
	time.Sleep(1100 * time.Millisecond)
	frames, span, last, ok := frameRate(pl.snapshot(), t0, t1)
	if !ok {
		b.Fatalf("bare ffmpeg: no progress reports during the window")
	}
	r.frames, r.frameSpan = frames, span
	r.speed = float64(frames) / span.Seconds() / m.FPS
	r.ffSpeed = last.speed
	if !p.Running() {
		b.Errorf("bare ffmpeg exited during the window: %v\n%s", p.err, testutil.Tail(p.Stderr.String(), 20))
	}
	// The thumbnail's yuvj420p draws "deprecated pixel format" warnings
	// (the ladder's child gets the same); anything else is shown.
	var msgs []string
	for _, l := range p.Stderr.Lines() {
		if !strings.Contains(l, "deprecated pixel format") {
			msgs = append(msgs, l)
		}
	}
	if len(msgs) > 0 {
		b.Logf("bare ffmpeg stderr:\n%s", testutil.Tail(strings.Join(msgs, "\n"), 10))
	}
	p.Stop()
	return r
}
