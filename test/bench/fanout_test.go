//go:build bench

package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// fanoutResult is one phase of BenchmarkFanout.
type fanoutResult struct {
	readers   int
	server    usage // the mps process during the window
	pub       usage // the ffmpeg publisher
	self      time.Duration
	busy      float64
	startRSS  int64 // the fresh server before the publisher
	parts     int64 // parts fetched in the window
	playlists int64
	bytes     int64
	catchUp   int64 // parts in the window fetched only after being listed
	stats     *clientStats
	problems  []string
}

// BenchmarkFanout measures what LL-HLS readers cost the server: one ffmpeg
// publisher copies a 1 Mbit/s 720p stream in real time, then 0 (the
// baseline), 100 and 500 readers follow the video and audio playlists with
// blocking reloads and fetch every part. CPU and RSS are the mps
// process's, from /proc.
func BenchmarkFanout(b *testing.B) {
	counts := envInts(b, "MPS_BENCH_READERS", []int{100, 500})
	warmup, window := phaseTimes(b)
	testMedia(b) // encode before anything is measured
	fmt.Printf("machine: %s\nwarm-up %v, window %v per phase\n", machine(), warmup, window)

	var base *fanoutResult
	baseline := func(b *testing.B) *fanoutResult {
		if base == nil {
			base = runFanout(b, 0, warmup, window)
		}
		return base
	}
	b.Run("readers=0", func(b *testing.B) {
		r := baseline(b)
		reportFanout(b, r, r)
	})
	var results []*fanoutResult
	for _, n := range counts {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			base := baseline(b)
			r := runFanout(b, n, warmup, window)
			results = append(results, r)
			reportFanout(b, r, base)
		})
	}
	if base == nil {
		return
	}
	lines := []string{fmt.Sprintf("%-8s %10s %16s %10s %12s %10s %8s %8s %12s %12s",
		"readers", "mps cores", "CPU/reader-min", "peak RSS", "RSS/reader", "parts/s", "failed", "lagged", "CPU x base", "RSS x base")}
	for _, r := range append([]*fanoutResult{base}, results...) {
		lines = append(lines, fmt.Sprintf("%-8d %10.3f %16s %10s %12s %10.1f %8d %7.1f%% %12.2f %12.2f",
			r.readers, r.server.Cores(), cpuPerReaderMin(r, base), mb(r.server.PeakRSS), rssPerReader(r, base),
			float64(r.parts)/r.server.Wall.Seconds(), r.stats.Failed.Load(), 100*float64(r.catchUp)/max(1, float64(r.parts)),
			r.server.Cores()/base.server.Cores(), float64(r.server.PeakRSS)/float64(base.server.PeakRSS)))
	}
	report("BenchmarkFanout summary (base = the same server and publisher with 0 readers; "+
		"per-reader figures are above it; lagged = parts fetched only after being listed)", lines...)
}

// runFanout runs one phase on a fresh server.
func runFanout(b *testing.B, readers int, warmup, window time.Duration) *fanoutResult {
	s := startServer(b, benchConfig)
	r := &fanoutResult{readers: readers, stats: newClientStats()}
	r.startRSS = idleRSS(b, s.PID(), time.Second)
	const name = "live/bench"
	pub := ffmpegPublish(b, s.RTMPURL(name))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	indexURL := s.URL("/" + name + "/index.m3u8")
	probe := newHTTPClient(4)
	if err := waitHTTP(ctx, probe, s.URL("/"+name+"/t0.m3u8"), 30*time.Second); err != nil {
		b.Fatalf("%v\npublisher: %s\nmps: %s", err, testutil.Tail(pub.Stderr.String(), 20), testutil.Tail(s.Log.String(), 20))
	}

	// Readers join over two seconds, as players would, not in one instant.
	var wg sync.WaitGroup
	client := newHTTPClient(4*readers + 16)
	for i := range readers {
		startReader(ctx, &wg, client, indexURL, r.stats)
		if i%10 == 9 {
			time.Sleep(2 * time.Second * 10 / time.Duration(readers))
		}
	}
	time.Sleep(warmup)

	m := startMeter(b, s.PID(), pub.PID())
	r.stats.ResetSpread()
	parts0, pl0, bytes0 := r.stats.Parts.Load(), r.stats.Playlists.Load(), r.stats.Bytes.Load()
	catch0 := r.stats.CatchUp.Load()
	time.Sleep(window)
	w := m.Stop(b)
	r.parts = r.stats.Parts.Load() - parts0
	r.playlists = r.stats.Playlists.Load() - pl0
	r.bytes = r.stats.Bytes.Load() - bytes0
	r.catchUp = r.stats.CatchUp.Load() - catch0
	r.server, r.pub, r.self, r.busy = w.Procs[0], w.Procs[1], w.SelfCPU, w.MachineBusy

	cancel()
	wg.Wait()
	if !pub.Running() {
		b.Errorf("the ffmpeg publisher stopped during the phase:\n%s", testutil.Tail(pub.Stderr.String(), 20))
	}
	r.problems = s.Problems()
	// Not timing thresholds: a player must get every part it asks for.
	if n := r.stats.Failed.Load(); n > 0 {
		b.Errorf("%d requests failed; first ones:\n%s", n, strings.Join(r.stats.FailSamples(), "\n"))
	}
	if n := r.stats.Dropped.Load(); n > 0 {
		b.Errorf("%d readers gave up after repeated failures", n)
	}
	return r
}

