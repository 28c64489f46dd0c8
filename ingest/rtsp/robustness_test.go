package rtsp

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Garbage on the TCP port and on the UDP ports, malformed RTSP requests and
// malformed interleaved RTP end only the connection that sent them, while a
// real stream goes on undisturbed and the server keeps serving.
func TestGarbageDoesNotDisturbLiveStream(t *testing.T) {
	e := newEnv(t, nil, func(s *Server) {
		s.ReadTimeout = 2 * time.Second
		s.IdleTimeout = 4 * time.Second
	})
	pushRTSP(t, e.url("live/good"), pushOptions{transport: "udp", dur: 10 * time.Second})
	st := e.waitLive("live/good", 10*time.Second)

	got := make(chan *collected, 1)
	go func() { got <- collect(t, st, 5*time.Second) }()

	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	addr := e.srv.ListenAddr().String()
	sdp := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
		"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:trackID=0\r\n"
	announce := fmt.Sprintf("ANNOUNCE rtsp://%s/live/bad RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		addr, len(sdp), sdp)
	setup := fmt.Sprintf("SETUP rtsp://%s/live/bad/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n", addr)
	record := func(session string) string {
		return fmt.Sprintf("RECORD rtsp://%s/live/bad RTSP/1.0\r\nCSeq: 3\r\nSession: %s\r\n\r\n", addr, session)
	}
	randomBytes := random(8192)
	clients := map[string]func(net.Conn) error{
		"random bytes": func(c net.Conn) error { _, err := c.Write(randomBytes); return err },
		"http request": func(c net.Conn) error {
			_, err := io.WriteString(c, "GET /live/good HTTP/1.1\r\nHost: localhost\r\n\r\n")
			return err
		},
		"silent client": func(net.Conn) error { return nil },
		"huge header": func(c net.Conn) error {
			_, err := io.WriteString(c, "OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 1\r\nX: "+strings.Repeat("a", 1<<20))
			return err
		},
		"bad sdp": func(c net.Conn) error {
			body := "v=0\r\nm=video x\r\n\x00\xff"
			_, err := fmt.Fprintf(c, "ANNOUNCE rtsp://%s/live/bad RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
			return err
		},
		"bad path": func(c net.Conn) error {
			_, err := fmt.Fprintf(c, "DESCRIBE rtsp://%s/../../etc/passwd RTSP/1.0\r\nCSeq: 1\r\n\r\n", addr)
			return err
		},
		"interleaved garbage after record": func(c net.Conn) error {
			session, err := request(c, announce)
			if err != nil {
				return err
			}
			if session, err = request(c, setup); err != nil {
				return err
			}
			if _, err := request(c, record(session)); err != nil {
				return err
			}
			// Interleaved frames on channel 0 with random RTP-looking payloads.
			for range 200 {
				p := random(12 + rng.IntN(1400))
				p[0] = 0x80
				p[1] = 96
				frame := append([]byte{'$', 0, byte(len(p) >> 8), byte(len(p))}, p...)
				if _, err := c.Write(frame); err != nil {
					return err
				}
			}
			_, err = c.Write(random(4096)) // and then no framing at all
			return err
		},
	}

	// Random datagrams on the UDP ports.
	for _, a := range []string{e.srv.UDPRTPAddr, e.srv.UDPRTCPAddr} {
		u, err := net.Dial("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			u.Write(random(1 + rng.IntN(1500)))
		}
		u.Close()
	}

	var wg sync.WaitGroup
	for name, send := range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Errorf("%s: dial: %v", name, err)
				return
			}
			defer c.Close()
			if err := send(c); err != nil && !isConnReset(err) {
				t.Errorf("%s: send: %v", name, err)
				return
			}
			// The server must close the connection, at the latest after its timeouts.
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && !isConnReset(err) {
				t.Errorf("%s: server did not close the connection: %v", name, err)
			}
		})
	}
	wg.Wait()

	c := <-got
	if c.sessions != 1 {
		t.Errorf("%d sessions, want 1", c.sessions)
	}
	if v := c.track("h264"); v == nil || len(c.units[v]) < 75 {
		t.Errorf("good stream disturbed: %d video units in 5 s", len(c.units[v]))
	}
	if n := len(e.logs.Lines("panic")); n != 0 {
		t.Fatalf("%d panics:\n%s", n, e.logs.String())
	}
	if _, err := e.hub.Get("live/bad"); err == nil {
		if st, _ := e.hub.Get("live/bad"); st.State() == "live" {
			t.Errorf("the garbage publisher is still live")
		}
	}
	// Still serving: a new publisher gets in.
	pushRTSP(t, e.url("live/after"), pushOptions{transport: "tcp", dur: 3 * time.Second})
	e.waitLive("live/after", 10*time.Second)
}

// request writes an RTSP request and reads the response's status and
// Session header.
func request(c net.Conn, req string) (session string, err error) {
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for !strings.Contains(string(buf), "\r\n\r\n") {
		n, err := c.Read(tmp)
		if err != nil {
			return "", err
		}
		buf = append(buf, tmp[:n]...)
	}
	head := string(buf)
	if !strings.HasPrefix(head, "RTSP/1.0 200") {
		return "", fmt.Errorf("response %q", strings.SplitN(head, "\r\n", 2)[0])
	}
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Session") {
			session, _, _ = strings.Cut(strings.TrimSpace(v), ";")
		}
	}
	return session, nil
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}
