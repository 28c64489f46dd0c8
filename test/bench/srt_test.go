//go:build bench

package bench

// BenchmarkSRTIngest: CPU and memory per stream for N SRT publishers (gosrt
// callers in this process, sending MPEG-TS in 1316-byte packets in real
// time), beside N RTMP publishers of the same media in the same run, each
// phase on a fresh server. The media is the RTMP side of BenchmarkWHIPIngest
// (720p30 H.264 without B-frames, 900 kbit/s, keyframe every 2 s, 96 kbit/s
// AAC); the SRT publishers mux its access units with ingest/tsdemux's Muxer.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	gosrt "github.com/datarhei/gosrt"

	"github.com/mps-dev/mps/ingest/tsdemux"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// srtPacketSize is seven TS packets: one SRT datagram.
const srtPacketSize = 1316

// srtFreeUDPPort returns a loopback UDP port that was free a moment ago.
func srtFreeUDPPort(tb testing.TB) int {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// srtConfig enables the SRT listener on a free loopback UDP port.
func srtConfig(tb testing.TB) (config, addr string) {
	addr = fmt.Sprintf("127.0.0.1:%d", srtFreeUDPPort(tb))
	return benchConfig + fmt.Sprintf(`
srt:
  enabled: true
  address: %q
`, addr), addr
}

// srtUnit is one access unit of the source in the Muxer's form.
type srtUnit struct {
	video    bool
	key      bool
	dts, pts time.Duration
	payload  []byte // AVCC without parameter sets or AUD; or one AAC frame
}

// srtUnits converts the source's units once per publisher set.
func srtUnits(src *source) ([]srtUnit, error) {
	out := make([]srtUnit, 0, len(src.units))
	for _, u := range src.units {
		su := srtUnit{video: u.video, dts: u.dts, pts: u.pts, payload: u.frame}
		if u.video {
			su.key = h264.IsRandomAccess(u.au)
			var nalus h264.AVCC
			for _, n := range u.au {
				if typ := h264.NALUType(n[0] & 0x1f); typ != h264.NALUTypeSPS && typ != h264.NALUTypePPS && typ != h264.NALUTypeAccessUnitDelimiter {
					nalus = append(nalus, n)
				}
			}
			b, err := nalus.Marshal()
			if err != nil {
				return nil, err
			}
			su.payload = b
		}
		out = append(out, su)
	}
	return out, nil
}

// srtWriter writes one SRT packet per Write. gosrt refuses a packet with
// io.EOF when its send queue is full (or the connection closed): the write
// is retried for up to two seconds, as ingest/srt's own writer does.
type srtWriter struct {
	ctx   context.Context
	conn  gosrt.Conn
	bytes *atomic.Int64
}

func (w *srtWriter) Write(p []byte) (int, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := w.conn.Write(p)
		if err == nil {
			w.bytes.Add(int64(n))
			return n, nil
		}
		if !errors.Is(err, io.EOF) || time.Now().After(deadline) || w.ctx.Err() != nil {
			return 0, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// srtPublisher sends the source to one SRT listener in real time, in a loop.
type srtPublisher struct {
	Addr     string // host:port
	StreamID string // publish:live/NAME[:KEY]
	Src      *source
	Units    []srtUnit // srtUnits(Src)

	Frames atomic.Int64 // access units written
	Bytes  atomic.Int64 // MPEG-TS bytes written
}

// run connects and publishes until ctx ends; it returns the first error.
func (p *srtPublisher) run(ctx context.Context) error {
	cfg := gosrt.DefaultConfig()
	cfg.StreamId = p.StreamID
	conn, err := gosrt.Dial("srt", p.Addr, cfg)
	if err != nil {
		return fmt.Errorf("srt connect %s %s: %w", p.Addr, p.StreamID, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	video := &stream.Track{Index: 0, Codec: &codecs.H264{SPS: p.Src.sps, PPS: p.Src.pps}, ClockRate: 90000}
	audio := &stream.Track{Index: 1, Codec: &codecs.MPEG4Audio{Config: *p.Src.audio}, ClockRate: p.Src.audio.SampleRate}
	mux := &tsdemux.Muxer{
		W:         &srtWriter{ctx: ctx, conn: conn, bytes: &p.Bytes},
		Tracks:    []*stream.Track{video, audio},
		ChunkSize: srtPacketSize,
	}
	if err := mux.Initialize(); err != nil {
		return err
	}
	start := time.Now()
	for pass := 0; ; pass++ {
		offset := time.Duration(pass) * p.Src.loop
		for i := range p.Units {
			u := &p.Units[i]
			dts := u.dts + offset
			if wait := time.Until(start.Add(dts)); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			} else if ctx.Err() != nil {
				return nil
			}
			au := &stream.AccessUnit{Track: audio, DTS: dts, PTS: u.pts + offset, Key: true, Payload: u.payload}
			if u.video {
				au.Track, au.Key = video, u.key
			}
			if err := mux.WriteUnit(au); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("srt publish %s: %w", p.StreamID, err)
			}
			p.Frames.Add(1)
		}
	}
}

// srtStreamOK checks GET /api/v1/streams/{name}: live, over SRT, with
// H.264 and AAC and bytes coming in.
func srtStreamOK(ctx context.Context, client *http.Client, u string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s %s", u, resp.Status, b)
	}
	var in stream.Info
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	var cs []string
	for _, t := range in.Tracks {
		cs = append(cs, t.Codec)
	}
	if in.State != stream.StateLive || in.Protocol != "srt" || in.BytesIn == 0 || fmt.Sprint(cs) != "[h264 aac]" {
		return fmt.Errorf("GET %s: state %q protocol %q bytes_in %d tracks %v", u, in.State, in.Protocol, in.BytesIn, cs)
	}
	return nil
}

// runSRTIngest runs n SRT publishers against a fresh server.
func runSRTIngest(b *testing.B, src *source, n int, warmup, window time.Duration) *ingestResult {
	units, err := srtUnits(src)
	if err != nil {
		b.Fatal(err)
	}
	cfg, addr := srtConfig(b)
	s := startServer(b, cfg)
	r := &ingestResult{streams: n}
	r.startRSS = idleRSS(b, s.PID(), time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Publishers start over two seconds, as in runIngest.
	pubs := make([]*srtPublisher, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range pubs {
		pubs[i] = &srtPublisher{Addr: addr, StreamID: fmt.Sprintf("publish:live/srt%d", i), Src: src, Units: units}
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
		if err := waitHTTP(ctx, client, s.URL(fmt.Sprintf("/live/srt%d/t0.m3u8", i)), 30*time.Second); err != nil {
			mu.Lock()
			errs := append([]string(nil), r.pubErrs...)
			mu.Unlock()
			b.Fatalf("stream %d: %v\npublisher errors: %q\nmps: %s", i, err, errs, testutil.Tail(s.Log.String(), 20))
		}
	}
	time.Sleep(warmup)

	count := func() (t int64) {
		for _, p := range pubs {
			t += p.Frames.Load()
		}
		return t
	}
	meter := startMeter(b, s.PID())
	u0 := count()
	time.Sleep(window)
	w := meter.Stop(b)
	r.unitsRate = float64(count()-u0) / w.Procs[0].Wall.Seconds()
	r.proc, r.self, r.busy = w.Procs[0], w.SelfCPU, w.MachineBusy

	// Every stream must still be packaged and listed in the API as SRT.
	var apiErrs []string
	for i := range pubs {
		if err := waitHTTP(ctx, client, s.URL(fmt.Sprintf("/live/srt%d/t0.m3u8", i)), 5*time.Second); err == nil {
			r.live++
		}
		if err := srtStreamOK(ctx, client, s.URL(fmt.Sprintf("/api/v1/streams/live/srt%d", i))); err != nil {
			apiErrs = append(apiErrs, err.Error())
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
	if len(apiErrs) > 0 {
		b.Errorf("%d of %d streams missing or wrong in the API: %s", len(apiErrs), n, apiErrs[0])
	}
	return r
}

// BenchmarkSRTIngest compares N SRT publishers with N RTMP publishers of
// the same 720p30 H.264 + AAC media, each stream packaged to LL-HLS and
// DASH by mps. N is MPS_BENCH_SRT_PUBLISHERS (default 20).
func BenchmarkSRTIngest(b *testing.B) {
	n := envInts(b, "MPS_BENCH_SRT_PUBLISHERS", []int{20})[0]
	warmup, window := phaseTimes(b)
	src := webrtcTestMedia(b).src
	fmt.Printf("machine: %s\nwarm-up %v, window %v per phase\n", machine(), warmup, window)
	var rtmp, srt *ingestResult
	b.Run(fmt.Sprintf("rtmp=%d", n), func(b *testing.B) {
		rtmp = runIngest(b, src, n, warmup, window)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(rtmp.perStream(), "cores/stream")
		b.ReportMetric(float64(rtmp.rssPerStream())/(1<<20), "MB-RSS/stream")
	})
	b.Run(fmt.Sprintf("srt=%d", n), func(b *testing.B) {
		srt = runSRTIngest(b, src, n, warmup, window)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(srt.perStream(), "cores/stream")
		b.ReportMetric(float64(srt.rssPerStream())/(1<<20), "MB-RSS/stream")
		if rtmp != nil {
			b.ReportMetric(srt.perStream()/rtmp.perStream(), "cpu-x-rtmp")
			b.ReportMetric(float64(srt.rssPerStream())/float64(rtmp.rssPerStream()), "rss-x-rtmp")
		}
	})
	if rtmp == nil || srt == nil {
		return
	}
	lines := []string{fmt.Sprintf("%-6s %8s %10s %14s %18s %10s %12s %12s %12s %6s %8s %8s",
		"proto", "streams", "mps cores", "cores/stream", "CPU-s/stream-min", "peak RSS", "RSS/stream", "x RTMP CPU", "units/s", "live", "clients", "busy")}
	for _, x := range []struct {
		name string
		r    *ingestResult
	}{{"rtmp", rtmp}, {"srt", srt}} {
		r := x.r
		lines = append(lines, fmt.Sprintf("%-6s %8d %10.3f %14.4f %18.2f %10s %12s %12.2f %12.0f %6d %8.2f %7.0f%%",
			x.name, r.streams, r.proc.Cores(), r.perStream(), r.perStream()*60, mb(r.proc.PeakRSS), mb(r.rssPerStream()),
			r.perStream()/rtmp.perStream(), r.unitsRate, r.live, r.self.Seconds()/r.proc.Wall.Seconds(), r.busy*100))
	}
	lines = append(lines, fmt.Sprintf("SRT/RTMP: CPU per stream x%.2f, RSS per stream x%.2f",
		srt.perStream()/rtmp.perStream(), float64(srt.rssPerStream())/float64(rtmp.rssPerStream())))
	lines = append(lines, fmt.Sprintf("mps warnings/errors: rtmp %d, srt %d; publisher errors: rtmp %d, srt %d",
		len(rtmp.problems), len(srt.problems), len(rtmp.pubErrs), len(srt.pubErrs)))
	for i, p := range srt.problems {
		if i == 5 {
			break
		}
		lines = append(lines, "  srt log: "+p)
	}
	report(fmt.Sprintf("BenchmarkSRTIngest: %d publishers of 720p30 H.264 (no B-frames, 900 kbit/s) + AAC, RTMP vs SRT (MPEG-TS, 1316-byte packets)", n), lines...)
	fmt.Printf("BenchmarkSRTIngest: SRT %.4f cores/stream, %s RSS/stream; RTMP %.4f cores/stream, %s RSS/stream; SRT/RTMP CPU x%.2f\n",
		srt.perStream(), mb(srt.rssPerStream()), rtmp.perStream(), mb(rtmp.rssPerStream()), srt.perStream()/rtmp.perStream())
}
