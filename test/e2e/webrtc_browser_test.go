package e2e

// WebRTC with real browsers and a latency measurement:
//
//   - Chromium (fake camera and microphone) publishes through WHIP from a
//     page test/browser/whip.mjs serves; the HLS output must decode and be
//     H.264 + Opus.
//   - Chromium plays an RTMP (H.264 + AAC) stream through WHEP from a page
//     test/browser/whep.mjs serves; its <video> must decode frames and an
//     Opus audio track must arrive.
//   - A pion WHIP publisher stamps every frame with its index (an SEI NAL
//     unit), a pion WHEP reader notes when each frame has arrived:
//     latency = arrival - send, logged as median and p95.

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
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

// webrtcBrowserDir is browserDir for the WebRTC scripts, which need only
// playwright-core (not hls.js or dash.js).
func webrtcBrowserDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	dir := filepath.Join(repoRoot, "test", "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		msg := "test/browser/node_modules lacks playwright-core: run `npm ci` in test/browser (make does)"
		if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	testutil.RequireTools(t, "node")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing (apt-get install chromium; make does): %v", chromium, err)
	}
	return dir
}

// nodeScript is a running test/browser script.
type nodeScript struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout strings.Builder
	stderr strings.Builder
	marker chan struct{} // closed when the script writes its marker line
	done   chan struct{}
	err    error
}

// startNodeScript runs node script args in dir; marker is the stderr line
// that says the script is ready (PUBLISHING).
func startNodeScript(t *testing.T, ctx context.Context, dir, script, marker string, args ...string) *nodeScript {
	t.Helper()
	ns := &nodeScript{marker: make(chan struct{}), done: make(chan struct{})}
	ns.cmd = exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, script)}, args...)...)
	ns.cmd.Dir = dir
	ns.cmd.Stdout = &ns.stdout
	stdin, err := ns.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	ns.stdin = stdin
	stderr, err := ns.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.cmd.Start(); err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			if sc.Text() == marker && !seen {
				seen = true
				close(ns.marker)
				continue
			}
			ns.stderr.WriteString(sc.Text() + "\n")
		}
		ns.err = ns.cmd.Wait()
		close(ns.done)
	}()
	t.Cleanup(func() {
		ns.stdin.Close()
		select {
		case <-ns.done:
		case <-time.After(20 * time.Second):
			ns.cmd.Process.Kill()
			<-ns.done
		}
	})
	return ns
}

// result closes stdin, waits for the script and decodes its JSON into v.
func (ns *nodeScript) result(t *testing.T, script string, v any) {
	t.Helper()
	ns.stdin.Close()
	select {
	case <-ns.done:
	case <-time.After(45 * time.Second):
		ns.cmd.Process.Kill()
		<-ns.done
	}
	if err := json.Unmarshal([]byte(ns.stdout.String()), v); err != nil {
		t.Fatalf("node %s: %v; output not JSON (%v):\n%s\nstderr:\n%s", script, ns.err, err, ns.stdout.String(), testutil.Tail(ns.stderr.String(), 30))
	}
}

// whipResult is what test/browser/whip.mjs prints.
type whipResult struct {
	OK                bool     `json:"ok"`
	Error             string   `json:"error"`
	Status            int      `json:"status"`
	Location          string   `json:"location"`
	DeleteStatus      int      `json:"deleteStatus"`
	State             string   `json:"state"`
	OfferCodecs       []string `json:"offerCodecs"`
	AnswerVideoCodecs []string `json:"answerVideoCodecs"`
	Video             *struct {
		Codec            string `json:"codec"`
		FramesEncoded    int    `json:"framesEncoded"`
		KeyFramesEncoded int    `json:"keyFramesEncoded"`
		PLICount         int    `json:"pliCount"`
		FIRCount         int    `json:"firCount"`
		FrameWidth       int    `json:"frameWidth"`
		FrameHeight      int    `json:"frameHeight"`
		Encoder          string `json:"encoder"`
	} `json:"video"`
	Audio *struct {
		Codec       string `json:"codec"`
		PacketsSent int    `json:"packetsSent"`
	} `json:"audio"`
	Events []string `json:"events"`
}