func cpuPerReaderMin(r, base *fanoutResult) string {
	if r.readers == 0 {
		return "-"
	}
	extra := r.server.CPU.Seconds() - base.server.Cores()*r.server.Wall.Seconds()
	return fmt.Sprintf("%.2f cpu-s", extra/float64(r.readers)/r.server.Wall.Minutes())
}

func rssPerReader(r, base *fanoutResult) string {
	if r.readers == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KB", float64(r.server.PeakRSS-base.server.PeakRSS)/1024/float64(r.readers))
}

func reportFanout(b *testing.B, r, base *fanoutResult) {
	wall := r.server.Wall.Seconds()
	expected := float64(r.readers) * 2 / 0.2 // video and audio, 200 ms parts
	lines := []string{
		fmt.Sprintf("window %.1f s; readers %d (each follows video and audio)", wall, r.readers),
		fmt.Sprintf("mps CPU: %.2f s = %.3f cores; CPU per reader-minute (above idle): %s", r.server.CPU.Seconds(), r.server.Cores(), cpuPerReaderMin(r, base)),
		fmt.Sprintf("mps RSS: peak %s, end %s, fresh server %s; RSS per reader (above idle peak): %s",
			mb(r.server.PeakRSS), mb(r.server.EndRSS), mb(r.startRSS), rssPerReader(r, base)),
		fmt.Sprintf("ratio vs 0-reader baseline: CPU x%.2f, peak RSS x%.2f (baseline %.3f cores, %s)",
			r.server.Cores()/base.server.Cores(), float64(r.server.PeakRSS)/float64(base.server.PeakRSS), base.server.Cores(), mb(base.server.PeakRSS)),
		fmt.Sprintf("parts fetched: %.1f/s (%.0f/s if every reader got every part), playlists %.1f/s, %.1f Mbit/s out",
			float64(r.parts)/wall, expected, float64(r.playlists)/wall, float64(r.bytes)*8/wall/1e6),
		fmt.Sprintf("failed requests: %d; dropped readers: %d; resyncs (fell out of the playlist): %d; aborted hints: %d; early reloads: %d",
			r.stats.Failed.Load(), r.stats.Dropped.Load(), r.stats.Resyncs.Load(), r.stats.Aborted.Load(), r.stats.Early.Load()),
		fmt.Sprintf("parts fetched behind live (listed before the reader asked, i.e. the reader lagged): %d of %d in the window (%.1f%%)",
			r.catchUp, r.parts, 100*float64(r.catchUp)/max(1, float64(r.parts))),
		fmt.Sprintf("fan-out spread (a part's delivery behind its first delivery): %s", r.stats.Spread()),
		fmt.Sprintf("publisher ffmpeg: %.3f cores; load generator (this process): %.2f cores; machine busy %.0f%%",
			r.pub.Cores(), r.self.Seconds()/wall, r.busy*100),
		fmt.Sprintf("mps warnings/errors in the log: %d", len(r.problems)),
	}
	for _, f := range r.stats.FailSamples() {
		lines = append(lines, "  failure: "+f)
	}
	for i, p := range r.problems {
		if i == 5 {
			lines = append(lines, fmt.Sprintf("  ... %d more", len(r.problems)-5))
			break
		}
		lines = append(lines, "  log: "+p)
	}
	report(fmt.Sprintf("BenchmarkFanout readers=%d", r.readers), lines...)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(r.server.Cores(), "mps-cores")
	b.ReportMetric(float64(r.server.PeakRSS)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(r.parts)/wall, "parts/s")
	b.ReportMetric(float64(r.stats.Failed.Load()), "failed")
	b.ReportMetric(r.server.Cores()/base.server.Cores(), "cpu-x-base")
	if r.readers > 0 {
		extra := r.server.CPU.Seconds() - base.server.Cores()*wall
		b.ReportMetric(extra/float64(r.readers)/r.server.Wall.Minutes(), "cpu-s/reader-min")
		b.ReportMetric(float64(r.server.PeakRSS-base.server.PeakRSS)/1024/float64(r.readers), "KB-RSS/reader")
	}
}
