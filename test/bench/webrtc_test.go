//go:build bench

package bench

// WebRTC benchmarks:
//
//   - BenchmarkWHIPIngest: CPU per stream for N WHIP publishers (pion, in
//     this process, sending pre-encoded 720p30 H.264 + Opus in real time),
//     beside N RTMP publishers of the same video (with AAC) in the same run.
//   - BenchmarkWHEPReaders: CPU of mps for 1 and 100 WHEP readers (pion, in
//     this process) of one WHIP stream, and the WHIP -> WHEP latency that
//     every reader sees: the publisher stamps frame i with an SEI NAL unit
//     and notes when it wrote it; a reader notes when the frame's last
//     packet arrived.
//
// The video has no B-frames (browsers send none), a keyframe every 2 s.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/mps-dev/mps/test/testutil"
)

// webrtcMedia is the WebRTC benchmarks' source: the video (and AAC, for
// the RTMP comparison) of an FLV without B-frames, and Opus packets of 20 ms.
type webrtcMedia struct {
	src  *source  // for the RTMP publishers
	opus [][]byte // 20 ms packets
}

var (
	webrtcMediaOnce sync.Once
	webrtcMediaVal  *webrtcMedia
	webrtcMediaErr  error
)

func webrtcTestMedia(tb testing.TB) *webrtcMedia {
	tb.Helper()
	webrtcMediaOnce.Do(func() {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			webrtcMediaErr = fmt.Errorf("ffmpeg is not installed: %w", err)
			return
		}
		flv := filepath.Join(workDir, "webrtc-src.flv")
		secs := strconv.Itoa(int(mediaDuration.Seconds()))
		out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
			"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", secs,
			"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0", "-profile:v", "main",
			"-b:v", "900k", "-maxrate", "900k", "-bufsize", "1800k",
			"-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
			"-c:a", "aac", "-b:a", "96k", "-ac", "2",
			"-f", "flv", flv).CombinedOutput()
		if err != nil {
			webrtcMediaErr = fmt.Errorf("encode webrtc test media: %v\n%s", err, out)
			return
		}
		src, err := loadFLV(flv)
		if err != nil {
			webrtcMediaErr = err
			return
		}
		ogg, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", secs, "-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", "-").Output()
		if err != nil {
			webrtcMediaErr = fmt.Errorf("encode opus: %v", err)
			return
		}
		webrtcMediaVal = &webrtcMedia{src: src, opus: oggPackets(ogg)}
		if len(webrtcMediaVal.opus) == 0 {
			webrtcMediaErr = fmt.Errorf("no opus packets")
		}
	})
	if webrtcMediaErr != nil {
		tb.Fatal(webrtcMediaErr)
	}
	return webrtcMediaVal
}

// oggPackets splits an Ogg Opus stream into packets, without the headers.
func oggPackets(out []byte) [][]byte {
	var pkts [][]byte
	var pkt []byte
	for len(out) >= 27 && bytes.HasPrefix(out, []byte("OggS")) {
		n := int(out[26])
		if len(out) < 27+n {
			break
		}
		segs, body := out[27:27+n], out[27+n:]
		off := 0
		for _, l := range segs {
			if off+int(l) > len(body) {
				break
			}
			pkt = append(pkt, body[off:off+int(l)]...)
			off += int(l)
			if l < 255 {
				if !bytes.HasPrefix(pkt, []byte("Opus")) {
					pkts = append(pkts, pkt)
				}
				pkt = nil
			}
		}
		out = body[min(off, len(body)):]
	}
	return pkts
}

// webrtcConfig enables WHIP and WHEP on free loopback ports.
func webrtcConfig(tb testing.TB) string {
	return benchConfig + fmt.Sprintf(`
webrtc:
  enabled: true
  udp_address: "127.0.0.1:%d"
  tcp_address: "127.0.0.1:%d"
`, testutil.FreePort(tb), testutil.FreePort(tb))
}

