package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// errorsConfig adds an application that needs a key, even from loopback.
const errorsConfig = fastConfig + `
applications:
  - name: live
  - name: secure
    keys: ["right-key"]
    allow_loopback_without_key: false
`

// goodStream is a stream that keeps playing while a test does bad things
// next to it.
type goodStream struct {
	s        *server
	name     string
	mediaURL string
	pub      *proc
}

func startGoodStream(t *testing.T, ctx context.Context, s *server, name string) *goodStream {
	t.Helper()
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 4 * time.Minute})
	mediaURL, _ := waitForPlaylist(t, s, name, 1)
	return &goodStream{s: s, name: name, mediaURL: mediaURL, pub: pub}
}

// position returns how far the good stream's playlist has got.
func (g *goodStream) position(t *testing.T) int {
	t.Helper()
	pl, err := fetchMediaPlaylist(context.Background(), g.mediaURL)
	if err != nil {
		t.Fatalf("good stream %s: %v", g.name, err)
	}
	return pl.Position()
}

// checkAdvances asserts the good stream's playlist moves on by a whole
// segment past from, and its publisher is still connected.
func (g *goodStream) checkAdvances(t *testing.T, from int) {
	t.Helper()
	pl := waitAdvance(t, g.mediaURL, from+1000, 20*time.Second)
	if pl.Endlist {
		t.Errorf("good stream %s ended:\n%s", g.name, pl.Raw)
	}
	if !g.pub.Running() {
		t.Errorf("good stream's publisher exited: %v\n%s", g.pub.err, testutil.Tail(g.pub.Stderr.String(), 20))
	}
}

// expectRefused waits for an ffmpeg publisher to give up, and checks it
// failed.
func expectRefused(t *testing.T, p *proc, what string) {
	t.Helper()
	exited, err := p.Wait(30 * time.Second)
	if !exited {
		t.Errorf("%s: ffmpeg still publishing after 30 s; want the server to refuse it\n%s", what, testutil.Tail(p.Stderr.String(), 20))
		p.Stop()
		return
	}
	if err == nil {
		t.Errorf("%s: ffmpeg exited with status 0; want a failure\n%s", what, testutil.Tail(p.Stderr.String(), 20))
	}
	t.Logf("%s: ffmpeg exited: %v: %s", what, err, strings.TrimSpace(testutil.Tail(p.Stderr.String(), 3)))
}

