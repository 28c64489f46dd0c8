//go:build bench

package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/mps-dev/mps/test/testutil"
)

// BenchmarkLatency measures how long after a publisher writes a video frame
// an LL-HLS client can have the part that holds it. A Go RTMP publisher
// writes the pre-encoded frames in real time and notes the wall-clock time
// of each one, by DTS. A client in the same process follows the video
// playlist with blocking reloads and preload-hinted part requests; it reads
// each part's moof (tfdt and trun sample durations) to know which frames it
// holds. The first frame of a part waits for the whole part to be cut, so
// it is the worst case; the target is the part duration plus 100 ms.
//
// The first phase has no other client; the next ones add background
// LL-HLS readers (MPS_BENCH_LATENCY_READERS, default 100) to show the
// latency under fan-out load.
func BenchmarkLatency(b *testing.B) {
	warmup, window := phaseTimes(b)
	loads := append([]int{0}, envInts(b, "MPS_BENCH_LATENCY_READERS", []int{100})...)
	src := testSource(b)
	fmt.Printf("machine: %s\nwarm-up %v, window %v per phase\n", machine(), warmup, window)
	var results []*latencyResult
	for _, n := range loads {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			r := runLatency(b, src, n, warmup, window)
			results = append(results, r)
			r.report(b)
		})
	}
	lines := []string{fmt.Sprintf("%-8s %-28s %-28s %-26s %s", "readers", "first frame p50/p95/max", "all frames p50/p95/max", "delivery p50/p95/max", "first-frame p95, max / target")}
	triple := func(d dist) string { return ms(d.P50) + " / " + ms(d.P95) + " / " + ms(d.Max) }
	for _, r := range results {
		df, da, dd := summarize(r.first), summarize(r.all), summarize(r.delivery)
		lines = append(lines, fmt.Sprintf("%-8d %-28s %-28s %-26s %.2f, %.2f",
			r.readers, triple(df), triple(da), triple(dd), df.P95.Seconds()/r.target.Seconds(), df.Max.Seconds()/r.target.Seconds()))
	}
	report("BenchmarkLatency summary (target = part duration + 100 ms)", lines...)
}

// latencyResult is one phase of BenchmarkLatency.
type latencyResult struct {
	readers    int
	target     time.Duration
	partTarget time.Duration
	first, all []time.Duration // latency of the first frame of each part, of every frame
	partDurs   []time.Duration
	// delivery is part available - write time of the frame that closed it
	// (the next part's first frame): the server's and HTTP's share alone,
	// without the wait for the part to fill.
	delivery  []time.Duration
	hinted    int // parts that came through the preload hint
	catchUp   int // parts fetched only after being listed
	unmatched int // frames with no write time
	parseErrs int
	failed    int64
	worst     string
	startup   time.Duration // first frame written -> first playable playlist
	mps       usage
	busy      float64
	bg        *clientStats // the background readers
	problems  []string
	failures  []string
}

func runLatency(b *testing.B, src *source, readers int, warmup, window time.Duration) *latencyResult {
	s := startServer(b, benchConfig)
	const name = "live/latency"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &latencyResult{readers: readers, bg: newClientStats()}

	// Write times by DTS in milliseconds: RTMP carries whole milliseconds,
	// and the packager's timeline starts at the first frame (DTS 0).
	var mu sync.Mutex
	written := map[int64]time.Time{}
	var firstWrite time.Time
	pub := &publisher{URL: s.RTMPURL(name), Src: src, OnVideo: func(dts time.Duration, at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if firstWrite.IsZero() {
			firstWrite = at
		}
		written[dts.Milliseconds()] = at
	}}
	pubErr := make(chan error, 1)
	go func() { pubErr <- pub.run(ctx) }()

	mediaURL := s.URL("/" + name + "/t0.m3u8")
	client := newHTTPClient(4)
	if err := waitHTTP(ctx, client, mediaURL, 30*time.Second); err != nil {
		b.Fatalf("%v\nmps: %s", err, testutil.Tail(s.Log.String(), 20))
	}
	playable := time.Now()
	f := &follower{client: client, url: mediaURL, stats: newClientStats()}
	pl, err := f.playlist(ctx, pos{-1, 0})
	if err != nil {
		b.Fatal(err)
	}
	initData, err := f.get(ctx, f.resolve(pl.mapURI))
	if err != nil {
		b.Fatal(err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(initData)); err != nil || len(init.Tracks) != 1 {
		b.Fatalf("init segment: %v (%d tracks)", err, len(init.Tracks))
	}
	timescale := int64(init.Tracks[0].TimeScale)
	r.partTarget = pl.partTarget
	r.target = pl.partTarget + 100*time.Millisecond

	measuring := false
	var worst time.Duration
	f.onPart = func(p pos, data []byte, at time.Time, viaHint bool) {
		var parts fmp4.Parts
		err := parts.Unmarshal(data)
		mu.Lock()
		defer mu.Unlock()
		if !measuring {
			return
		}
		if err != nil || len(parts) != 1 || len(parts[0].Tracks) != 1 {
			r.parseErrs++
			return
		}
		tr := parts[0].Tracks[0]
		if viaHint {
			r.hinted++
		} else {
			r.catchUp++
		}
		var dur int64
		for _, smp := range tr.Samples {
			dur += int64(smp.Duration)
		}
		partDur := time.Duration(dur * int64(time.Second) / timescale)
		r.partDurs = append(r.partDurs, partDur)
		if wt, ok := written[(int64(tr.BaseTime)+dur)*1000/timescale]; ok {
			r.delivery = append(r.delivery, at.Sub(wt))
		}
		dts := int64(tr.BaseTime)
		for i, smp := range tr.Samples {
			wt, ok := written[dts*1000/timescale]
			dts += int64(smp.Duration)
			if !ok {
				r.unmatched++
				continue
			}
			lat := at.Sub(wt)
			r.all = append(r.all, lat)
			if i == 0 {
				r.first = append(r.first, lat)
				if lat > worst {
					worst = lat
					r.worst = fmt.Sprintf("%s: part %d.%d (%d frames, %s, hinted=%v) complete at %s",
						ms(lat), p.msn, p.part, len(tr.Samples), ms(partDur), viaHint, at.Format("15:04:05.000"))
				}
			}
		}
	}
	fctx, fcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.run(fctx)
	}()
	bgClient := newHTTPClient(4*readers + 16)
	for i := range readers {
		startReader(fctx, &wg, bgClient, s.URL("/"+name+"/index.m3u8"), r.bg)
		if i%10 == 9 {
			time.Sleep(2 * time.Second * 10 / time.Duration(readers))
		}
	}

	time.Sleep(warmup)
	mu.Lock()
	measuring = true
	r.startup = playable.Sub(firstWrite)
	mu.Unlock()
	r.bg.ResetSpread()
	m := startMeter(b, s.PID())
	time.Sleep(window)
	w := m.Stop(b)
	mu.Lock()
	measuring = false
	mu.Unlock()
	fcancel()
	wg.Wait()
	cancel()
	if err := <-pubErr; err != nil {
		b.Errorf("publisher: %v", err)
	}
	r.mps, r.busy = w.Procs[0], w.MachineBusy
	r.failed = f.stats.Failed.Load()
	r.failures = f.stats.FailSamples()
	r.problems = s.Problems()
	if len(r.first) == 0 {
		b.Errorf("no parts measured")
	}
	if r.failed > 0 || r.unmatched > 0 || r.parseErrs > 0 || r.bg.Failed.Load() > 0 {
		b.Errorf("%d failed requests (%d by background readers), %d frames without a write time, %d unparsable parts",
			r.failed+r.bg.Failed.Load(), r.bg.Failed.Load(), r.unmatched, r.parseErrs)
	}
	return r
}

