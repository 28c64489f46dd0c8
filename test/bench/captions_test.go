//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/test/testutil"
	"github.com/mps-dev/mps/vod"
)

// ---------------------------------------------------------------------------
// Speech media

// capSentences are spoken (flite, voice slt) one every capEvery seconds,
// from capFirst, in the speech media.
var capSentences = []string{
	"The weather is nice today.",
	"Please open the door for me.",
	"I would like a cup of coffee.",
	"We are going to the park this afternoon.",
	"The children are playing in the garden.",
	"Can you tell me where the station is?",
	"She reads a book every night.",
	"The meeting starts at nine in the morning.",
	"My brother lives in a small town.",
	"Thank you very much for your help.",
}

const (
	capMediaDuration = 60 * time.Second
	capFirst         = 1 * time.Second
	capEvery         = 6 * time.Second
)

// capMedia is the speech file every captions benchmark uses.
type capMedia struct {
	Path     string
	Duration time.Duration
	// Speech is how long the sentences last in all (from silencedetect).
	Speech time.Duration
}

var (
	capMediaOnce sync.Once
	capMediaVal  capMedia
	capMediaErr  error
)

// captionsMedia makes (once per run) 60 s of 640x360 testsrc2 H.264 with
// capSentences spoken (AAC 48 kHz), as an MP4.
func captionsMedia(tb testing.TB) capMedia {
	tb.Helper()
	capMediaOnce.Do(func() {
		for _, tool := range []string{"ffmpeg", "ffprobe"} {
			if _, err := exec.LookPath(tool); err != nil {
				capMediaErr = fmt.Errorf("%s is not installed (make installs it): %w", tool, err)
				return
			}
		}
		if _, err := os.Stat(filepath.Join(speech.DefaultModelDir, "en-us.lm.bin")); err != nil {
			capMediaErr = fmt.Errorf("no pocketsphinx model (Debian's pocketsphinx-en-us): %w", err)
			return
		}
		out := filepath.Join(workDir, "speech.mp4")
		args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"}
		var graph, mix strings.Builder
		for i, s := range capSentences {
			args = append(args, "-f", "lavfi", "-i", "flite=text='"+strings.ReplaceAll(s, "'", "")+"':voice=slt")
			at := capFirst + time.Duration(i)*capEvery
			fmt.Fprintf(&graph, "[%d]adelay=%d,apad[a%d];", i+1, at.Milliseconds(), i)
			fmt.Fprintf(&mix, "[a%d]", i)
		}
		fmt.Fprintf(&graph, "%samix=inputs=%d:duration=longest:normalize=0,aresample=48000[a]", mix.String(), len(capSentences))
		args = append(args, "-filter_complex", graph.String(), "-map", "0:v", "-map", "[a]",
			"-t", strconv.Itoa(int(capMediaDuration.Seconds())),
			"-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
			"-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", out)
		start := time.Now()
		if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
			capMediaErr = fmt.Errorf("make speech media: %v\n%s", err, b)
			return
		}
		m := capMedia{Path: out, Duration: capMediaDuration}
		m.Speech = speechTime(out, capMediaDuration)
		fmt.Printf("speech media: %s of 640x360p30 H.264 + AAC with %d sentences (%.1f s of speech, %.0f%%), made in %.1f s\n",
			capMediaDuration, len(capSentences), m.Speech.Seconds(), 100*m.Speech.Seconds()/capMediaDuration.Seconds(), time.Since(start).Seconds())
		capMediaVal = m
	})
	if capMediaErr != nil {
		tb.Fatal(capMediaErr)
	}
	return capMediaVal
}

var silenceRe = regexp.MustCompile(`silence_(start|end): (-?[0-9.]+)`)

