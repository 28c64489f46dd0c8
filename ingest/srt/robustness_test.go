package srt

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/mps-dev/mps/ingest/tsdemux"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// Garbage datagrams, truncated and forged handshakes leave the server
// serving: a publisher connects and publishes afterwards.
func TestGarbageUDP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	uc, err := net.Dial("udp", e.srv.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	send := func(b []byte) { _, _ = uc.Write(b) }
	for i := range 300 {
		b := make([]byte, 1+i%1400)
		_, _ = rand.Read(b)
		send(b)
	}
	// Control packets (handshake type) with random bodies, to socket 0.
	for i := range 300 {
		b := make([]byte, 16+i%200)
		_, _ = rand.Read(b)
		binary.BigEndian.PutUint16(b[0:], 0x8000) // control, handshake
		binary.BigEndian.PutUint32(b[12:], 0)     // destination socket 0
		send(b)
	}
	// A data packet to an unknown socket, and empty datagrams.
	send(append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42}, bytes.Repeat([]byte{0x47}, 188)...))
	send(nil)

	push(t, e.url("publish:live/after:"+testKey, testPassphrase), 3*time.Second, h264AAC)
	st := e.waitLive("live/after", 5*time.Second)
	if rc := readFor(t, st, time.Second); rc.units["h264"] < 10 {
		t.Fatalf("units %v", rc.units)
	}
}

// A caller that connects and sends no MPEG-TS is closed after TrackTimeout.
func TestTrackTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Server) { s.TrackTimeout = 500 * time.Millisecond })
	conn, err := e.dial("publish:live/junk:"+testKey, testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stop := time.After(3 * time.Second)
loop:
	for {
		select {
		case <-stop:
			break loop
		case <-time.After(20 * time.Millisecond):
			if _, err := conn.Write(bytes.Repeat([]byte("not mpeg-ts "), 100)); err != nil {
				break loop
			}
		}
	}
	e.waitLog(3*time.Second, "srt publish failed", "no tracks in time")
	if len(e.hub.Streams()) != 0 {
		t.Fatal("junk made a stream")
	}
}

// New H.264 parameter sets (a new picture size) start a new session.
func TestParameterChangeStartsNewSession(t *testing.T) {
	t.Parallel()
	a := testmedia.MakeSizedMedia(t, 1, "320x240", "-g", "30")
	b := testmedia.MakeSizedMedia(t, 1, "160x120", "-g", "30")
	// A grace period keeps the stream, and its reader, across sessions.
	e := newEnvWithHub(t, stream.HubConfig{GracePeriod: 5 * time.Second})
	conn, err := e.dial("publish:live/change:"+testKey, testPassphrase)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// One muxer on the connection: the in-band parameter sets of b's
	// keyframes come after a's (the muxer's), so they win from there on.
	var buf bytes.Buffer
	mux := &tsdemux.Muxer{W: &buf, Tracks: []*stream.Track{a.Video}, ChunkSize: 1316}
	if err := mux.Initialize(); err != nil {
		t.Fatal(err)
	}
	sendFrames := func(m *testmedia.Media, from time.Duration, withParams bool) {
		for i, f := range m.Frames {
			d := from + time.Duration(i)*time.Second/30
			payload := f
			if withParams && m.Keys[i] {
				payload = prependParams(t, m, f)
			}
			buf.Reset()
			if err := mux.WriteUnit(&stream.AccessUnit{Track: a.Video, DTS: d, PTS: d, Key: m.Keys[i], Payload: payload}); err != nil {
				t.Fatal(err)
			}
			for c := buf.Bytes(); len(c) > 0; {
				n := min(len(c), 1316)
				if _, err := conn.Write(c[:n]); err != nil {
					t.Fatal(err)
				}
				c = c[n:]
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	st := func() *stream.Stream {
		sendFrames(a, 0, false)
		return e.waitLive("live/change", 3*time.Second)
	}()
	rd, err := st.NewReader("test", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	sendFrames(b, time.Second, true)
	sessions := 0
	var last *stream.Session
	deadline, cancel := contextWithTimeout(3 * time.Second)
	defer cancel()
	for sessions < 2 {
		it, err := rd.Read(deadline)
		if err != nil {
			t.Fatalf("saw %d sessions: %v", sessions, err)
		}
		if it.Session != nil {
			sessions++
			last = it.Session
		}
	}
	if w, h := last.Tracks[0].Resolution(); w != 160 || h != 120 {
		t.Fatalf("new session is %dx%d", w, h)
	}
	e.waitLog(time.Second, "srt codec parameters changed")
}

// Close ends publishers and readers and returns.
func TestServerClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := push(t, e.url("publish:live/closing:"+testKey, testPassphrase), 20*time.Second, h264AAC)
	st := e.waitLive("live/closing", 5*time.Second)
	done := make(chan struct{})
	go func() { e.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	if st.State() == stream.StateLive {
		t.Fatal("stream still live after Close")
	}
	if err := p.wait(t, 15*time.Second); err == nil {
		t.Fatal("ffmpeg ended cleanly")
	}
}
