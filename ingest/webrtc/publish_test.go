package webrtc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

func keyPolicy() *auth.Policy {
	return &auth.Policy{Apps: []auth.App{{Name: "live", Keys: []string{"s3cret"}}}}
}

func publish(t *testing.T, f *fixture, name string, withAudio, tcp bool) (*testPublisher, string) {
	t.Helper()
	p := newTestPublisher(t, 2, withAudio, tcp)
	answer, id, err := f.srv.Publish(context.Background(), name, "s3cret", "127.0.0.1:40000", nil, makeOffer(t, p.pc))
	if err != nil {
		t.Fatal(err)
	}
	setAnswer(t, p.pc, answer)
	p.send()
	t.Cleanup(p.Stop)
	return p, id
}

func TestWHIPPublishH264Opus(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	f := newFixture(t, keyPolicy())
	var infos []auth.PublishInfo
	var mu sync.Mutex
	f.srv.OnPublish = func(pi auth.PublishInfo) {
		mu.Lock()
		infos = append(infos, pi)
		mu.Unlock()
	}
	_, id := publish(t, f, "live/cam1", true, false)

	st := waitLive(t, f.hub, "live/cam1", 10*time.Second)
	sess, aus := readFor(t, st, 2500*time.Millisecond)
	if sess == nil || sess.Protocol != Protocol || sess.RemoteAddr != "127.0.0.1:40000" {
		t.Fatalf("session %+v", sess)
	}
	if len(sess.Tracks) != 2 || sess.Tracks[0].CodecName() != "h264" || sess.Tracks[1].CodecName() != "opus" {
		t.Fatalf("tracks %v", trackCodecs(sess.Tracks))
	}
	var video []*stream.AccessUnit
	audio := 0
	var lastV, lastA time.Duration = -1, -1
	for _, au := range aus {
		if au.Track.IsVideo() {
			if au.PTS < lastV {
				t.Errorf("video PTS went back: %v after %v", au.PTS, lastV)
			}
			lastV = au.PTS
			video = append(video, au)
		} else {
			if au.PTS < lastA {
				t.Errorf("audio PTS went back: %v after %v", au.PTS, lastA)
			}
			lastA = au.PTS
			audio++
		}
	}
	if len(video) < 30 || audio < 50 {
		t.Fatalf("got %d video and %d audio units in 2.5 s", len(video), audio)
	}
	if !video[0].Key {
		t.Fatal("first video unit is no keyframe")
	}
	// Audio and video stay together: both timelines advance at the same pace.
	if d := lastV - lastA; d > 300*time.Millisecond || d < -300*time.Millisecond {
		t.Errorf("audio and video timelines differ by %v", d)
	}
	n := decodeH264(t, sess.Tracks[0].Codec.(*codecs.H264), video)
	if n < len(video)-1 {
		t.Errorf("decoded %d of %d frames", n, len(video))
	}
	if w, h := sess.Tracks[0].Resolution(); w != 320 || h != 240 {
		t.Errorf("resolution %dx%d", w, h)
	}
	mu.Lock()
	if len(infos) != 1 || infos[0].Protocol != Protocol || infos[0].Name != "live/cam1" {
		t.Errorf("OnPublish calls %+v", infos)
	}
	mu.Unlock()

	// DELETE ends the session and the stream.
	if err := f.srv.EndSession("whip", "live/cam1", id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after DELETE")
	}
	if err := f.srv.EndSession("whip", "live/cam1", id); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("second DELETE: %v", err)
	}
}

func TestWHIPPublishOverTCP(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	f := newFixture(t, keyPolicy())
	publish(t, f, "live/tcp", false, true)
	st := waitLive(t, f.hub, "live/tcp", 10*time.Second)
	_, aus := readFor(t, st, time.Second)
	if len(aus) < 10 {
		t.Fatalf("got %d units over ICE-TCP", len(aus))
	}
}