// TestBrowserWHIP publishes Chromium's fake camera and microphone through
// WHIP and checks that the answer chose H.264 and Opus, that the HLS output
// decodes in ffmpeg, and that the stream info shows webrtc, H.264 and Opus.
func TestBrowserWHIP(t *testing.T) {
	t.Parallel()
	dir := webrtcBrowserDir(t)
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	s := startWebRTCServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const name = "live/chromewhip"
	ns := startNodeScript(t, ctx, dir, "whip.mjs", "PUBLISHING",
		"--url", s.URL("/whip/"+name), "--key", "s3cret", "--hold", "40", "--timeout", "20")
	select {
	case <-ns.marker:
	case <-ns.done:
		var res whipResult
		ns.result(t, "whip.mjs", &res)
		t.Fatalf("Chromium did not publish: %s\n%s\nstderr:\n%s", res.Error, ns.stdout.String(), testutil.Tail(ns.stderr.String(), 20))
	}

	// The browser ramps its resolution up as bandwidth estimation grows,
	// and each new size is a new hub session: do not pin the size.
	// Browsers send a keyframe only when asked (PLI/FIR), so segments
	// close only if the server asks for keyframes often enough.
	if segs, last := waitSegments(s, name, 2, 20*time.Second); segs < 2 {
		t.Errorf("HLS of a browser WHIP stream: %d complete segments after 20 s of publishing (1 s segments), want >= 2; last answer: %.300s",
			segs, last)
	} else {
		p := ffprobe(t, s.HLSURL(name))
		v, a := p.ByType("video"), p.ByType("audio")
		if len(v) != 1 || v[0].CodecName != "h264" {
			t.Errorf("HLS video streams %+v, want one h264", v)
		}
		if len(a) != 1 || a[0].CodecName != "opus" {
			t.Errorf("HLS audio streams %+v, want one opus", a)
		}
		dec := ffmpegDecode(t, s.HLSURL(name), 2*time.Second)
		t.Logf("ffmpeg decoded %d video and %d audio frames (%s) from the HLS output", dec.VideoFrames, dec.AudioFrames, dec.VideoSize)
		if dec.Err != nil || dec.VideoFrames < 20 || dec.AudioFrames < 20 {
			t.Errorf("HLS decode: %v, %d video and %d audio frames; stderr:\n%s", dec.Err, dec.VideoFrames, dec.AudioFrames, testutil.Tail(dec.Stderr, 20))
		}
	}
	st, ok := s.stream(t, name)
	if !ok || st.Protocol != "webrtc" || st.State != "live" {
		t.Errorf("stream info: %+v, want live over webrtc", st)
	}
	codecsSeen := map[string]string{}
	for _, tr := range st.Tracks {
		codecsSeen[tr.Kind] = tr.Codec
	}
	if codecsSeen["video"] != "h264" || codecsSeen["audio"] != "opus" {
		t.Errorf("stream info tracks %+v, want h264 video and opus audio", st.Tracks)
	}

	var res whipResult
	ns.result(t, "whip.mjs", &res)
	if !res.OK {
		t.Errorf("whip.mjs: %s\n%s\nstderr:\n%s", res.Error, ns.stdout.String(), testutil.Tail(ns.stderr.String(), 20))
	}
	if len(res.AnswerVideoCodecs) == 0 || res.AnswerVideoCodecs[0] != "H264" {
		t.Errorf("the answer's video codecs are %v; the first must be H264 (offer: %v)", res.AnswerVideoCodecs, res.OfferCodecs)
	}
	if res.Video == nil || res.Video.Codec != "video/H264" {
		t.Errorf("Chromium sends video %+v, want video/H264", res.Video)
	}
	if res.Audio == nil || res.Audio.Codec != "audio/opus" {
		t.Errorf("Chromium sends audio %+v, want audio/opus", res.Audio)
	}
	if res.Video != nil {
		t.Logf("Chromium sent %d frames (%d keyframes; it received %d PLI, %d FIR) with %s, last %dx%d; events %v",
			res.Video.FramesEncoded, res.Video.KeyFramesEncoded, res.Video.PLICount, res.Video.FIRCount, res.Video.Encoder,
			res.Video.FrameWidth, res.Video.FrameHeight, res.Events)
	}
	if res.DeleteStatus != http.StatusOK {
		t.Errorf("DELETE %s answered %d, want 200", res.Location, res.DeleteStatus)
	}
	waitFor(t, 10*time.Second, "the WHIP session to end after DELETE", func() bool {
		return len(s.Log.Lines("whip session ended", name)) > 0
	})
	// Informational: how often the ingest dropped video as damaged.
	if n := len(s.Log.Lines("whip video damaged", name)); n > 0 {
		t.Logf("the WHIP ingest reported damaged video %d times (each waits for a keyframe); see the report", n)
	}
	if n := len(s.Log.Lines("whip codec parameters changed", name)); n > 0 {
		t.Logf("the browser changed resolution %d times: %d new hub sessions", n, n)
	}
}