// TestPublishErrors does one bad thing after another to a server while a
// good stream plays, and checks that each is handled and the good stream
// keeps advancing.
func TestPublishErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: errorsConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	good := startGoodStream(t, ctx, s, "live/good")

	t.Run("WrongKey", func(t *testing.T) {
		from := good.position(t)
		p := ffmpegPublish(t, ctx, s.RTMPURL("secure/cam?key=wrong-key"), pubOptions{Duration: 30 * time.Second})
		expectRefused(t, p, "wrong key")
		line := s.waitLog(t, 10*time.Second, "secure/cam", "wrong key")
		t.Logf("server log: %s", line)
		if strings.Contains(s.Log.String(), "wrong-key") {
			t.Errorf("the server logged the rejected key itself")
		}
		if code, _ := httpGet(t, s.HLSURL("secure/cam")); code != http.StatusNotFound {
			t.Errorf("GET %s for a refused stream: %d, want 404", s.HLSURL("secure/cam"), code)
		}
		// No key at all, from loopback, where this application needs one.
		p = ffmpegPublish(t, ctx, s.RTMPURL("secure/cam"), pubOptions{Duration: 30 * time.Second})
		expectRefused(t, p, "missing key")
		s.waitLog(t, 10*time.Second, "secure/cam", "missing key")
		good.checkAdvances(t, from)

		// The right key works, and the key is not part of the stream name.
		p = ffmpegPublish(t, ctx, s.RTMPURL("secure/cam?key=right-key"), pubOptions{Duration: 30 * time.Second})
		waitForPlaylist(t, s, "secure/cam", 1)
		if strings.Contains(s.Log.String(), "right-key") {
			t.Errorf("the server logged a stream key")
		}
		for _, st := range s.streams(t) {
			if strings.Contains(st.Name, "key") {
				t.Errorf("stream name %q carries the key", st.Name)
			}
		}
		p.Stop()
	})

	t.Run("SecondPublisher", func(t *testing.T) {
		first := ffmpegPublish(t, ctx, s.RTMPURL("live/dup"), pubOptions{Duration: 2 * time.Minute})
		dupURL, _ := waitForPlaylist(t, s, "live/dup", 1)
		from, fromDup := good.position(t), mustPosition(t, dupURL)
		second := ffmpegPublish(t, ctx, s.RTMPURL("live/dup"), pubOptions{Duration: 30 * time.Second, Size: "320x240"})
		expectRefused(t, second, "second publisher")
		s.waitLog(t, 10*time.Second, "live/dup", "already")
		if !first.Running() {
			t.Errorf("the first publisher was disconnected by the second: %v\n%s", first.err, testutil.Tail(first.Stderr.String(), 20))
		}
		pl := waitAdvance(t, dupURL, fromDup+1000, 20*time.Second)
		if pl.Discontinuity > 0 {
			t.Errorf("the refused second publisher caused a discontinuity:\n%s", pl.Raw)
		}
		good.checkAdvances(t, from)
		first.Stop()
	})

	t.Run("ReconnectWithinGrace", func(t *testing.T) {
		const name = "live/rc"
		pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
		mediaURL, _ := waitForPlaylist(t, s, name, 2)
		from := good.position(t)

		// Poll the playlist and the MPD all the time from here on: a player
		// must never see a 404 until the stream has ended.
		poll := startPoller(s, mediaURL, s.DASHURL(name))
		defer poll.stop()

		pub.Kill() // like a crashed encoder: no FCUnpublish, no deleteStream
		time.Sleep(300 * time.Millisecond)
		pub = ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
		var pl *mediaPlaylist
		waitFor(t, 30*time.Second, "EXT-X-DISCONTINUITY after the reconnect", func() bool {
			p, err := fetchMediaPlaylist(ctx, mediaURL)
			if err != nil {
				return false
			}
			pl = p
			return p.Discontinuity > 0 && !p.Endlist
		})
		// The segment after the discontinuity is new media, and the playlist keeps going.
		before := pl.Position()
		pl = waitAdvance(t, mediaURL, before+1000, 20*time.Second)
		if pl.Endlist {
			t.Errorf("playlist ended although the publisher came back within the grace period:\n%s", pl.Raw)
		}
		if bad := poll.failures(); len(bad) > 0 {
			t.Errorf("a player polling during the reconnect saw %d failed requests, first: %s", len(bad), bad[0])
		}
		good.checkAdvances(t, from)
		t.Logf("reconnect seen; playlist:\n%s", pl.Raw)

		// Now the publisher leaves for good: after the grace period the
		// playlist ends and the MPD becomes static.
		pub.Stop()
		waitFor(t, 30*time.Second, "EXT-X-ENDLIST after the grace period", func() bool {
			p, err := fetchMediaPlaylist(ctx, mediaURL)
			if err != nil {
				return false
			}
			pl = p
			return p.Endlist
		})
		if p := pl.PreloadHint; p != nil {
			t.Errorf("an ended playlist still has EXT-X-PRELOAD-HINT %v", p)
		}
		poll.stop()
		if bad := poll.failures(); len(bad) > 0 {
			t.Errorf("a player polling until the end saw %d failed requests, first: %s", len(bad), bad[0])
		}
		waitFor(t, 15*time.Second, `type="static" in the MPD of the ended stream`, func() bool {
			code, body, err := tryGet(ctx, s.DASHURL(name))
			return err == nil && code == 200 && strings.Contains(body, `type="static"`)
		})
		// The ended stream is still playable from start to end as VOD.
		if res := ffmpegDecode(t, s.HLSURL(name), 30*time.Second); res.Err != nil || res.VideoFrames == 0 {
			t.Errorf("the ended stream's HLS does not play: %v, %d frames\n%s", res.Err, res.VideoFrames, testutil.Tail(res.Stderr, 10))
		}
		good.checkAdvances(t, from)

		// Publishing the same name again starts a new live stream.
		pub = ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
		waitFor(t, 30*time.Second, "a live playlist again after republishing", func() bool {
			code, body, err := tryGet(ctx, s.HLSURL(name))
			if err != nil || code != 200 {
				return false
			}
			u, err := firstMediaPlaylistURL(s.HLSURL(name), body)
			if err != nil {
				return false
			}
			p, err := fetchMediaPlaylist(ctx, u)
			return err == nil && !p.Endlist && len(p.Segments) > 0
		})
		pub.Stop()
	})

	t.Run("GarbageBytes", func(t *testing.T) {
		from := good.position(t)
		// 1. Pure noise (the first byte is not RTMP version 3).
		// 2. A valid C0 and then noise as C1, C2 and chunks.
		// 3. Noise, left open: the server must not crash, and must free it eventually.
		for i, first := range []byte{0xff, 0x03} {
			c, err := net.DialTimeout("tcp", s.RTMPAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			rand.Read(buf)
			buf[0] = first
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			_, werr := c.Write(buf)
			c.Close()
			t.Logf("garbage connection %d: wrote 64 KiB (write error: %v)", i, werr)
		}
		open, err := net.DialTimeout("tcp", s.RTMPAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer open.Close()
		junk := make([]byte, 4096)
		rand.Read(junk)
		junk[0] = 0x03
		open.Write(junk)
		// The server must close it: the handshake has a deadline
		// (rtmp read timeout, 10 s by default). 30 s is a hang guard.
		openClosed := make(chan error, 1)
		go func() {
			open.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.Copy(io.Discard, open)
			openClosed <- err
		}()
		// An HTTP request to the RTMP port, as from a misconfigured client.
		if c, err := net.DialTimeout("tcp", s.RTMPAddr, 5*time.Second); err == nil {
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			io.Copy(io.Discard, c)
			c.Close()
		}
		good.checkAdvances(t, from)
		if code, _ := httpGet(t, s.URL("/healthz")); code != 200 {
			t.Errorf("/healthz after garbage: %d", code)
		}
		// A new publisher still gets in.
		p := ffmpegPublish(t, ctx, s.RTMPURL("live/after-garbage"), pubOptions{Duration: 30 * time.Second})
		waitForPlaylist(t, s, "live/after-garbage", 1)
		p.Stop()
		if err := <-openClosed; err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("a connection that sent 4 KiB of garbage and then nothing was still open after 30 s")
			}
		}
	})

	t.Run("PathTricks", func(t *testing.T) {
		from := good.position(t)
		for _, name := range []string{"live/..%2f..%2fetc", "live/../etc", "live/%2e%2e", "live/a%00b", "live/..", "live/x\\..\\y"} {
			p := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 20 * time.Second})
			exited, err := p.Wait(30 * time.Second)
			if !exited {
				p.Stop()
			}
			if exited && err == nil {
				t.Errorf("publishing to %q: ffmpeg exited 0", name)
			}
			if !exited {
				t.Errorf("publishing to %q: still publishing after 30 s; want a refusal", name)
			}
		}
		for _, st := range s.streams(t) {
			if strings.Contains(st.Name, "..") || strings.ContainsAny(st.Name, "%\\\x00") {
				t.Errorf("the server accepted a stream named %q", st.Name)
			}
		}
		// Raw HTTP requests, so no client cleans the paths first.
		for _, path := range []string{
			"/live/../../etc/passwd",
			"/live/..%2f..%2fetc%2fpasswd",
			"/live/%2e%2e/%2e%2e/etc/passwd",
			"/..%2f..%2f..%2f..%2fetc%2fpasswd",
			"/live/..%2f..%2fetc/passwd/index.m3u8",
			"/live/%2e%2e%2f%2e%2e%2fetc/index.m3u8",
			"/live/good/../../../etc/passwd",
			"/live/good/..%2f..%2f..%2fetc%2fpasswd",
			"/live/good/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
			"/live/good/init.mp4/../../../../etc/passwd",
			"/live/..\\..\\etc\\passwd",
			"//etc/passwd",
		} {
			code, body := rawGet(t, s.HTTPAddr, path)
			if strings.Contains(body, "root:") || code/100 == 2 {
				t.Errorf("GET %s: %d, serves a file:\n%.300s", path, code, body)
				continue
			}
			if code != 400 && code != 404 {
				t.Errorf("GET %s: %d, want 400 or 404\n%.200s", path, code, body)
			}
		}
		good.checkAdvances(t, from)
	})
}

func mustPosition(t *testing.T, u string) int {
	t.Helper()
	pl, err := fetchMediaPlaylist(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return pl.Position()
}

// rawGet sends a GET with path exactly as given.
func rawGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// poller GETs URLs over and over, as players do, and records failures.
type poller struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	bad    []string
	n      int
}

func startPoller(s *server, urls ...string) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{cancel: cancel}
	for _, u := range urls {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for ctx.Err() == nil {
				code, body, err := tryGet(ctx, u)
				if ctx.Err() != nil {
					return
				}
				p.mu.Lock()
				p.n++
				if err != nil || code != 200 {
					p.bad = append(p.bad, fmt.Sprintf("%s %s: %d %v %.100s", time.Now().Format("15:04:05.000"), u, code, err, body))
				}
				p.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	return p
}

func (p *poller) stop() {
	p.cancel()
	p.wg.Wait()
}

func (p *poller) failures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.bad...)
}