// speechTime is the time of path's audio that is not silence (-35 dB,
// 200 ms), by silencedetect; 0 when it cannot tell.
func speechTime(path string, dur time.Duration) time.Duration {
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-i", path, "-vn",
		"-af", "silencedetect=n=-35dB:d=0.2", "-f", "null", "-").CombinedOutput()
	if err != nil {
		return 0
	}
	var silent float64
	start := -1.0
	for _, m := range silenceRe.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "start" {
			start = max(0, v)
		} else if start >= 0 {
			silent += v - start
			start = -1
		}
	}
	if start >= 0 {
		silent += dur.Seconds() - start
	}
	return time.Duration((dur.Seconds() - silent) * float64(time.Second))
}

// ---------------------------------------------------------------------------
// BenchmarkCaptioningSpeed

// BenchmarkCaptioningSpeed compares the VOD captions task with the bare
// recognizer on the same 60 s file (640x360 H.264 + AAC, ten English
// sentences spoken by flite, one every 6 s).
//
// Baseline: ffmpeg's asr filter (pocketsphinx, Debian's en-us model) run
// directly: `ffmpeg -i FILE -vn -af aresample=16000,aformat=s16 mono,
// asr=...,ametadata=mode=print -f null -`. MPS: vod.Captions().Run in this
// process with the captions-en preset and the built-in speech.Pocketsphinx
// engine: the whole task (the engine's ffprobe and ffmpeg pass, cue
// building, captions.vtt, captions.srt and transcript.json). The two run
// alternately (which goes first alternates too), MPS_BENCH_ROUNDS times
// (default 3), after one untimed run of the baseline that warms the page
// cache with the model. It reports each wall time, the medians, the
// realtime factor of each (audio seconds / wall seconds), the CPU time of
// each (the children's rusage, plus this process's own for MPS) and the
// ratio MPS/baseline of the medians (target at most 1.05).
//
// It fails only on correctness: a task error, the baseline printing no
// text, or a word error rate of the task's captions.vtt against the known
// sentences above 50 %.
func BenchmarkCaptioningSpeed(b *testing.B) {
	rounds := envInts(b, "MPS_BENCH_ROUNDS", []int{3})[0]
	m := captionsMedia(b)
	fmt.Printf("machine: %s\n%d rounds, baseline and MPS alternately\n", machine(), rounds)
	hmm := filepath.Join(speech.DefaultModelDir, "en-us")
	dict := filepath.Join(speech.DefaultModelDir, "cmudict-en-us.dict")
	lm := filepath.Join(speech.DefaultModelDir, "en-us.lm.bin")
	bare := func(print string) []string {
		return []string{"-nostdin", "-v", "error", "-i", m.Path, "-vn", "-af",
			"aresample=16000,aformat=sample_fmts=s16:channel_layouts=mono," +
				"asr=hmm=" + hmm + ":dict=" + dict + ":lm=" + lm + ",ametadata=mode=print:file=" + print,
			"-f", "null", "-"}
	}

	// The baseline works: printed to stdout, it tells the sentences. This
	// run also warms the page cache with the model.
	out, err := exec.Command("ffmpeg", bare("-")...).CombinedOutput()
	if err != nil {
		b.Fatalf("bare asr: %v\n%s", err, testutil.Tail(string(out), 20))
	}
	var bareText []string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "lavfi.asr.text="); ok {
			bareText = append(bareText, v)
		}
	}
	reference := strings.Join(capSentences, " ")
	bareWER := captions.WordErrorRate(reference, strings.Join(bareText, " "))
	if len(bareText) == 0 {
		b.Fatalf("bare asr printed no text:\n%s", testutil.Tail(string(out), 20))
	}

	ctx := context.Background()
	env := vod.Env{Speech: map[string]speech.Engine{"pocketsphinx": &speech.Pocketsphinx{}}}
	probeStart := time.Now()
	in, err := vod.Probe(ctx, env, m.Path)
	if err != nil {
		b.Fatalf("vod.Probe: %v", err)
	}
	probeTime := time.Since(probeStart)
	params := vod.CaptionsPresets()["captions-en"]

	var baseWall, baseCPU, mpsWall, mpsCPU, mpsSelf []time.Duration
	var lastVTT []byte
	var lastOuts []vod.Output
	runBase := func() {
		wall, cpu, err := runTimed("ffmpeg", bare("/dev/null")...)
		if err != nil {
			b.Fatalf("bare asr: %v", err)
		}
		baseWall, baseCPU = append(baseWall, wall), append(baseCPU, cpu)
	}
	runMPS := func(round int) {
		dir := filepath.Join(b.TempDir(), fmt.Sprintf("captions-%d", round))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		e := env
		e.OutDir = dir
		e.Progress = func(float64) {}
		c0, s0 := rusage(syscall.RUSAGE_CHILDREN), rusage(syscall.RUSAGE_SELF)
		start := time.Now()
		outs, err := vod.Captions().Run(ctx, e, in, params)
		wall := time.Since(start)
		c1, s1 := rusage(syscall.RUSAGE_CHILDREN), rusage(syscall.RUSAGE_SELF)
		if err != nil {
			b.Fatalf("captions task, round %d: %v", round+1, err)
		}
		vtt, err := os.ReadFile(filepath.Join(dir, "captions.vtt"))
		if err != nil {
			b.Fatalf("captions task, round %d: %v (outputs %+v)", round+1, err, outs)
		}
		lastVTT, lastOuts = vtt, outs
		mpsWall = append(mpsWall, wall)
		mpsCPU = append(mpsCPU, c1-c0+s1-s0)
		mpsSelf = append(mpsSelf, s1-s0)
	}
	busy0, total0 := systemCPU()
	for r := range rounds {
		if r%2 == 0 {
			runBase()
			runMPS(r)
		} else {
			runMPS(r)
			runBase()
		}
		fmt.Printf("round %d: baseline %.2f s, MPS %.2f s\n", r+1, baseWall[r].Seconds(), mpsWall[r].Seconds())
	}
	busy1, total1 := systemCPU()
	busy := 0.0
	if total1 > total0 {
		busy = float64(busy1-busy0) / float64(total1-total0)
	}

	cues, err := captions.ParseVTT(bytes.NewReader(lastVTT))
	if err != nil {
		b.Fatalf("captions.vtt does not parse: %v\n%s", err, lastVTT)
	}
	var hyp []string
	for _, c := range cues {
		hyp = append(hyp, strings.ReplaceAll(c.Text, "\n", " "))
	}
	wer := captions.WordErrorRate(reference, strings.Join(hyp, " "))
	if wer > 0.5 {
		b.Errorf("word error rate of captions.vtt %.1f%% > 50%%:\nreference: %s\nhypothesis: %s", wer*100, reference, strings.Join(hyp, " "))
	}
	// Cue times: each sentence's cue should start near its time.
	var starts []string
	for _, c := range cues {
		starts = append(starts, fmt.Sprintf("%.1f", c.Start.Seconds()))
	}

	audio := m.Duration.Seconds()
	bw, mw := medianDur(baseWall), medianDur(mpsWall)
	bc, mc := medianDur(baseCPU), medianDur(mpsCPU)
	ratio := mw.Seconds() / bw.Seconds()
	var rows []string
	rows = append(rows, fmt.Sprintf("%-6s %14s %14s %14s %14s", "round", "baseline wall", "MPS wall", "baseline CPU", "MPS CPU"))
	for r := range rounds {
		rows = append(rows, fmt.Sprintf("%-6d %12.2f s %12.2f s %12.2f s %12.2f s", r+1,
			baseWall[r].Seconds(), mpsWall[r].Seconds(), baseCPU[r].Seconds(), mpsCPU[r].Seconds()))
	}
	var files []string
	for _, o := range lastOuts {
		files = append(files, fmt.Sprintf("%s (%d B)", o.Path, o.Size))
	}
	lines := append(rows,
		fmt.Sprintf("median wall: baseline %.2f s (%.1fx realtime), MPS %.2f s (%.1fx realtime); MPS / baseline x%.3f (target <= 1.05: %s)",
			bw.Seconds(), audio/bw.Seconds(), mw.Seconds(), audio/mw.Seconds(), ratio, metOrNot(ratio <= 1.05)),
		fmt.Sprintf("median CPU: baseline %.2f s, MPS %.2f s (of which this Go process %.3f s); MPS / baseline x%.3f",
			bc.Seconds(), mc.Seconds(), medianDur(mpsSelf).Seconds(), mc.Seconds()/bc.Seconds()),
		fmt.Sprintf("vod.Probe (done by the job engine before the task, not timed above): %.0f ms", float64(probeTime.Milliseconds())),
		fmt.Sprintf("WER of MPS captions.vtt vs the %d sentences: %.1f%% (%d cues, starting at %s s); WER of the bare asr text: %.1f%%",
			len(capSentences), wer*100, len(cues), strings.Join(starts, " "), bareWER*100),
		"MPS outputs: "+strings.Join(files, ", "),
		fmt.Sprintf("audio %.0f s, %.1f s of it speech; machine busy %.0f%% over the rounds", audio, m.Speech.Seconds(), busy*100),
		"MPS recognized: "+strings.Join(hyp, " / "),
	)
	report("BenchmarkCaptioningSpeed: 60 s of speech, captions task vs bare ffmpeg asr", lines...)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ratio, "mps-x-bare")
	b.ReportMetric(audio/bw.Seconds(), "bare-x-realtime")
	b.ReportMetric(audio/mw.Seconds(), "mps-x-realtime")
	b.ReportMetric(wer*100, "wer-%")
}

