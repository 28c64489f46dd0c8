package webrtc

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/ingest/webrtc."))
}

type fixture struct {
	hub *stream.Hub
	srv *Server
	log *testutil.LogBuffer
}

func newFixture(t *testing.T, policy *auth.Policy) *fixture {
	t.Helper()
	lb := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: log})
	srv := &Server{Hub: hub, Auth: policy, UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", FFmpeg: "ffmpeg", Logger: log,
		ConnectTimeout: 10 * time.Second}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		hub.Close()
		if t.Failed() {
			t.Logf("log:\n%s", testutil.Tail(lb.String(), 80))
		}
	})
	return &fixture{hub: hub, srv: srv, log: lb}
}

// newClientPC makes a pion peer connection for a test client.
func newClientPC(t testing.TB, tcp bool) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	if tcp {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// makeOffer returns pc's offer with every candidate.
func makeOffer(t testing.TB, pc *webrtc.PeerConnection) []byte {
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
	return []byte(pc.LocalDescription().SDP)
}

func setAnswer(t testing.TB, pc *webrtc.PeerConnection, answer []byte) {
	t.Helper()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
}

// testPublisher is a WHIP client that sends H.264 made by ffmpeg and Opus.
type testPublisher struct {
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticSample
	media        *testmedia.Media
	opus         [][]byte
	stop         chan struct{}
	wg           sync.WaitGroup
}

func newTestPublisher(t testing.TB, seconds int, withAudio, tcp bool) *testPublisher {
	t.Helper()
	p := &testPublisher{pc: newClientPC(t, tcp), media: testmedia.MakeMedia(t, seconds), stop: make(chan struct{})}
	var err error
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.pc.AddTransceiverFromTrack(p.video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	if withAudio {
		p.opus = makeOpus(t, seconds)
		p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.pc.AddTransceiverFromTrack(p.audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// makeOpus encodes seconds of a sine as 20 ms Opus packets.
func makeOpus(t testing.TB, seconds int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", time.Duration(seconds*int(time.Second)).String(), "-c:a", "libopus", "-frame_duration", "20", "-f", "ogg", "-").Output()
	if err != nil {
		t.Fatalf("encode opus: %v", err)
	}
	var pkts [][]byte
	readOggPackets(bytes.NewReader(out), func(p []byte) error {
		if !isOpusHeader(p) {
			pkts = append(pkts, append([]byte(nil), p...))
		}
		return nil
	})
	if len(pkts) == 0 {
		t.Fatal("no opus packets")
	}
	return pkts
}

// send streams the media in real time, looping, until Stop.
func (p *testPublisher) send() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		sps := p.media.Video.Codec.(*codecs.H264).SPS
		pps := p.media.Video.Codec.(*codecs.H264).PPS
		frameDur := time.Second / time.Duration(p.media.FPS)
		start := time.Now()
		vi, ai := 0, 0
		for {
			vt := time.Duration(vi) * frameDur
			at := time.Duration(ai) * 20 * time.Millisecond
			next := vt
			if p.audio != nil && at < vt {
				next = at
			}
			select {
			case <-p.stop:
				return
			case <-time.After(time.Until(start.Add(next))):
			}
			if p.audio != nil && at < vt {
				p.audio.WriteSample(media.Sample{Data: p.opus[ai%len(p.opus)], Duration: 20 * time.Millisecond})
				ai++
				continue
			}
			i := vi % len(p.media.Frames)
			var avcc h264.AVCC
			avcc.Unmarshal(p.media.Frames[i])
			nalus := [][]byte(avcc)
			if p.media.Keys[i] {
				nalus = append([][]byte{sps, pps}, nalus...)
			}
			annexb, _ := h264.AnnexB(nalus).Marshal()
			p.video.WriteSample(media.Sample{Data: annexb, Duration: frameDur})
			vi++
		}
	}()
}

func (p *testPublisher) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
	p.pc.Close()
}

// waitLive waits until name is live in the hub.
func waitLive(t testing.TB, hub *stream.Hub, name string, timeout time.Duration) *stream.Stream {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st, err := hub.Get(name); err == nil && st.State() == stream.StateLive {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not live after %s", name, timeout)
	return nil
}

// readFor collects a reader's access units for d.
func readFor(t testing.TB, st *stream.Stream, d time.Duration) (*stream.Session, []*stream.AccessUnit) {
	t.Helper()
	r, err := st.NewReader("test", "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sess *stream.Session
	var aus []*stream.AccessUnit
	for {
		it, err := r.Read(ctx)
		if err != nil {
			return sess, aus
		}
		if it.Session != nil {
			sess = it.Session
			continue
		}
		aus = append(aus, it.AU)
	}
}

// decodeH264 decodes AVCC access units with ffmpeg and returns the frames decoded.
func decodeH264(t testing.TB, c *codecs.H264, aus []*stream.AccessUnit) int {
	t.Helper()
	var buf bytes.Buffer
	for i, au := range aus {
		var avcc h264.AVCC
		if err := avcc.Unmarshal(au.Payload); err != nil {
			t.Fatalf("AU %d: %v", i, err)
		}
		nalus := [][]byte(avcc)
		if au.Key {
			nalus = append([][]byte{c.SPS, c.PPS}, nalus...)
		}
		b, _ := h264.AnnexB(nalus).Marshal()
		buf.Write(b)
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-f", "h264", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", "-")
	cmd.Stdin = &buf
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	n := 0
	for _, ch := range bytes.TrimSpace(out) {
		if ch < '0' || ch > '9' {
			break
		}
		n = n*10 + int(ch-'0')
	}
	return n
}
