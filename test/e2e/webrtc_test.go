package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

// startWebRTCServer starts mps with WHIP and WHEP on loopback ports.
func startWebRTCServer(t *testing.T) *server {
	cfg := fastConfig + fmt.Sprintf(`
webrtc:
  enabled: true
  udp_address: "127.0.0.1:%d"
  tcp_address: "127.0.0.1:%d"
applications:
  - name: live
    keys: [s3cret]
`, testutil.FreePort(t), testutil.FreePort(t))
	return startServer(t, serverOptions{Config: cfg})
}

func e2ePeer(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// negotiateHTTP posts pc's offer to url and applies the answer. It
// returns the status, and the Location on success.
func negotiateHTTP(t *testing.T, pc *webrtc.PeerConnection, url, key string) (int, string, string) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, "", string(body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), ""
}

func skipIfNotWired(t *testing.T, code int, body string) {
	if code == http.StatusNotImplemented {
		t.Skipf("WebRTC is not wired into mps serve yet: %s", body)
	}
}

// TestWHIPToHLS publishes H.264 + Opus from a pion WHIP client and checks
// that the HLS output decodes and the stream info tells WebRTC.
func TestWHIPToHLS(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	s := startWebRTCServer(t)
	m := testmedia.MakeMedia(t, 2)
	pc := e2ePeer(t)
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "e2e")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "e2e")
	pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	pc.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})

	// Refusals first: a wrong key and a bad offer.
	if code, _, body := negotiateHTTP(t, e2eSendonlyPeer(t), s.URL("/whip/live/w1"), "wrong"); code != http.StatusUnauthorized {
		skipIfNotWired(t, code, body)
		t.Errorf("wrong key: %d %s", code, body)
	}
	resp, err := http.Post(s.URL("/whip/live/w1"), "application/sdp", strings.NewReader("not sdp"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad offer: %d", resp.StatusCode)
	}

	code, loc, body := negotiateHTTP(t, pc, s.URL("/whip/live/w1"), "s3cret")
	skipIfNotWired(t, code, body)
	if code != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", code, body)
	}
	opus := e2eOpus(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sps, pps := m.Video.Codec.(*codecs.H264).SPS, m.Video.Codec.(*codecs.H264).PPS
		start := time.Now()
		for vi, ai := 0, 0; ; {
			vt, at := time.Duration(vi)*time.Second/30, time.Duration(ai)*20*time.Millisecond
			next := min(vt, at)
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(next))):
			}
			if at < vt {
				audio.WriteSample(media.Sample{Data: opus[ai%len(opus)], Duration: 20 * time.Millisecond})
				ai++
				continue
			}
			i := vi % len(m.Frames)
			var avcc h264.AVCC
			avcc.Unmarshal(m.Frames[i])
			nalus := [][]byte(avcc)
			if m.Keys[i] {
				nalus = append([][]byte{sps, pps}, nalus...)
			}
			b, _ := h264.AnnexB(nalus).Marshal()
			video.WriteSample(media.Sample{Data: b, Duration: time.Second / 30})
			vi++
		}
	}()
	defer func() { close(stop); <-done }()

	waitForPlaylist(t, s, "live/w1", 3)
	// A short analysis: both tracks' parameters are in the init segments,
	// and ffmpeg's live HLS reader can lose one playlist when the machine
	// is loaded and then waits for it for ever.
	checkProbe(t, "WHIP HLS", ffprobe(t, s.HLSURL("live/w1"), "-analyzeduration", "1000000", "-probesize", "200000"), "h264", 320, 240, "opus")
	st, ok := s.stream(t, "live/w1")
	if !ok || st.Protocol != "webrtc" {
		t.Errorf("stream info %+v", st)
	}
	req, _ := http.NewRequest(http.MethodDelete, s.URL(loc), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE %s: %d", loc, resp.StatusCode)
	}
}

func e2eSendonlyPeer(t *testing.T) *webrtc.PeerConnection {
	pc := e2ePeer(t)
	pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	return pc
}

// e2eOpus encodes 2 s of Opus and splits it into packets (Ogg pages of one
// packet each, with 20 ms pages).
func e2eOpus(t *testing.T) [][]byte {
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2",
		"-c:a", "libopus", "-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	for len(out) >= 27 && bytes.HasPrefix(out, []byte("OggS")) {
		n := int(out[26])
		if len(out) < 27+n {
			break
		}
		segs := out[27 : 27+n]
		body := out[27+n:]
		var pkt []byte
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
	if len(pkts) == 0 {
		t.Fatal("no opus packets")
	}
	return pkts
}

// TestWHEPPlaysRTMP plays an RTMP stream (ffmpeg, H.264 + AAC) over WHEP
// with a pion client and checks that video and Opus audio arrive.
func TestWHEPPlaysRTMP(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	s := startWebRTCServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := ffmpegPublish(t, ctx, s.RTMPURL("live/r1?key=s3cret"), pubOptions{Size: "320x240"})
	defer pub.Stop()
	waitFor(t, 20*time.Second, "live/r1 live", func() bool { st, ok := s.stream(t, "live/r1"); return ok && st.State == "live" })

	pc := e2ePeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	}
	var videoPkts, audioPkts atomic.Int64
	var audioMime atomic.Value
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		go func() {
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				if tr.Kind() == webrtc.RTPCodecTypeVideo {
					videoPkts.Add(1)
				} else {
					audioMime.Store(tr.Codec().MimeType)
					audioPkts.Add(1)
				}
			}
		}()
	})
	code, loc, body := negotiateHTTP(t, pc, s.URL("/whep/live/r1"), "")
	skipIfNotWired(t, code, body)
	if code != http.StatusCreated {
		t.Fatalf("WHEP POST: %d %s", code, body)
	}
	waitFor(t, 15*time.Second, "video and audio over WHEP", func() bool { return videoPkts.Load() > 50 && audioPkts.Load() > 50 })
	if m, _ := audioMime.Load().(string); m != webrtc.MimeTypeOpus {
		t.Errorf("audio %q, want Opus", m)
	}
	st, _ := s.stream(t, "live/r1")
	found := false
	for _, r := range st.Readers {
		found = found || r.Kind == "whep"
	}
	if !found {
		t.Errorf("no whep reader listed: %+v", st.Readers)
	}
	req, _ := http.NewRequest(http.MethodDelete, s.URL(loc), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
}