// rusage is the user+system CPU time of who (RUSAGE_SELF or
// RUSAGE_CHILDREN: the children waited for).
func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medianDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ---------------------------------------------------------------------------
// BenchmarkLiveCaptionsCPU

// BenchmarkLiveCaptionsCPU measures what live captions cost: two fresh mps
// servers run at the same time, one with `ai: live_captions: [{match:
// "live/*"}]` (pocketsphinx) and one without, and each gets the same N
// streams (MPS_BENCH_CAPTION_STREAMS, default 2), each an ffmpeg
// `-re -stream_loop -1 -i speech.mp4 -c copy -f flv` of the 60 s speech
// file (ten sentences, about 40 % speech). After 15 s + MPS_BENCH_WARMUP,
// the CPU of each mps including its ffmpeg children is measured over the
// window (MPS_BENCH_DURATION): utime+stime+cutime+cstime of mps plus
// those of its live descendants (walked through
// /proc/PID/task/*/children), sampled at the window's start and end, so
// a child that ends during the window counts through cutime.
//
// After the window, the captioned server's playlists are polled every
// 100 ms for 30 s: the caption lag of a segment is the time from its
// #EXTINF appearing in t0.m3u8 to its WebVTT segment appearing in
// subs.m3u8.
//
// It fails only on correctness: a publisher that exits, a stream without
// a playlist at the end, or a captioned stream whose API info shows no
// cues.
func BenchmarkLiveCaptionsCPU(b *testing.B) {
	n := envInts(b, "MPS_BENCH_CAPTION_STREAMS", []int{2})[0]
	warmup, window := phaseTimes(b)
	m := captionsMedia(b)
	fmt.Printf("machine: %s\nwindow %v from 15 s + %v after the first publisher; %d streams per server; both servers at the same time\n",
		machine(), window, warmup, n)

	cc := &lcRun{name: "captioned", captioned: true}
	plain := &lcRun{name: "plain"}
	runs := []*lcRun{cc, plain}
	cc.srv = startServer(b, benchConfig+`
ai:
  live_captions:
    - {match: "live/*"}
`)
	plain.srv = startServer(b, benchConfig)
	client := newHTTPClient(8)

	start := time.Now()
	for i := range n {
		for _, r := range runs {
			r.pubs = append(r.pubs, startProc(b, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
				"-re", "-stream_loop", "-1", "-i", m.Path, "-c", "copy", "-f", "flv", r.srv.RTMPURL(lcStreamName(i))))
		}
		time.Sleep(2 * time.Second / time.Duration(n))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, r := range runs {
		for i := range n {
			if err := waitHTTP(ctx, client, r.srv.URL("/"+lcStreamName(i)+"/t0.m3u8"), 30*time.Second); err != nil {
				b.Fatalf("%s server, stream %d: %v\npublisher: %s\nmps: %s", r.name, i, err,
					r.pubs[i].Stderr.String(), testutil.Tail(r.srv.Log.String(), 30))
			}
		}
	}
	if wait := time.Until(start.Add(15*time.Second + warmup)); wait > 0 {
		time.Sleep(wait)
	}

	// The window.
	var mt []*meter
	for _, r := range runs {
		r.windowAt = time.Since(start)
		r.watch = watchTree(r.srv.PID(), 100*time.Millisecond)
		r.cpu0 = treeCPU(b, r.srv.PID())
		mt = append(mt, startMeter(b, r.srv.PID()))
	}
	time.Sleep(window)
	for i, r := range runs {
		r.cpu1 = treeCPU(b, r.srv.PID())
		w := mt[i].Stop(b)
		r.own, r.busy = w.Procs[0], w.MachineBusy
		r.seen = r.watch.Stop()
	}

	// Caption lag, after the window so that the polling is not in it.
	lag := measureCaptionLag(ctx, client, cc.srv, n, 30*time.Second)

	// Correctness and the API's view.
	for _, r := range runs {
		for i := range n {
			if !r.pubs[i].Running() {
				r.errs = append(r.errs, fmt.Sprintf("publisher of %s exited: %v %s", lcStreamName(i), r.pubs[i].err, testutil.Tail(r.pubs[i].Stderr.String(), 5)))
			}
			if _, ok := getBody(ctx, client, r.srv.URL("/"+lcStreamName(i)+"/t0.m3u8")); !ok {
				r.errs = append(r.errs, fmt.Sprintf("%s has no playlist at the end", lcStreamName(i)))
			}
			info, err := streamCaptions(ctx, client, r.srv, lcStreamName(i))
			switch {
			case err != nil:
				r.errs = append(r.errs, err.Error())
			case r.captioned && (info == nil || info.Cues == 0):
				r.errs = append(r.errs, fmt.Sprintf("%s: no captions cues in the API: %+v", lcStreamName(i), info))
			case r.captioned:
				r.infos = append(r.infos, *info)
			case info != nil:
				r.errs = append(r.errs, fmt.Sprintf("%s is captioned on the server without captions: %+v", lcStreamName(i), info))
			}
		}
	}
	liveText := liveSubtitleText(ctx, client, cc.srv, lcStreamName(0))
	cancel()
	for _, r := range runs {
		r.srv.Stop(b)
		r.problems = r.srv.Problems()
		for _, e := range r.errs {
			b.Errorf("%s server: %s", r.name, e)
		}
	}

	// Report.
	ccCores, plainCores := cc.cores(), plain.cores()
	extra := (ccCores - plainCores) / float64(n)
	lines := []string{
		fmt.Sprintf("%-10s %14s %12s %14s %10s %18s %8s", "server", "cores (tree)", "mps itself", "children", "peak RSS", "children seen", "busy"),
	}
	for _, r := range runs {
		lines = append(lines, fmt.Sprintf("%-10s %14.3f %12.3f %14.3f %10s %18s %7.0f%%", r.name, r.cores(), r.own.Cores(),
			r.cores()-r.own.Cores(), mb(r.own.PeakRSS), r.seen.String(), r.busy*100))
	}
	lines = append(lines,
		fmt.Sprintf("window %.1f s from %.1f s after the first publisher; %d streams per server of the 60 s speech file (%.0f%% speech), looped",
			cc.wall().Seconds(), cc.windowAt.Seconds(), n, 100*m.Speech.Seconds()/m.Duration.Seconds()),
		fmt.Sprintf("extra cores per captioned stream: %.3f (captioned %.3f - plain %.3f, / %d) = %.3f CPU-s per second of audio captioned (%.1fx realtime per core)",
			extra, ccCores, plainCores, n, extra, 1/extra),
	)
	for i, in := range cc.infos {
		lines = append(lines, fmt.Sprintf("API %s captions: engine %s, state %s, cues %d, lag %.2f s", lcStreamName(i), in.Engine, in.State, in.Cues, in.Lag))
	}
	if lag.n > 0 {
		lines = append(lines, fmt.Sprintf("caption lag (t0.m3u8 #EXTINF -> subs.m3u8 entry, polled every 100 ms for 30 s, %d streams): median %s, max %s, min %s (n=%d segments); %d segments not captioned by the end of polling",
			n, ms(lag.median()), ms(lag.max()), ms(lag.min()), lag.n, lag.pending))
	} else {
		lines = append(lines, fmt.Sprintf("caption lag: no segment seen in both playlists (%d pending, errors: %s)", lag.pending, strings.Join(lag.errs, "; ")))
	}
	lines = append(lines, "live subtitles of "+lcStreamName(0)+" at the end (playlist window): "+liveText)
	for _, r := range runs {
		lines = append(lines, fmt.Sprintf("%s server: %d warnings/errors in the log", r.name, len(r.problems)))
		for i, p := range r.problems {
			if i == 6 {
				lines = append(lines, fmt.Sprintf("  ... %d more", len(r.problems)-6))
				break
			}
			lines = append(lines, "  log: "+p)
		}
	}
	report(fmt.Sprintf("BenchmarkLiveCaptionsCPU: %d streams captioned vs the same %d streams not", n, n), lines...)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ccCores, "captioned-cores")
	b.ReportMetric(plainCores, "plain-cores")
	b.ReportMetric(extra, "extra-cores/stream")
	if lag.n > 0 {
		b.ReportMetric(lag.median().Seconds(), "lag-median-s")
		b.ReportMetric(lag.max().Seconds(), "lag-max-s")
	}
}

