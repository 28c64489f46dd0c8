//go:build bench

package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// ingestResult is one phase of BenchmarkIngest.
type ingestResult struct {
	streams   int
	proc      usage // mps, or the ffmpeg baseline
	startRSS  int64 // the fresh server before any publisher
	self      time.Duration
	busy      float64
	unitsRate float64 // access units the publishers wrote per second
	live      int     // streams whose playlist answered at the end
	pubErrs   []string
	problems  []string
}

// perStream is the process's CPU per stream, in cores.
func (r *ingestResult) perStream() float64 { return r.proc.Cores() / float64(r.streams) }

// rssPerStream is the RSS each stream adds to the fresh process.
func (r *ingestResult) rssPerStream() int64 { return (r.proc.PeakRSS - r.startRSS) / int64(r.streams) }

// BenchmarkIngest measures what RTMP publishers cost the server: 1, 10 and
// 50 publishers each send a 1 Mbit/s 720p stream in real time, and mps
// packages every one of them to LL-HLS and DASH. The publishers are Go
// RTMP clients in this process (50 ffmpeg processes would load the 2 cores
// more than the server does), copying the pre-encoded access units. The
// baseline is a bare `ffmpeg -re -i file -c copy -f hls` remux of one
// stream, measured in the same run.
func BenchmarkIngest(b *testing.B) {
	counts := envInts(b, "MPS_BENCH_PUBLISHERS", []int{1, 10, 50})
	warmup, window := phaseTimes(b)
	src := testSource(b)
	fmt.Printf("machine: %s\nwarm-up %v, window %v per phase\n", machine(), warmup, window)

	var base *ingestResult
	baseline := func(b *testing.B) *ingestResult {
		if base == nil {
			base = runFFmpegHLS(b, warmup, window)
		}
		return base
	}
	b.Run("ffmpeg-hls", func(b *testing.B) {
		r := baseline(b)
		report("BenchmarkIngest baseline: ffmpeg -re -stream_loop -1 -i src.flv -c copy -f hls (fMP4, 2 s segments)",
			fmt.Sprintf("ffmpeg: %.2f s CPU in %.1f s = %.4f cores per stream; peak RSS %s",
				r.proc.CPU.Seconds(), r.proc.Wall.Seconds(), r.perStream(), mb(r.proc.PeakRSS)))
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(r.perStream(), "cores/stream")
		b.ReportMetric(float64(r.proc.PeakRSS)/(1<<20), "MB-RSS/stream")
	})
	var results []*ingestResult
	for _, n := range counts {
		b.Run(fmt.Sprintf("publishers=%d", n), func(b *testing.B) {
			base := baseline(b)
			r := runIngest(b, src, n, warmup, window)
			results = append(results, r)
			reportIngest(b, r, base)
		})
	}
	if base == nil || len(results) == 0 {
		return
	}
	lines := []string{fmt.Sprintf("%-10s %10s %14s %18s %10s %14s %12s %6s",
		"streams", "mps cores", "cores/stream", "CPU-s/stream-min", "peak RSS", "RSS/stream", "x ffmpeg CPU", "live")}
	for _, r := range results {
		lines = append(lines, fmt.Sprintf("%-10d %10.3f %14.4f %18.2f %10s %14s %12.2f %6d",
			r.streams, r.proc.Cores(), r.perStream(), r.perStream()*60, mb(r.proc.PeakRSS), mb(r.rssPerStream()),
			r.perStream()/base.perStream(), r.live))
	}
	lines = append(lines, fmt.Sprintf("%-10s %10.3f %14.4f %18.2f %10s %14s %12.2f",
		"ffmpeg x1", base.proc.Cores(), base.perStream(), base.perStream()*60, mb(base.proc.PeakRSS), mb(base.proc.PeakRSS), 1.0))
	report("BenchmarkIngest summary (RSS per stream is above the fresh server)", lines...)
}

// runFFmpegHLS measures one bare ffmpeg remux of the test media to HLS.
func runFFmpegHLS(b *testing.B, warmup, window time.Duration) *ingestResult {
	m := testMedia(b)
	dir := b.TempDir()
	p := startProc(b, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning",
		"-re", "-stream_loop", "-1", "-i", m.FLV, "-c", "copy",
		"-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-hls_flags", "delete_segments",
		"-hls_segment_type", "fmp4", filepath.Join(dir, "index.m3u8"))
	time.Sleep(warmup)
	if !p.Running() {
		b.Fatalf("ffmpeg hls exited: %s", testutil.Tail(p.Stderr.String(), 20))
	}
	meter := startMeter(b, p.PID())
	time.Sleep(window)
	w := meter.Stop(b)
	p.Stop()
	return &ingestResult{streams: 1, proc: w.Procs[0], self: w.SelfCPU, busy: w.MachineBusy, live: 1}
}

