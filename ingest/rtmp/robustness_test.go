package rtmp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/handshake"

	"github.com/mps-dev/mps/stream"
)

// Garbage on the port ends only the connection that sent it, with a logged
// error, while a real stream goes on undisturbed.
func TestGarbageDoesNotDisturbLiveStream(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { s.ReadTimeout = 2 * time.Second })
	good := push(t, e.url("live/good"), 10*time.Second, avInput, avCodecs)
	st := e.waitLive("live/good", 10*time.Second)

	got := make(chan *received, 1)
	go func() { got <- readFor(t, st, 5*time.Second) }()

	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	// Every payload is made here: the clients run concurrently.
	randomBytes, truncated, stalled, afterHandshake := random(8192), random(700), random(1536), random(16384)
	clients := map[string]func(net.Conn) error{
		"random bytes": func(c net.Conn) error { _, err := c.Write(randomBytes); return err },
		"http request": func(c net.Conn) error {
			_, err := io.WriteString(c, "GET /live/good HTTP/1.1\r\nHost: localhost\r\n\r\n")
			return err
		},
		"truncated handshake": func(c net.Conn) error {
			_, err := c.Write(append([]byte{3}, truncated...))
			c.(*net.TCPConn).CloseWrite()
			return err
		},
		"silent client": func(net.Conn) error { return nil },
		"stalled handshake": func(c net.Conn) error {
			_, err := c.Write(append([]byte{3}, stalled...))
			return err // then wait for S0S1S2 and never send C2
		},
		"garbage after handshake": func(c net.Conn) error {
			if _, _, err := handshake.DoClient(c, false, false); err != nil {
				return err
			}
			_, err := c.Write(afterHandshake)
			return err
		},
		"huge chunk after handshake": func(c net.Conn) error {
			if _, _, err := handshake.DoClient(c, false, false); err != nil {
				return err
			}
			// A type-0 chunk header announcing a 16 MB command message, then nothing.
			_, err := c.Write([]byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0})
			return err
		},
	}
	// Random bytes after a valid handshake and connect, many times over.
	for i := range 20 {
		name := "garbage after connect " + string(rune('a'+i))
		payload := append(connectChunk(), random(64+rng.IntN(4096))...)
		clients[name] = func(c net.Conn) error {
			if _, _, err := handshake.DoClient(c, false, false); err != nil {
				return err
			}
			_, err := c.Write(payload)
			return err
		}
	}

	var wg sync.WaitGroup
	for name, send := range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", e.srv.ListenAddr().String())
			if err != nil {
				t.Errorf("%s: dial: %v", name, err)
				return
			}
			defer c.Close()
			if err := send(c); err != nil && !isConnReset(err) {
				t.Errorf("%s: send: %v", name, err)
				return
			}
			// The server must close the connection, at the latest after ReadTimeout.
			c.SetReadDeadline(time.Now().Add(e.srv.ReadTimeout + 3*time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && !isConnReset(err) {
				t.Errorf("%s: server did not close the connection: %v", name, err)
			}
		})
	}
	wg.Wait()

	rc := <-got
	rc.continuous(t, map[string]int{"h264": 75, "aac": 100}) // 5 s: 150 and 215 nominal
	if n := len(e.logs.Lines("rtmp connection panic")); n != 0 {
		t.Fatalf("%d connections panicked:\n%s", n, e.logs.String())
	}
	if n := len(e.logs.Lines("level=WARN", "rtmp connection failed")); n < len(clients)-2 {
		// A client whose bytes happen to form valid messages may end another way.
		t.Fatalf("%d connection failures logged for %d garbage clients", n, len(clients))
	}
	if err := good.wait(t, 15*time.Second); err != nil {
		t.Fatalf("good publisher failed: %v\n%s", err, good.stderr.String())
	}
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// connectChunk is the first chunk of an RTMP connect command, cut short:
// a valid chunk header followed by the start of its AMF0 body.
func connectChunk() []byte {
	body := []byte{0x02, 0x00, 0x07, 'c', 'o', 'n', 'n', 'e', 'c', 't', 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x03}
	return append([]byte{0x03, 0, 0, 0, 0, 0, byte(len(body) + 40), 0x14, 0, 0, 0, 0}, body...)
}

// A publisher that stops sending is disconnected after ReadTimeout and its
// stream ends.
func TestStalledPublisherTimesOut(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) { s.ReadTimeout = time.Second })
	c, err := dialPublish(t, e.url("live/stall"))
	if err != nil {
		t.Fatal(err)
	}
	w, track := newFakeAACWriter(t, c)
	if err := writeFakeAAC(w, track, 0, 150); err != nil {
		t.Fatal(err)
	}
	st := e.waitLive("live/stall", 5*time.Second)
	stalled := time.Now()
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stalled publisher still connected after 5 s")
	}
	if d := time.Since(stalled); d < 500*time.Millisecond {
		t.Fatalf("stream ended after %v, before the read timeout", d)
	}
	e.waitLog(5*time.Second, "rtmp connection closed", "live/stall", "i/o timeout")
	c.NetConn().SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, c.NetConn()); err != nil && !isConnReset(err) {
		t.Fatalf("server did not close the connection: %v", err)
	}
}