// waitSegments waits until the first media playlist of name lists n
// complete segments, at most timeout; it returns how many it saw and the
// last answer.
func waitSegments(s *server, name string, n int, timeout time.Duration) (int, string) {
	deadline := time.Now().Add(timeout)
	segs, last := 0, ""
	for time.Now().Before(deadline) {
		code, body, err := tryGet(context.Background(), s.HLSURL(name))
		last = fmt.Sprintf("%d %v %s", code, err, body)
		if err == nil && code == http.StatusOK {
			if u, err := firstMediaPlaylistURL(s.HLSURL(name), body); err == nil {
				code, body, err = tryGet(context.Background(), u)
				last = fmt.Sprintf("%d %v %s", code, err, body)
				if err == nil && code == http.StatusOK {
					segs = len(parseMediaPlaylist(body).Segments)
					if segs >= n {
						return segs, last
					}
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return segs, last
}

// whepResult is what test/browser/whep.mjs prints.
type whepResult struct {
	OK           bool   `json:"ok"`
	Error        string `json:"error"`
	Status       int    `json:"status"`
	Location     string `json:"location"`
	DeleteStatus int    `json:"deleteStatus"`
	Tracks       []struct {
		Kind string `json:"kind"`
	} `json:"tracks"`
	Start *whepSample `json:"start"`
	End   *whepSample `json:"end"`
}

type whepSample struct {
	RVFCFrames       int `json:"rvfcFrames"`
	TotalVideoFrames int `json:"totalVideoFrames"`
	Dropped          int `json:"droppedVideoFrames"`
	W                int `json:"w"`
	H                int `json:"h"`
	FirstFrameMs     int `json:"firstFrameMs"`
	Video            *struct {
		Codec            string `json:"codec"`
		PacketsReceived  int    `json:"packetsReceived"`
		PacketsLost      int    `json:"packetsLost"`
		FramesDecoded    int    `json:"framesDecoded"`
		KeyFramesDecoded int    `json:"keyFramesDecoded"`
	} `json:"video"`
	Audio *struct {
		Codec           string `json:"codec"`
		PacketsReceived int    `json:"packetsReceived"`
	} `json:"audio"`
}

// TestBrowserWHEP plays an RTMP stream (ffmpeg, H.264 + AAC) in Chromium
// through WHEP: frames must be decoded and Opus audio must arrive.
func TestBrowserWHEP(t *testing.T) {
	t.Parallel()
	dir := webrtcBrowserDir(t)
	s := startWebRTCServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const name = "live/chromewhep"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name+"?key=s3cret"), pubOptions{})
	defer pub.Stop()
	waitFor(t, 20*time.Second, name+" live", func() bool { st, ok := s.stream(t, name); return ok && st.State == "live" })

	ns := startNodeScript(t, ctx, dir, "whep.mjs", "", "--url", s.URL("/whep/"+name), "--frames", "60", "--timeout", "25")
	// The reader is listed while the page plays.
	var listed atomic.Bool
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-ns.done:
				return
			default:
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL("/api/v1/streams/"+name), nil)
			req.Header.Set("Authorization", "Bearer "+apiToken)
			var b string
			resp, err := httpClient.Do(req)
			if err == nil {
				bb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				b = string(bb)
			}
			if err == nil && strings.Contains(b, `"kind":"whep"`) {
				listed.Store(true)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	var res whepResult
	ns.result(t, "whep.mjs", &res)
	if !res.OK {
		t.Fatalf("Chromium WHEP playback failed: %s\n%s\nstderr:\n%s", res.Error, ns.stdout.String(), testutil.Tail(ns.stderr.String(), 20))
	}
	a, e := res.Start, res.End
	t.Logf("Chromium: first frame %d ms after the POST; requestVideoFrameCallback frames %d -> %d, totalVideoFrames %d -> %d (dropped %d), %dx%d",
		a.FirstFrameMs, a.RVFCFrames, e.RVFCFrames, a.TotalVideoFrames, e.TotalVideoFrames, e.Dropped, e.W, e.H)
	if e.Video == nil || e.Video.Codec != "video/H264" || e.Video.FramesDecoded <= a.Video.FramesDecoded {
		t.Errorf("video %+v, want H.264 with decoded frames growing", e.Video)
	} else {
		t.Logf("video: %d packets (%d lost), %d frames decoded, %d keyframes", e.Video.PacketsReceived, e.Video.PacketsLost, e.Video.FramesDecoded, e.Video.KeyFramesDecoded)
	}
	if e.Audio == nil || e.Audio.Codec != "audio/opus" || e.Audio.PacketsReceived <= 50 {
		t.Errorf("audio %+v, want Opus packets (AAC made into Opus)", e.Audio)
	}
	if e.W != 640 || e.H != 360 {
		t.Errorf("video element shows %dx%d, want 640x360", e.W, e.H)
	}
	if res.DeleteStatus != http.StatusOK {
		t.Errorf("DELETE %s answered %d, want 200", res.Location, res.DeleteStatus)
	}
	if !listed.Load() {
		t.Errorf("the stream info never listed a whep reader while Chromium played")
	}
}

// ---------------------------------------------------------------------------
// Latency

// seiUUID marks the test's user-data-unregistered SEI (no zero bytes, so
// the payload needs no emulation prevention).
var seiUUID = []byte("MPS-latency-test")

// indexSEI is an SEI NAL unit carrying frame index i as 10 ASCII digits.
func indexSEI(i int) []byte {
	digits := fmt.Sprintf("%010d", i)
	payload := append(append([]byte(nil), seiUUID...), digits...)
	n := []byte{6, 5, byte(len(payload))}
	n = append(n, payload...)
	return append(n, 0x80)
}

// parseIndexSEI returns the index of an indexSEI NAL unit.
func parseIndexSEI(n []byte) (int, bool) {
	if len(n) < 3+16+10 || n[0]&0x1f != 6 || n[1] != 5 || string(n[3:19]) != string(seiUUID) {
		return 0, false
	}
	i, err := strconv.Atoi(string(n[19:29]))
	return i, err == nil
}

// TestWebRTCLatency measures WHIP in → WHEP out on loopback: a pion
// publisher sends frame i at start + i/30 s with i in an SEI; a pion reader
// notes the arrival of each frame's last packet (the marker).
func TestWebRTCLatency(t *testing.T) {
	t.Parallel()
	testutil.RequireTools(t, "ffmpeg")
	s := startWebRTCServer(t)
	const name = "live/latency"
	m := testmedia.MakeMedia(t, 2)
	opus := e2eOpus(t)

	pub := e2ePeer(t)
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "lat")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "lat")
	pub.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	pub.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	code, _, body := negotiateHTTP(t, pub, s.URL("/whip/"+name), "s3cret")
	skipIfNotWired(t, code, body)
	if code != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", code, body)
	}

	var mu sync.Mutex
	sent := map[int]time.Time{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sps, pps := m.Video.Codec.(*codecs.H264).SPS, m.Video.Codec.(*codecs.H264).PPS
		start := time.Now()
		for vi, ai := 0, 0; ; {
			vt, at := time.Duration(vi)*time.Second/30, time.Duration(ai)*20*time.Millisecond
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(min(vt, at)))):
			}
			if at < vt {
				audio.WriteSample(media.Sample{Data: opus[ai%len(opus)], Duration: 20 * time.Millisecond})
				ai++
				continue
			}
			i := vi % len(m.Frames)
			var avcc h264.AVCC
			avcc.Unmarshal(m.Frames[i])
			var nalus [][]byte
			if m.Keys[i] {
				nalus = append(nalus, sps, pps)
			}
			nalus = append(nalus, indexSEI(vi))
			for _, n := range avcc {
				if typ := h264.NALUType(n[0] & 0x1f); typ != h264.NALUTypeSPS && typ != h264.NALUTypePPS {
					nalus = append(nalus, n)
				}
			}
			b, _ := h264.AnnexB(nalus).Marshal()
			mu.Lock()
			sent[vi] = time.Now()
			mu.Unlock()
			video.WriteSample(media.Sample{Data: b, Duration: time.Second / 30})
			vi++
		}
	}()
	defer func() { close(stop); <-done }()
	waitFor(t, 15*time.Second, name+" live", func() bool { st, ok := s.stream(t, name); return ok && st.State == "live" })

	lat := measureWHEPLatency(t, s, name, 8*time.Second, func(i int) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		at, ok := sent[i]
		return at, ok
	})
	if len(lat.samples) < 100 {
		t.Fatalf("only %d frames were matched to their send time (%d stamped frames arrived)", len(lat.samples), lat.stamped)
	}
	p50, p95, mx := quantile(lat.samples, 0.5), quantile(lat.samples, 0.95), quantile(lat.samples, 1)
	t.Logf("WHIP -> WHEP latency on loopback over %d frames: median %v, p95 %v, max %v (target < 300 ms); %d GOP-cache frames excluded; first packet %v after the POST",
		len(lat.samples), p50.Round(100*time.Microsecond), p95.Round(100*time.Microsecond), mx.Round(100*time.Microsecond), lat.cached, lat.firstPacket.Round(time.Millisecond))
	// A generous bound only: timing on a shared machine is noisy.
	if p50 > time.Second {
		t.Errorf("median WHIP -> WHEP latency %v, want well under 1 s (target 300 ms)", p50)
	}
}