// runIngest runs n publishers against a fresh server.
func runIngest(b *testing.B, src *source, n int, warmup, window time.Duration) *ingestResult {
	s := startServer(b, benchConfig)
	r := &ingestResult{streams: n}
	r.startRSS = idleRSS(b, s.PID(), time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Publishers start over two seconds, so their keyframes do not all
	// fall on the same instant.
	pubs := make([]*publisher, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range pubs {
		pubs[i] = &publisher{URL: s.RTMPURL(fmt.Sprintf("live/in%d", i)), Src: src}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pubs[i].run(ctx); err != nil {
				mu.Lock()
				r.pubErrs = append(r.pubErrs, err.Error())
				mu.Unlock()
			}
		}()
		time.Sleep(2 * time.Second / time.Duration(n))
	}
	client := newHTTPClient(8)
	for i := range pubs {
		u := s.URL(fmt.Sprintf("/live/in%d/t0.m3u8", i))
		if err := waitHTTP(ctx, client, u, 30*time.Second); err != nil {
			b.Fatalf("stream %d: %v\nmps: %s", i, err, testutil.Tail(s.Log.String(), 20))
		}
	}
	time.Sleep(warmup)

	units := func() (t int64) {
		for _, p := range pubs {
			t += p.Frames.Load()
		}
		return t
	}
	m := startMeter(b, s.PID())
	u0 := units()
	time.Sleep(window)
	w := m.Stop(b)
	r.unitsRate = float64(units()-u0) / w.Procs[0].Wall.Seconds()
	r.proc, r.self, r.busy = w.Procs[0], w.SelfCPU, w.MachineBusy

	// Every stream must still be packaged.
	for i := range pubs {
		if err := waitHTTP(ctx, client, s.URL(fmt.Sprintf("/live/in%d/t0.m3u8", i)), 5*time.Second); err == nil {
			r.live++
		}
	}
	cancel()
	wg.Wait()
	r.problems = s.Problems()
	if len(r.pubErrs) > 0 {
		b.Errorf("%d publishers failed: %s", len(r.pubErrs), r.pubErrs[0])
	}
	if r.live < n {
		b.Errorf("only %d of %d streams had a playlist at the end", r.live, n)
	}
	return r
}

func reportIngest(b *testing.B, r, base *ingestResult) {
	wall := r.proc.Wall.Seconds()
	perPass := float64(len(testSource(b).units)) / testSource(b).loop.Seconds()
	lines := []string{
		fmt.Sprintf("window %.1f s; %d RTMP publishers of 1 Mbit/s 720p30 H.264 + AAC, each packaged by mps", wall, r.streams),
		fmt.Sprintf("mps CPU: %.2f s = %.3f cores; per stream %.4f cores = %.2f CPU-s per stream-minute",
			r.proc.CPU.Seconds(), r.proc.Cores(), r.perStream(), r.perStream()*60),
		fmt.Sprintf("mps RSS: peak %s, end %s, fresh server %s; per stream %s",
			mb(r.proc.PeakRSS), mb(r.proc.EndRSS), mb(r.startRSS), mb(r.rssPerStream())),
		fmt.Sprintf("ratio vs ffmpeg -c copy -f hls (%.4f cores, %s RSS per stream): CPU per stream x%.2f, RSS per stream x%.2f",
			base.perStream(), mb(base.proc.PeakRSS), r.perStream()/base.perStream(), float64(r.rssPerStream())/float64(base.proc.PeakRSS)),
		fmt.Sprintf("publishers wrote %.0f access units/s (%.0f/s in real time); streams live at the end: %d of %d; publisher errors: %d",
			r.unitsRate, perPass*float64(r.streams), r.live, r.streams, len(r.pubErrs)),
		fmt.Sprintf("publishers (this process): %.2f cores; machine busy %.0f%%", r.self.Seconds()/wall, r.busy*100),
		fmt.Sprintf("mps warnings/errors in the log: %d", len(r.problems)),
	}
	for i, e := range r.pubErrs {
		if i == 5 {
			break
		}
		lines = append(lines, "  publisher: "+e)
	}
	for i, p := range r.problems {
		if i == 5 {
			lines = append(lines, fmt.Sprintf("  ... %d more", len(r.problems)-5))
			break
		}
		lines = append(lines, "  log: "+p)
	}
	report(fmt.Sprintf("BenchmarkIngest publishers=%d", r.streams), lines...)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r.proc.Cores(), "mps-cores")
	b.ReportMetric(r.perStream(), "cores/stream")
	b.ReportMetric(float64(r.rssPerStream())/(1<<20), "MB-RSS/stream")
	b.ReportMetric(r.perStream()/base.perStream(), "cpu-x-ffmpeg")
}