func lcStreamName(i int) string { return fmt.Sprintf("live/cc%d", i) }

// lcRun is one server of BenchmarkLiveCaptionsCPU.
type lcRun struct {
	name      string
	captioned bool
	srv       *server
	pubs      []*proc

	windowAt   time.Duration
	cpu0, cpu1 treeSample
	own        usage // the mps process alone, with its RSS
	busy       float64
	watch      *treeWatch
	seen       childCounts
	infos      []captionsInfo
	errs       []string
	problems   []string
}

func (r *lcRun) wall() time.Duration { return r.cpu1.at.Sub(r.cpu0.at) }

// cores is the tree's CPU over the window.
func (r *lcRun) cores() float64 { return (r.cpu1.cpu - r.cpu0.cpu).Seconds() / r.wall().Seconds() }

// treeSample is the CPU time of a process and its descendants at a time.
type treeSample struct {
	at  time.Time
	cpu time.Duration
}

// statTimes reads utime, stime, cutime and cstime of pid in ticks.
func statTimes(pid int) (t [4]int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return t, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return t, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return t, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return t, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
	}
	return t, nil
}

// childPIDs lists pid's children from /proc/PID/task/*/children.
func childPIDs(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// treeDescendants lists pid's descendants, walking the children files.
func treeDescendants(pid int) []int {
	var out []int
	queue := childPIDs(pid)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, childPIDs(p)...)
	}
	return out
}