// latencyResult is what measureWHEPLatency saw.
type latencyResult struct {
	samples     []time.Duration
	stamped     int           // frames with an index SEI
	cached      int           // frames sent before the reader's first packet (GOP cache), left out
	firstPacket time.Duration // POST -> first video packet
}

// measureWHEPLatency plays name over WHEP with a pion reader for window and matches
// every frame's index SEI with sentAt.
func measureWHEPLatency(t *testing.T, s *server, name string, window time.Duration, sentAt func(int) (time.Time, bool)) latencyResult {
	t.Helper()
	pc := e2ePeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	var mu sync.Mutex
	var res latencyResult
	var first time.Time
	posted := time.Now()
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			go func() {
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
				}
			}()
			return
		}
		go func() {
			cur, curTS, have := 0, uint32(0), false
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				now := time.Now()
				mu.Lock()
				if first.IsZero() {
					first = now
					res.firstPacket = now.Sub(posted)
				}
				mu.Unlock()
				for _, n := range rtpNALUs(pkt.Payload) {
					if i, ok := parseIndexSEI(n); ok {
						cur, curTS, have = i, pkt.Timestamp, true
					}
				}
				if pkt.Marker && have && pkt.Timestamp == curTS {
					have = false
					at, ok := sentAt(cur)
					mu.Lock()
					res.stamped++
					switch {
					case !ok:
					case at.Before(first):
						res.cached++
					default:
						res.samples = append(res.samples, now.Sub(at))
					}
					mu.Unlock()
				}
			}
		}()
	})
	code, loc, body := negotiateHTTP(t, pc, s.URL("/whep/"+name), "")
	if code != http.StatusCreated {
		t.Fatalf("WHEP POST: %d %s", code, body)
	}
	time.Sleep(window)
	req, _ := http.NewRequest(http.MethodDelete, s.URL(loc), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	pc.Close()
	mu.Lock()
	defer mu.Unlock()
	out := res
	out.samples = append([]time.Duration(nil), res.samples...)
	return out
}