func TestWHIPRefusals(t *testing.T) {
	f := newFixture(t, keyPolicy())
	pc := newClientPC(t, false)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer := makeOffer(t, pc)
	status := func(err error) int {
		var se *StatusError
		if errors.As(err, &se) {
			return se.HTTPStatus()
		}
		return 0
	}
	cases := []struct {
		name, stream, key string
		offer             []byte
		want              int
	}{
		{"wrong key", "live/x", "nope", offer, http.StatusUnauthorized},
		{"missing key from afar", "live/x", "", offer, http.StatusUnauthorized},
		{"unknown app", "other/x", "s3cret", offer, http.StatusNotFound},
		{"bad name", "live/../x", "s3cret", offer, http.StatusBadRequest},
		{"empty offer", "live/x", "s3cret", nil, http.StatusBadRequest},
		{"garbage offer", "live/x", "s3cret", []byte("hello"), http.StatusBadRequest},
		{"answer-like garbage", "live/x", "s3cret", []byte("v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"), http.StatusBadRequest},
	}
	for _, c := range cases {
		_, _, err := f.srv.Publish(context.Background(), c.stream, c.key, "203.0.113.9:1234", nil, c.offer)
		if got := status(err); got != c.want {
			t.Errorf("%s: status %d (%v), want %d", c.name, got, err, c.want)
		}
	}

	// An offer with only VP8 video has nothing the answer accepts.
	me := &webrtc.MediaEngine{}
	me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
		PayloadType: 96}, webrtc.RTPCodecTypeVideo)
	vp8pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer vp8pc.Close()
	vp8pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	vp8offer, _ := vp8pc.CreateOffer(nil)
	if _, _, err := f.srv.Publish(context.Background(), "live/vp8", "s3cret", "127.0.0.1:1", nil, []byte(vp8offer.SDP)); status(err) != http.StatusBadRequest {
		t.Errorf("VP8-only offer: %v", err)
	}

	// Admission refuses with 403.
	f.srv.Admit = func(context.Context, auth.PublishRequest) (url.Values, error) {
		return nil, auth.ErrAdmissionRefused
	}
	_, _, err = f.srv.Publish(context.Background(), "live/x", "s3cret", "127.0.0.1:1", nil, offer)
	if status(err) != http.StatusForbidden {
		t.Errorf("admission: %v", err)
	}
	f.srv.Admit = nil

	// A second publisher on a live name gets 409.
	m := testmedia.MakeMedia(t, 1)
	pub, err := f.hub.Publish("live/busy", []*stream.Track{m.Video}, stream.PublishOptions{Protocol: "rtmp"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(nil)
	if _, _, err := f.srv.Publish(context.Background(), "live/busy", "s3cret", "127.0.0.1:1", nil, offer); status(err) != http.StatusConflict {
		t.Errorf("busy name: %v", err)
	}
	if f.srv.Sessions("whip") != 0 {
		t.Errorf("%d sessions left after refusals", f.srv.Sessions("whip"))
	}
}

// TestWHIPNoMediaTimesOut checks that a session whose peer never connects ends.
func TestWHIPNoMediaTimesOut(t *testing.T) {
	f := newFixture(t, keyPolicy())
	f.srv.ConnectTimeout = time.Second
	pc := newClientPC(t, false)
	pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if _, _, err := f.srv.Publish(context.Background(), "live/idle", "s3cret", "127.0.0.1:1", nil, makeOffer(t, pc)); err != nil {
		t.Fatal(err)
	}
	pc.Close() // never answers
	deadline := time.Now().Add(5 * time.Second)
	for f.srv.Sessions("whip") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle session still open")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGarbageToICEPorts sends junk to the UDP and TCP ports and checks
// that a publisher still gets through.
func TestGarbageToICEPorts(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	f := newFixture(t, keyPolicy())
	udp, err := net.Dial("udp", f.srv.UDPListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	junk := [][]byte{{0}, []byte("hello"), make([]byte, 1500), {0x00, 0x01, 0x00, 0x50, 0x21, 0x12, 0xa4, 0x42}, {0x16, 0xfe, 0xfd}, {0x80, 0x60}}
	for i := 0; i < 200; i++ {
		udp.Write(junk[i%len(junk)])
	}
	udp.Close()
	var sent atomic.Int32
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", f.srv.TCPListenAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(strings.Repeat("GET / HTTP/1.0\r\n\r\n", i+1)))
		c.Write([]byte{0x00, 0x05, 1, 2, 3, 4, 5, 0xff, 0xff})
		sent.Add(1)
		c.Close()
	}
	publish(t, f, "live/after", false, false)
	waitLive(t, f.hub, "live/after", 10*time.Second)
}