// benchPeer is a pion peer connection on loopback UDP only.
func benchPeer() (*webrtc.PeerConnection, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
}

// whepHTTP posts pc's offer (with every candidate) to u and applies the answer.
func whepHTTP(ctx context.Context, pc *webrtc.PeerConnection, u, key string) (location string, err error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return resp.Header.Get("Location"), pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)})
}

// seiUUID marks the latency SEI (no zero bytes: no emulation prevention).
var seiUUID = []byte("MPS-latency-test")

func indexSEI(i int) []byte {
	payload := append(append([]byte(nil), seiUUID...), fmt.Sprintf("%010d", i)...)
	n := append([]byte{6, 5, byte(len(payload))}, payload...)
	return append(n, 0x80)
}

func parseIndexSEI(n []byte) (int, bool) {
	if len(n) < 29 || n[0]&0x1f != 6 || n[1] != 5 || !bytes.Equal(n[3:19], seiUUID) {
		return 0, false
	}
	i, err := strconv.Atoi(string(n[19:29]))
	return i, err == nil
}

// whipPublisher sends the media to a WHIP endpoint in real time, in a loop.
type whipPublisher struct {
	URL   string
	Media *webrtcMedia
	Stamp bool // put an index SEI in every frame and remember its send time

	Units atomic.Int64 // video frames and audio packets written
	mu    sync.Mutex
	sent  map[int]time.Time
}

func (p *whipPublisher) sentAt(i int) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.sent[i]
	return t, ok
}

// run publishes until ctx ends.
func (p *whipPublisher) run(ctx context.Context) error {
	pc, err := benchPeer()
	if err != nil {
		return err
	}
	defer pc.Close()
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "bench")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "bench")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		s, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		go func() { // read RTCP (PLI) so that buffers do not fill
			buf := make([]byte, 1500)
			for {
				if _, _, err := s.Sender().Read(buf); err != nil {
					return
				}
			}
		}()
	}
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = whepHTTP(hctx, pc, p.URL, "")
	cancel()
	if err != nil {
		return fmt.Errorf("whip %s: %w", p.URL, err)
	}
	if p.Stamp {
		p.sent = map[int]time.Time{}
	}
	src := p.Media.src
	var frames [][]byte // video units of one pass, Annex-B
	var keys []bool
	for _, u := range src.units {
		if u.video {
			frames = append(frames, nil)
			keys = append(keys, h264.IsRandomAccess(u.au))
		}
	}
	vi0 := 0
	for _, u := range src.units {
		if !u.video {
			continue
		}
		var nalus [][]byte
		if keys[vi0] {
			nalus = append(nalus, src.sps, src.pps)
		}
		for _, n := range u.au {
			if typ := h264.NALUType(n[0] & 0x1f); typ != h264.NALUTypeSPS && typ != h264.NALUTypePPS && typ != h264.NALUTypeAccessUnitDelimiter {
				nalus = append(nalus, n)
			}
		}
		frames[vi0], _ = h264.AnnexB(nalus).Marshal()
		vi0++
	}
	start := time.Now()
	for vi, ai := 0, 0; ; {
		vt, at := time.Duration(vi)*time.Second/30, time.Duration(ai)*20*time.Millisecond
		if wait := time.Until(start.Add(min(vt, at))); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		} else if ctx.Err() != nil {
			return nil
		}
		if at < vt {
			err = audio.WriteSample(pionmedia.Sample{Data: p.Media.opus[ai%len(p.Media.opus)], Duration: 20 * time.Millisecond})
			ai++
		} else {
			b := frames[vi%len(frames)]
			if p.Stamp {
				// Annex-B start code + SEI before the frame's NAL units.
				sei := append([]byte{0, 0, 0, 1}, indexSEI(vi)...)
				b = append(sei, b...)
				p.mu.Lock()
				p.sent[vi] = time.Now()
				p.mu.Unlock()
			}
			err = video.WriteSample(pionmedia.Sample{Data: b, Duration: time.Second / 30})
			vi++
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("whip %s: %w", p.URL, err)
		}
		p.Units.Add(1)
	}
}