// rtpNALUs returns the whole NAL units in an H.264 RTP payload (single NAL
// unit or STAP-A; FU-A fragments hold slices, which the test does not need).
func rtpNALUs(p []byte) [][]byte {
	if len(p) == 0 {
		return nil
	}
	switch typ := p[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		return [][]byte{p}
	case typ == 24:
		var out [][]byte
		for p = p[1:]; len(p) >= 2; {
			n := int(p[0])<<8 | int(p[1])
			if n == 0 || n+2 > len(p) {
				break
			}
			out = append(out, p[2:2+n])
			p = p[2+n:]
		}
		return out
	}
	return nil
}

// quantile returns the q-quantile (0..1) of ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(len(s)-1, k))]
}

// TestBrowserWHIPVP8 publishes from Chromium with VP8 as its only video
// codec (setCodecPreferences): the answer takes VP8, the server transcodes
// it to H.264, and the stream info and the HLS output show H.264 that
// decodes, with Opus audio.
func TestBrowserWHIPVP8(t *testing.T) {
	t.Parallel()
	dir := webrtcBrowserDir(t)
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	s := startWebRTCServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const name = "live/chromevp8"

	// First a pion offer with VP8 video only: the answer must take it
	// (mps serve sets webrtc.Server.VP8FFmpeg).
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	probe, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if _, err := probe.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	code, loc, body := negotiateHTTP(t, probe, s.URL("/whip/live/vp8probe"), "s3cret")
	skipIfNotWired(t, code, body)
	if code != http.StatusCreated {
		t.Fatalf("a VP8-only WHIP offer was answered %d (%s): VP8 transcoding is off (webrtc.Server.VP8FFmpeg unset in cmd/mps?)", code, body)
	}
	if rd := probe.RemoteDescription(); rd == nil || !strings.Contains(rd.SDP, "VP8/90000") {
		t.Fatal("the answer to a VP8-only offer does not take VP8")
	}
	if req, err := http.NewRequest(http.MethodDelete, s.URL(loc), nil); err == nil {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}

	ns := startNodeScript(t, ctx, dir, "whip.mjs", "PUBLISHING",
		"--url", s.URL("/whip/"+name), "--key", "s3cret", "--hold", "40", "--timeout", "20", "--codec", "vp8")
	select {
	case <-ns.marker:
	case <-ns.done:
		var res whipResult
		ns.result(t, "whip.mjs", &res)
		t.Fatalf("Chromium did not publish VP8: %s\n%s\nstderr:\n%s", res.Error, ns.stdout.String(), testutil.Tail(ns.stderr.String(), 20))
	}

	if segs, last := waitSegments(s, name, 2, 20*time.Second); segs < 2 {
		t.Errorf("HLS of a VP8 WHIP stream: %d complete segments after 20 s of publishing, want >= 2; last answer: %.300s", segs, last)
	} else {
		p := ffprobe(t, s.HLSURL(name))
		v, a := p.ByType("video"), p.ByType("audio")
		if len(v) != 1 || v[0].CodecName != "h264" {
			t.Errorf("HLS video streams %+v, want one h264 (VP8 transcoded)", v)
		}
		if len(a) != 1 || a[0].CodecName != "opus" {
			t.Errorf("HLS audio streams %+v, want one opus", a)
		}
		dec := ffmpegDecode(t, s.HLSURL(name), 2*time.Second)
		t.Logf("ffmpeg decoded %d video and %d audio frames (%s) from the HLS output", dec.VideoFrames, dec.AudioFrames, dec.VideoSize)
		if dec.Err != nil || dec.VideoFrames < 20 || dec.AudioFrames < 20 {
			t.Errorf("HLS decode: %v, %d video and %d audio frames; stderr:\n%s", dec.Err, dec.VideoFrames, dec.AudioFrames, testutil.Tail(dec.Stderr, 20))
		}
	}
	st, ok := s.stream(t, name)
	if !ok || st.Protocol != "webrtc" || st.State != "live" {
		t.Errorf("stream info: %+v, want live over webrtc", st)
	}
	codecsSeen := map[string]string{}
	for _, tr := range st.Tracks {
		codecsSeen[tr.Kind] = tr.Codec
	}
	if codecsSeen["video"] != "h264" || codecsSeen["audio"] != "opus" {
		t.Errorf("stream info tracks %+v, want h264 video (transcoded from VP8) and opus audio", st.Tracks)
	}
	if len(s.Log.Lines("whip vp8 transcoding to h264", name)) == 0 {
		t.Error("the log does not say the VP8 is transcoded")
	}

	var res whipResult
	ns.result(t, "whip.mjs", &res)
	if !res.OK {
		t.Errorf("whip.mjs: %s\n%s\nstderr:\n%s", res.Error, ns.stdout.String(), testutil.Tail(ns.stderr.String(), 20))
	}
	if len(res.AnswerVideoCodecs) == 0 || res.AnswerVideoCodecs[0] != "VP8" {
		t.Errorf("the answer's video codecs are %v; want VP8 first (offer: %v)", res.AnswerVideoCodecs, res.OfferCodecs)
	}
	if res.Video == nil || res.Video.Codec != "video/VP8" {
		t.Errorf("Chromium sends video %+v, want video/VP8", res.Video)
	}
	if res.Video != nil {
		t.Logf("Chromium sent %d VP8 frames (%d keyframes; %d PLI, %d FIR) with %s, last %dx%d",
			res.Video.FramesEncoded, res.Video.KeyFramesEncoded, res.Video.PLICount, res.Video.FIRCount, res.Video.Encoder,
			res.Video.FrameWidth, res.Video.FrameHeight)
	}
	if res.DeleteStatus != http.StatusOK {
		t.Errorf("DELETE %s answered %d, want 200", res.Location, res.DeleteStatus)
	}
	waitFor(t, 10*time.Second, "the WHIP session to end after DELETE", func() bool {
		return len(s.Log.Lines("whip session ended", name)) > 0
	})
	if n := len(s.Log.Lines("whip vp8 video damaged", name)); n > 0 {
		t.Logf("the WHIP ingest reported damaged VP8 %d times (each waits for a keyframe)", n)
	}
}
