package srt

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

func TestPublishH264AAC(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var infos []auth.PublishInfo
	e := newEnv(t, func(s *Server) {
		s.OnPublish = func(pi auth.PublishInfo) { mu.Lock(); infos = append(infos, pi); mu.Unlock() }
	})
	p := push(t, e.url("#!::u=bob,r=live/cam1,m=publish,s="+testKey, testPassphrase), 4*time.Second, h264AAC)
	st := e.waitLive("live/cam1", 5*time.Second)

	rc := readFor(t, st, 2*time.Second)
	if got := trackCodecs(rc.session.Tracks); got != "h264,aac" {
		t.Fatalf("tracks %s", got)
	}
	if rc.session.Protocol != "srt" || !strings.HasPrefix(rc.session.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("session %+v", rc.session)
	}
	if rc.units["h264"] < 30 || rc.units["aac"] < 40 || !rc.firstKey["h264"] {
		t.Fatalf("units %v first key %v", rc.units, rc.firstKey)
	}
	if rc.maxGap["h264"] > 200*time.Millisecond {
		t.Fatalf("video gap %v", rc.maxGap["h264"])
	}
	vc := rc.session.Tracks[0].Codec.(*codecs.H264)
	if len(vc.SPS) == 0 || len(vc.PPS) == 0 {
		t.Fatal("no parameter sets in the track")
	}
	if w, h := rc.session.Tracks[0].Resolution(); w != 320 || h != 240 {
		t.Fatalf("resolution %dx%d", w, h)
	}
	if rate, ch := rc.session.Tracks[1].AudioFormat(); rate != 48000 || ch != 1 {
		t.Fatalf("audio %d Hz %d ch", rate, ch)
	}
	info := st.Info()
	if info.BytesIn == 0 {
		t.Fatalf("no bytes counted: %+v", info)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(infos) != 1 || infos[0].Protocol != "srt" || infos[0].Name != "live/cam1" || infos[0].Params.Has("key") {
		t.Fatalf("OnPublish infos %+v", infos)
	}
	if err := p.wait(t, 10*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, p.stderr.String())
	}
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after the publisher left")
	}
}

// A unit in the hub must carry no parameter sets and no AUD: those live in
// the track.
func TestPublishH265OpusColonSyntax(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	push(t, e.url("publish:live/cam2:"+testKey, testPassphrase), 4*time.Second, h265Opus)
	st := e.waitLive("live/cam2", 8*time.Second)
	rd, err := st.NewReader("test", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rc := readFor(t, st, 2*time.Second)
	if got := trackCodecs(rc.session.Tracks); got != "h265,opus" {
		t.Fatalf("tracks %s", got)
	}
	hc := rc.session.Tracks[0].Codec.(*codecs.H265)
	if len(hc.VPS) == 0 || len(hc.SPS) == 0 || len(hc.PPS) == 0 {
		t.Fatal("no parameter sets")
	}
	if rc.units["h265"] < 20 || rc.units["opus"] < 40 {
		t.Fatalf("units %v", rc.units)
	}
	if rate, ch := rc.session.Tracks[1].AudioFormat(); rate != 48000 || ch != 2 {
		t.Fatalf("opus %d Hz %d ch", rate, ch)
	}
	for range 20 {
		it, err := rd.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if it.AU == nil || !it.AU.Track.IsVideo() {
			continue
		}
		var avcc h264.AVCC
		if err := avcc.Unmarshal(it.AU.Payload); err != nil {
			t.Fatal(err)
		}
		for _, n := range avcc {
			if typ := (n[0] >> 1) & 0x3f; typ >= 32 && typ <= 35 {
				t.Fatalf("hub unit carries NAL type %d", typ)
			}
		}
	}
}

func TestKick(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := push(t, e.url("publish:live/kickme:"+testKey, testPassphrase), 20*time.Second, h264AAC)
	e.waitLive("live/kickme", 5*time.Second)
	if err := e.hub.Kick("live/kickme"); err != nil {
		t.Fatal(err)
	}
	// ffmpeg notices the closed connection and fails.
	if err := p.wait(t, 15*time.Second); err == nil {
		t.Fatal("ffmpeg ended cleanly after a kick")
	}
	e.waitLog(5*time.Second, "srt publisher closed", stream.ErrKicked.Error())
}
