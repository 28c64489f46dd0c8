package webrtc

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

// testPlayer is a WHEP client that counts what it receives.
type testPlayer struct {
	pc        *webrtc.PeerConnection
	mu        sync.Mutex
	videoAUs  int
	keyAUs    int
	audioPkts int
	audioMime string
	wg        sync.WaitGroup
}

func newTestPlayer(t *testing.T) *testPlayer {
	p := &testPlayer{pc: newClientPC(t, false)}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := p.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	p.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var d h264Depacketizer
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				p.mu.Lock()
				if tr.Kind() == webrtc.RTPCodecTypeAudio {
					p.audioPkts++
					p.audioMime = tr.Codec().MimeType
				} else if au, _, _ := d.push(pkt.SequenceNumber, pkt.Timestamp, pkt.Marker, pkt.Payload); au != nil {
					p.videoAUs++
					if h264.IsRandomAccess(au) {
						p.keyAUs++
					}
				}
				p.mu.Unlock()
			}
		}()
	})
	t.Cleanup(func() {
		p.pc.Close()
		p.wg.Wait()
	})
	return p
}

func (p *testPlayer) counts() (video, keys, audio int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.videoAUs, p.keyAUs, p.audioPkts
}

// publishMedia publishes H.264 + AAC into the hub in real time, as RTMP from OBS would.
func publishMedia(t *testing.T, hub *stream.Hub, name string, seconds int) {
	m := testmedia.MakeMedia(t, seconds)
	tracks := []*stream.Track{m.Video, m.Audio}
	pub, err := hub.Publish(name, tracks, stream.PublishOptions{Protocol: "rtmp", RemoteAddr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Publish(t, pub, tracks, true, 0)
		pub.Close(nil)
	}()
	t.Cleanup(func() {
		pub.Close(nil)
		<-done
	})
}

func TestWHEPPlaysRTMPStreamWithOpus(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	f := newFixture(t, keyPolicy())
	publishMedia(t, f.hub, "live/obs", 4)
	waitLive(t, f.hub, "live/obs", 5*time.Second)
	time.Sleep(300 * time.Millisecond)

	p := newTestPlayer(t)
	answer, id, err := f.srv.Play(context.Background(), "live/obs", "127.0.0.1:50000", makeOffer(t, p.pc))
	if err != nil {
		t.Fatal(err)
	}
	setAnswer(t, p.pc, answer)
	deadline := time.Now().Add(8 * time.Second)
	for {
		v, k, a := p.counts()
		if v >= 45 && k >= 1 && a >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WHEP player got %d video AUs (%d key), %d audio packets", v, k, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.mu.Lock()
	if p.audioMime != webrtc.MimeTypeOpus {
		t.Errorf("audio %q, want Opus", p.audioMime)
	}
	p.mu.Unlock()
	st, _ := f.hub.Get("live/obs")
	found := false
	for _, r := range st.Readers() {
		if r.Kind == ReaderKind && r.RemoteAddr == "127.0.0.1:50000" {
			found = true
		}
	}
	if !found {
		t.Errorf("no whep reader in %+v", st.Readers())
	}
	if err := f.srv.EndSession("whep", "live/obs", id); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.Sessions("whep"); n != 0 {
		t.Errorf("%d whep sessions after DELETE", n)
	}
}

// TestWHIPToWHEP plays a WHIP stream back over WHEP (Opus passthrough).
func TestWHIPToWHEP(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	f := newFixture(t, keyPolicy())
	publish(t, f, "live/loop", true, false)
	waitLive(t, f.hub, "live/loop", 10*time.Second)
	p := newTestPlayer(t)
	answer, _, err := f.srv.Play(context.Background(), "live/loop", "127.0.0.1:50001", makeOffer(t, p.pc))
	if err != nil {
		t.Fatal(err)
	}
	setAnswer(t, p.pc, answer)
	deadline := time.Now().Add(8 * time.Second)
	for {
		v, k, a := p.counts()
		if v >= 30 && k >= 1 && a >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("WHEP player got %d video AUs (%d key), %d audio packets", v, k, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWHEPRefusals(t *testing.T) {
	f := newFixture(t, keyPolicy())
	p := newTestPlayer(t)
	offer := makeOffer(t, p.pc)
	_, _, err := f.srv.Play(context.Background(), "live/none", "127.0.0.1:1", offer)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Errorf("missing stream: %v", err)
	}
	publishMedia(t, f.hub, "live/p", 2)
	waitLive(t, f.hub, "live/p", 5*time.Second)
	_, _, err = f.srv.Play(context.Background(), "live/p", "127.0.0.1:1", []byte("v=0 garbage"))
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Errorf("bad offer: %v", err)
	}
}