// whepReader plays a stream over WHEP and measures per-frame latency
// against a stamping publisher.
type whepReader struct {
	URL   string
	Pub   *whipPublisher // for send times; nil: count only
	Bytes atomic.Int64

	mu      sync.Mutex
	first   time.Time
	lat     []time.Duration
	cached  int
	stamped int
	pc      *webrtc.PeerConnection
}

func (r *whepReader) start(ctx context.Context) error {
	pc, err := benchPeer()
	if err != nil {
		return err
	}
	r.pc = pc
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		go func() {
			cur, curTS, have := 0, uint32(0), false
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				r.Bytes.Add(int64(len(pkt.Payload)))
				if !video || r.Pub == nil {
					continue
				}
				now := time.Now()
				if p := pkt.Payload; len(p) > 0 && p[0]&0x1f == 6 {
					if i, ok := parseIndexSEI(p); ok {
						cur, curTS, have = i, pkt.Timestamp, true
					}
				}
				r.mu.Lock()
				if r.first.IsZero() {
					r.first = now
				}
				if pkt.Marker && have && pkt.Timestamp == curTS {
					have = false
					r.stamped++
					if at, ok := r.Pub.sentAt(cur); ok {
						if at.Before(r.first) {
							r.cached++
						} else {
							r.lat = append(r.lat, now.Sub(at))
						}
					}
				}
				r.mu.Unlock()
			}
		}()
	})
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := whepHTTP(hctx, pc, r.URL, ""); err != nil {
		pc.Close()
		return err
	}
	return nil
}

// latencies returns the samples so far and forgets them.
func (r *whepReader) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.lat
	r.lat = nil
	return out
}