// treeCPU is the CPU time of pid and all its descendants: its
// utime+stime+cutime+cstime plus the same of each live descendant. A
// child reaped while the tree is walked would be counted twice or not at
// all; the walk is repeated when mps's cutime+cstime moved during it.
func treeCPU(tb testing.TB, pid int) treeSample {
	tb.Helper()
	for range 10 {
		at := time.Now()
		t0, err := statTimes(pid)
		if err != nil {
			tb.Fatalf("tree CPU: %v", err)
		}
		var kids int64
		for _, c := range treeDescendants(pid) {
			if t, err := statTimes(c); err == nil {
				kids += t[0] + t[1] + t[2] + t[3]
			}
		}
		t1, err := statTimes(pid)
		if err != nil {
			tb.Fatalf("tree CPU: %v", err)
		}
		if t0[2]+t0[3] != t1[2]+t1[3] {
			continue
		}
		total := t1[0] + t1[1] + t1[2] + t1[3] + kids
		return treeSample{at: at, cpu: time.Duration(total) * time.Second / clockTicks}
	}
	tb.Fatalf("tree CPU of %d: children kept ending while it was read", pid)
	return treeSample{}
}

// treeWatch counts the distinct descendants of a process by command,
// polling every interval (processes shorter than that may be missed).
type treeWatch struct {
	mu         sync.Mutex
	seen       map[int]string
	stop, done chan struct{}
}