func (r *latencyResult) report(b *testing.B) {
	df, da := summarize(r.first), summarize(r.all)
	over := 0
	for _, l := range r.first {
		if l > r.target {
			over++
		}
	}
	ratio := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()/r.target.Seconds()) }
	lines := []string{
		fmt.Sprintf("part target %s; target latency = part target + 100 ms = %s", ms(r.partTarget), ms(r.target)),
		fmt.Sprintf("first frame of each part: %s", df),
		fmt.Sprintf("    ratio to target: p50 %s, p95 %s, max %s; parts over target: %d of %d", ratio(df.P50), ratio(df.P95), ratio(df.Max), over, len(r.first)),
		fmt.Sprintf("all frames:               %s", da),
		fmt.Sprintf("    ratio to target: p50 %s, p95 %s, max %s", ratio(da.P50), ratio(da.P95), ratio(da.Max)),
		fmt.Sprintf("part durations: %s", summarize(r.partDurs)),
		fmt.Sprintf("delivery (part available - write of the frame that closed it): %s", summarize(r.delivery)),
		fmt.Sprintf("worst first frame: %s", r.worst),
		fmt.Sprintf("parts via preload hint: %d, fetched after being listed (catch-up): %d; unmatched frames: %d; unparsable parts: %d; failed requests: %d",
			r.hinted, r.catchUp, r.unmatched, r.parseErrs, r.failed),
		fmt.Sprintf("stream start: first frame written -> first playlist with a complete segment: %.2f s", r.startup.Seconds()),
		fmt.Sprintf("mps: %.3f cores, peak RSS %s; machine busy %.0f%%", r.mps.Cores(), mb(r.mps.PeakRSS), r.busy*100),
	}
	if r.readers > 0 {
		lines = append(lines, fmt.Sprintf("background readers: %d parts, failed requests %d, dropped %d, fan-out spread %s",
			r.bg.Parts.Load(), r.bg.Failed.Load(), r.bg.Dropped.Load(), r.bg.Spread()))
	}
	lines = append(lines, fmt.Sprintf("mps warnings/errors in the log: %d", len(r.problems)))
	for _, f := range r.failures {
		lines = append(lines, "  failure: "+f)
	}
	for i, p := range r.problems {
		if i == 5 {
			break
		}
		lines = append(lines, "  log: "+p)
	}
	report(fmt.Sprintf("BenchmarkLatency readers=%d (1 publisher; 1 measuring LL-HLS client on the video playlist)", r.readers), lines...)

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(df.P50.Milliseconds()), "first-p50-ms")
	b.ReportMetric(float64(df.P95.Milliseconds()), "first-p95-ms")
	b.ReportMetric(float64(df.Max.Milliseconds()), "first-max-ms")
	b.ReportMetric(float64(da.P50.Milliseconds()), "all-p50-ms")
	b.ReportMetric(float64(da.P95.Milliseconds()), "all-p95-ms")
	b.ReportMetric(df.P95.Seconds()/r.target.Seconds(), "first-p95-x-target")
	b.ReportMetric(float64(summarize(r.delivery).P95.Milliseconds()), "delivery-p95-ms")
}