// Server.Close ends every connection and waits for them; publishers end
// their sessions.
func TestServerCloseEndsConnections(t *testing.T) {
	e := newEnv(t, nil)
	c, err := dialPublish(t, e.url("live/close"))
	if err != nil {
		t.Fatal(err)
	}
	w, track := newFakeAACWriter(t, c)
	if err := writeFakeAAC(w, track, 0, 150); err != nil {
		t.Fatal(err)
	}
	st := e.waitLive("live/close", 5*time.Second)
	idle, err := net.Dial("tcp", e.srv.ListenAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	done := make(chan struct{})
	go func() { e.srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-st.Ended():
	default:
		t.Fatal("stream still live after Close")
	}
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isConnReset(err) {
		t.Fatalf("idle connection not closed: %v", err)
	}
	if _, err := net.DialTimeout("tcp", e.srv.ListenAddr().String(), time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
	e.srv.Close() // idempotent
}

// A publisher that sends a new SPS with another resolution starts a new
// session: readers see new tracks.
func TestH264ParameterChangeStartsNewSession(t *testing.T) {
	needFFmpeg(t)
	small := encodeH264(t, "320x240")
	large := encodeH264(t, "640x360")

	// A grace period keeps the stream (and its readers) across sessions.
	e := newEnvWithHub(t, stream.HubConfig{GracePeriod: 5 * time.Second}, nil)
	readers := make(chan *stream.Reader, 1)
	e.hub.OnStreamCreated(func(s *stream.Stream) {
		rd, err := s.NewReader("test", "")
		if err != nil {
			t.Error(err)
		}
		readers <- rd
	})
	c, err := dialPublish(t, e.url("live/resize"))
	if err != nil {
		t.Fatal(err)
	}
	sendH264(t, c, small, large)

	var rd *stream.Reader
	select {
	case rd = <-readers:
	case <-time.After(5 * time.Second):
		t.Fatal("stream not created")
	}
	defer rd.Close()
	var sizes [][2]int
	ctx := t.Context()
	for len(sizes) < 2 {
		it, err := rd.Read(ctx)
		if err != nil {
			t.Fatalf("after sessions %v: %v", sizes, err)
		}
		if it.Session != nil {
			w, h := it.Session.Tracks[0].Resolution()
			sizes = append(sizes, [2]int{w, h})
		}
	}
	if sizes[0] != [2]int{320, 240} || sizes[1] != [2]int{640, 360} {
		t.Fatalf("session resolutions = %v, want 320x240 then 640x360", sizes)
	}
	// The new session's first video unit is a keyframe without the parameter sets.
	it, err := rd.Read(ctx)
	if err != nil || it.AU == nil || !it.AU.Key || it.AU.DTS != 0 {
		t.Fatalf("first unit of session 2 = %+v, %v; want a keyframe at 0", it.AU, err)
	}
	if bytes.Contains(it.AU.Payload, large.sps) {
		t.Fatal("SPS left in the sample")
	}
	if n := len(e.logs.Lines("starting a new session", "live/resize")); n != 1 {
		t.Fatalf("%d parameter change lines", n)
	}
}

// A panic on a connection's goroutine (here from an OnPublish callback) is
// logged and costs that connection only: its publisher is closed and the
// server goes on serving.
func TestPanicCostsOneConnection(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) {
		s.OnPublish = func(pi PublishInfo) {
			if pi.Name == "live/boom" {
				panic("boom")
			}
		}
	})
	c, err := dialPublish(t, e.url("live/boom"))
	if err != nil {
		t.Fatal(err)
	}
	w, track := newFakeAACWriter(t, c)
	// The server drops this connection as soon as it panics, so the write
	// may fail part way: that is the behaviour under test.
	_ = writeFakeAAC(w, track, 0, 150)
	line := e.waitLog(5*time.Second, "level=ERROR", "rtmp connection panic")
	if !strings.Contains(line, "boom") || !strings.Contains(line, "stack=") {
		t.Fatalf("panic line: %s", line)
	}
	e.waitLog(5*time.Second, "unpublish", "stream=live/boom")
	if _, err := e.hub.Get("live/boom"); err == nil {
		t.Fatal("stream of the panicked connection still exists")
	}

	c2, err := dialPublish(t, e.url("live/fine"))
	if err != nil {
		t.Fatal(err)
	}
	w2, track2 := newFakeAACWriter(t, c2)
	if err := writeFakeAAC(w2, track2, 0, 150); err != nil {
		t.Fatal(err)
	}
	e.waitLive("live/fine", 5*time.Second)
}