// childCounts are distinct descendants seen, by kind.
type childCounts map[string]int

func (c childCounts) String() string {
	if len(c) == 0 {
		return "none"
	}
	var keys []string
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
	}
	return strings.Join(parts, ", ")
}

func watchTree(pid int, every time.Duration) *treeWatch {
	w := &treeWatch{seen: map[int]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			for _, c := range treeDescendants(pid) {
				w.mu.Lock()
				_, known := w.seen[c]
				w.mu.Unlock()
				if known {
					continue
				}
				kind := "(ended unseen)" // a zombie has no command line
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c)); err == nil && len(b) > 0 {
					args := strings.Split(string(b), "\x00")
					kind = filepath.Base(args[0])
					if strings.Contains(string(b), "asr=") {
						kind += " asr"
					}
				}
				if kind == filepath.Base(mpsBin) {
					continue // forked, not yet exec'd: look again at the next tick
				}
				w.mu.Lock()
				w.seen[c] = kind
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

func (w *treeWatch) Stop() childCounts {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	c := childCounts{}
	for _, k := range w.seen {
		c[k]++
	}
	return c
}

// captionsInfo is the captions object of a stream's API info.
type captionsInfo struct {
	Engine string  `json:"engine"`
	State  string  `json:"state"`
	Error  string  `json:"error"`
	Cues   int     `json:"cues"`
	Lag    float64 `json:"lag"`
}

// streamCaptions reads GET /api/v1/streams/NAME (from loopback: the
// bench servers have no API token) and returns its captions object.
func streamCaptions(ctx context.Context, client *http.Client, s *server, name string) (*captionsInfo, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("/api/v1/streams/"+name), nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /api/v1/streams/%s: %w", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/streams/%s: %s %s", name, resp.Status, strings.TrimSpace(string(body[:min(len(body), 300)])))
	}
	var info struct {
		Captions *captionsInfo `json:"captions"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("GET /api/v1/streams/%s: %v", name, err)
	}
	return info.Captions, nil
}

var (
	mediaSeqRe = regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`)
	vttNameRe  = regexp.MustCompile(`(?m)^(\S+\.vtt)$`)
)