// runWHIPIngest runs n WHIP publishers against a fresh server.
func runWHIPIngest(b *testing.B, m *webrtcMedia, n int, warmup, window time.Duration) *ingestResult {
	s := startServer(b, webrtcConfig(b))
	r := &ingestResult{streams: n}
	r.startRSS = idleRSS(b, s.PID(), time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pubs := make([]*whipPublisher, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range pubs {
		pubs[i] = &whipPublisher{URL: s.URL(fmt.Sprintf("/whip/live/whip%d", i)), Media: m}
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
		if err := waitHTTP(ctx, client, s.URL(fmt.Sprintf("/live/whip%d/t0.m3u8", i)), 30*time.Second); err != nil {
			b.Fatalf("stream %d: %v\nmps: %s", i, err, testutil.Tail(s.Log.String(), 20))
		}
	}
	time.Sleep(warmup)
	units := func() (t int64) {
		for _, p := range pubs {
			t += p.Units.Load()
		}
		return t
	}
	meter := startMeter(b, s.PID())
	u0 := units()
	time.Sleep(window)
	w := meter.Stop(b)
	r.unitsRate = float64(units()-u0) / w.Procs[0].Wall.Seconds()
	r.proc, r.self, r.busy = w.Procs[0], w.SelfCPU, w.MachineBusy
	for i := range pubs {
		if err := waitHTTP(ctx, client, s.URL(fmt.Sprintf("/live/whip%d/t0.m3u8", i)), 5*time.Second); err == nil {
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

// BenchmarkWHIPIngest compares N WHIP publishers with N RTMP publishers of
// the same 720p30 video (Opus audio over WHIP, AAC over RTMP), each stream
// packaged to LL-HLS and DASH by mps. N is MPS_BENCH_WHIP_PUBLISHERS
// (default 20).
func BenchmarkWHIPIngest(b *testing.B) {
	n := envInts(b, "MPS_BENCH_WHIP_PUBLISHERS", []int{20})[0]
	warmup, window := phaseTimes(b)
	m := webrtcTestMedia(b)
	fmt.Printf("machine: %s\nwarm-up %v, window %v per phase\n", machine(), warmup, window)
	var rtmp, whip *ingestResult
	b.Run(fmt.Sprintf("rtmp=%d", n), func(b *testing.B) {
		rtmp = runIngest(b, m.src, n, warmup, window)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(rtmp.perStream(), "cores/stream")
	})
	b.Run(fmt.Sprintf("whip=%d", n), func(b *testing.B) {
		whip = runWHIPIngest(b, m, n, warmup, window)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(whip.perStream(), "cores/stream")
	})
	if rtmp == nil || whip == nil {
		return
	}
	var lines []string
	lines = append(lines, fmt.Sprintf("%-6s %8s %10s %14s %18s %10s %12s %12s %12s %6s %8s %8s",
		"proto", "streams", "mps cores", "cores/stream", "CPU-s/stream-min", "peak RSS", "RSS/stream", "x RTMP CPU", "units/s", "live", "clients", "busy"))
	for _, x := range []struct {
		name string
		r    *ingestResult
	}{{"rtmp", rtmp}, {"whip", whip}} {
		r := x.r
		lines = append(lines, fmt.Sprintf("%-6s %8d %10.3f %14.4f %18.2f %10s %12s %12.2f %12.0f %6d %8.2f %7.0f%%",
			x.name, r.streams, r.proc.Cores(), r.perStream(), r.perStream()*60, mb(r.proc.PeakRSS), mb(r.rssPerStream()),
			r.perStream()/rtmp.perStream(), r.unitsRate, r.live, r.self.Seconds()/r.proc.Wall.Seconds(), r.busy*100))
	}
	lines = append(lines, fmt.Sprintf("mps warnings/errors: rtmp %d, whip %d; publisher errors: rtmp %d, whip %d",
		len(rtmp.problems), len(whip.problems), len(rtmp.pubErrs), len(whip.pubErrs)))
	for i, p := range whip.problems {
		if i == 5 {
			break
		}
		lines = append(lines, "  whip log: "+p)
	}
	report(fmt.Sprintf("BenchmarkWHIPIngest: %d publishers of 720p30 H.264 (no B-frames, 900 kbit/s) + audio, RTMP vs WHIP", n), lines...)
}

// whepPhase is one phase of BenchmarkWHEPReaders.
type whepPhase struct {
	readers  int
	proc     usage
	self     time.Duration
	busy     float64
	mbps     float64 // received by all readers
	lat      dist
	cached   int
	stamped  int
	failed   int
	problems []string
}

// BenchmarkWHEPReaders measures mps with 1 and 100 WHEP readers of one
// WHIP stream (H.264 + Opus: no AAC -> Opus transcode), and the latency
// from the publisher's write of a frame to its last packet's arrival at
// each reader. Counts: MPS_BENCH_WHEP_READERS (default 1,100).
func BenchmarkWHEPReaders(b *testing.B) {
	counts := envInts(b, "MPS_BENCH_WHEP_READERS", []int{1, 100})
	warmup, window := phaseTimes(b)
	m := webrtcTestMedia(b)
	fmt.Printf("machine: %s\nwarm-up %v, window %v per phase\n", machine(), warmup, window)
	var phases []*whepPhase
	for _, n := range counts {
		b.Run(fmt.Sprintf("readers=%d", n), func(b *testing.B) {
			ph := runWHEPReaders(b, m, n, warmup, window)
			phases = append(phases, ph)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ph.proc.Cores(), "mps-cores")
			b.ReportMetric(float64(ph.lat.P50)/1e6, "ms-p50")
			b.ReportMetric(float64(ph.lat.P95)/1e6, "ms-p95")
		})
	}
	lines := []string{fmt.Sprintf("%-8s %10s %18s %10s %10s %-52s %8s %8s", "readers", "mps cores", "cores/reader", "peak RSS", "Mbit/s", "latency (all readers' frames)", "clients", "busy")}
	var base *whepPhase
	for _, ph := range phases {
		per := "–"
		if base != nil && ph.readers > base.readers {
			per = fmt.Sprintf("%.5f", (ph.proc.Cores()-base.proc.Cores())/float64(ph.readers-base.readers))
		}
		if base == nil {
			base = ph
		}
		lines = append(lines, fmt.Sprintf("%-8d %10.3f %18s %10s %10.1f %-52s %8.2f %7.0f%%",
			ph.readers, ph.proc.Cores(), per, mb(ph.proc.PeakRSS), ph.mbps, ph.lat.String(), ph.self.Seconds()/ph.proc.Wall.Seconds(), ph.busy*100))
	}
	for _, ph := range phases {
		lines = append(lines, fmt.Sprintf("readers=%d: %d stamped frames arrived, %d from the GOP cache left out, %d readers failed, %d mps warnings/errors",
			ph.readers, ph.stamped, ph.cached, ph.failed, len(ph.problems)))
		for i, p := range ph.problems {
			if i == 3 {
				break
			}
			lines = append(lines, "  log: "+p)
		}
	}
	report("BenchmarkWHEPReaders: one WHIP stream (720p30 H.264 900 kbit/s + Opus 64 kbit/s), N pion WHEP readers (cores/reader is above the first phase)", lines...)
}

func runWHEPReaders(b *testing.B, m *webrtcMedia, n int, warmup, window time.Duration) *whepPhase {
	s := startServer(b, webrtcConfig(b))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := &whipPublisher{URL: s.URL("/whip/live/fan"), Media: m, Stamp: true}
	pubErr := make(chan error, 1)
	go func() { pubErr <- pub.run(ctx) }()
	client := newHTTPClient(2)
	if err := waitHTTP(ctx, client, s.URL("/live/fan/t0.m3u8"), 30*time.Second); err != nil {
		b.Fatalf("stream: %v\nmps: %s", err, testutil.Tail(s.Log.String(), 20))
	}
	ph := &whepPhase{readers: n}
	readers := make([]*whepReader, 0, n)
	for i := 0; i < n; i++ {
		r := &whepReader{URL: s.URL("/whep/live/fan"), Pub: pub}
		if err := r.start(ctx); err != nil {
			ph.failed++
			if ph.failed == 1 {
				b.Errorf("reader %d: %v", i, err)
			}
			continue
		}
		readers = append(readers, r)
		time.Sleep(5 * time.Second / time.Duration(n)) // join over 5 s
	}
	defer func() {
		for _, r := range readers {
			r.pc.Close()
		}
	}()
	time.Sleep(warmup)
	for _, r := range readers {
		r.latencies() // only the window counts
	}
	var bytes0 int64
	for _, r := range readers {
		bytes0 += r.Bytes.Load()
	}
	meter := startMeter(b, s.PID())
	time.Sleep(window)
	w := meter.Stop(b)
	ph.proc, ph.self, ph.busy = w.Procs[0], w.SelfCPU, w.MachineBusy
	var all []time.Duration
	var bytes1 int64
	for _, r := range readers {
		bytes1 += r.Bytes.Load()
		all = append(all, r.latencies()...)
		r.mu.Lock()
		ph.cached += r.cached
		ph.stamped += r.stamped
		r.mu.Unlock()
	}
	ph.mbps = float64(bytes1-bytes0) * 8 / 1e6 / w.Procs[0].Wall.Seconds()
	ph.lat = summarize(all)
	select {
	case err := <-pubErr:
		b.Errorf("publisher: %v", err)
	default:
	}
	cancel()
	ph.problems = s.Problems()
	// Each reader should get ~1 Mbit/s; a starved one shows as few frames.
	want := len(readers) * int(window.Seconds()*30)
	if len(all) < want/2 {
		b.Errorf("only %d frames matched in the window, want about %d", len(all), want)
	}
	return ph
}