// listedMSNs are the media sequence numbers of a playlist's complete
// segments (its #EXTINF entries).
func listedMSNs(pl string) []int {
	m := mediaSeqRe.FindStringSubmatch(pl)
	if m == nil {
		return nil
	}
	seq, _ := strconv.Atoi(m[1])
	var out []int
	for _, line := range strings.Split(pl, "\n") {
		if strings.HasPrefix(line, "#EXTINF:") {
			out = append(out, seq)
			seq++
		}
	}
	return out
}

// lagResult is the caption lag of the segments seen in both playlists.
type lagResult struct {
	lags    []time.Duration
	n       int
	pending int
	errs    []string
}

func (l lagResult) sorted() []time.Duration {
	s := append([]time.Duration(nil), l.lags...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}
func (l lagResult) median() time.Duration { return medianDur(l.lags) }
func (l lagResult) max() time.Duration    { return l.sorted()[len(l.lags)-1] }
func (l lagResult) min() time.Duration    { return l.sorted()[0] }

// measureCaptionLag polls t0.m3u8 and subs.m3u8 of n streams every 100 ms
// for d and returns, for every segment that appeared in t0.m3u8 during the
// polling, how much later its subtitle segment appeared in subs.m3u8.
func measureCaptionLag(ctx context.Context, client *http.Client, s *server, n int, d time.Duration) lagResult {
	type key struct{ stream, msn int }
	video := map[key]time.Time{}
	subs := map[key]time.Time{}
	initial := map[key]bool{} // in t0.m3u8 at the first poll: when it appeared is unknown
	var res lagResult
	errs := map[string]bool{}
	end := time.Now().Add(d)
	first := true
	for time.Now().Before(end) {
		tick := time.Now()
		for i := range n {
			name := lcStreamName(i)
			v, ok1 := getBody(ctx, client, s.URL("/"+name+"/t0.m3u8"))
			now := time.Now()
			if ok1 {
				for _, msn := range listedMSNs(v) {
					k := key{i, msn}
					if _, seen := video[k]; !seen {
						video[k] = now
						if first {
							initial[k] = true
						}
					}
				}
			} else {
				errs["t0.m3u8 failed"] = true
			}
			sp, ok2 := getBody(ctx, client, s.URL("/"+name+"/subs.m3u8"))
			now = time.Now()
			if ok2 {
				for _, msn := range listedMSNs(sp) {
					k := key{i, msn}
					if _, seen := subs[k]; !seen {
						subs[k] = now
					}
				}
			} else {
				errs["subs.m3u8 failed"] = true
			}
		}
		first = false
		if wait := 100*time.Millisecond - time.Since(tick); wait > 0 {
			time.Sleep(wait)
		}
	}
	for k, vt := range video {
		if initial[k] {
			continue
		}
		st, ok := subs[k]
		if !ok {
			res.pending++
			continue
		}
		res.lags = append(res.lags, max(0, st.Sub(vt)))
	}
	res.n = len(res.lags)
	for e := range errs {
		res.errs = append(res.errs, e)
	}
	return res
}

// liveSubtitleText is the text of the WebVTT segments listed in a
// stream's subs.m3u8.
func liveSubtitleText(ctx context.Context, client *http.Client, s *server, name string) string {
	pl, ok := getBody(ctx, client, s.URL("/"+name+"/subs.m3u8"))
	if !ok {
		return "(no subs.m3u8)"
	}
	var words []string
	seen := map[string]bool{}
	for _, m := range vttNameRe.FindAllStringSubmatch(pl, -1) {
		body, ok := getBody(ctx, client, s.URL("/"+name+"/"+m[1]))
		if !ok {
			continue
		}
		cues, err := captions.ParseVTT(strings.NewReader(body))
		if err != nil {
			words = append(words, "(bad vtt: "+err.Error()+")")
			continue
		}
		for _, c := range cues {
			// A cue that spans two segments is in both.
			k := fmt.Sprintf("%d-%d-%s", c.Start, c.End, c.Text)
			if seen[k] {
				continue
			}
			seen[k] = true
			words = append(words, strings.ReplaceAll(c.Text, "\n", " "))
		}
	}
	if len(words) == 0 {
		return "(no cues)"
	}
	return strings.Join(words, " / ")
}
