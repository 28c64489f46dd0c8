package e2e

import (
	"context"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/mps-dev/mps/test/testutil"
)

// slowConfig keeps the reader queue short, so a stuck reader is noticed
// after about two seconds of media instead of half a minute.
const slowConfig = `
log:
  level: debug
hub:
  grace_period: 5s
  reader_queue: 160
  gop_cache_limit: 128
packager:
  segment_duration: 1s
  part_duration: 200ms
`

// dialSmallBuffer dials with a tiny receive buffer, so the server's writes
// block soon after the client stops reading.
func dialSmallBuffer(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext(ctx, network, address)
}

// TestSlowRTMPReader attaches an RTMP player that completes the handshake
// and play and then stops reading. The hub must drop it, while the
// publisher, a well-behaved RTMP player and HLS all carry on.
func TestSlowRTMPReader(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: slowConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/slow"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
	mediaURL, _ := waitForPlaylist(t, s, name, 1)

	// The stuck player.
	u, _ := url.Parse(s.RTMPURL(name))
	stuck := &gortmplib.Client{URL: u, Publish: false, DialContext: dialSmallBuffer}
	ictx, icancel := context.WithTimeout(ctx, 15*time.Second)
	err := stuck.Initialize(ictx)
	icancel()
	if err != nil {
		why := strings.ToLower(err.Error() + "\n" + strings.Join(s.Log.Lines("play"), "\n"))
		for _, w := range []string{"not supported", "unsupported", "not implemented"} {
			if strings.Contains(why, w) {
				t.Skipf("RTMP play is not implemented by this server (play of %s: %v); the slow-reader test needs an RTMP reader", s.RTMPURL(name), err)
			}
		}
		t.Fatalf("RTMP play of %s: %v", s.RTMPURL(name), err)
	}
	defer stuck.Close()
	stuckAddr := stuck.NetConn().LocalAddr().String()
	t.Logf("stuck RTMP player %s connected and playing; it reads nothing from now on", stuckAddr)

	// A well-behaved RTMP player next to it.
	good := startProc(t, ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-rw_timeout", "15000000",
		"-i", s.RTMPURL(name), "-c", "copy", "-f", "null", "-")

	rtmpReaders := func() []apiReader {
		st, ok := s.stream(t, name)
		if !ok {
			t.Fatalf("stream %s is gone from the API", name)
		}
		var out []apiReader
		for _, r := range st.Readers {
			if r.Kind != "" && !strings.Contains(strings.ToLower(r.Kind), "rtmp") {
				continue
			}
			out = append(out, r)
		}
		return out
	}
	hasAddr := func(rs []apiReader, addr string) bool {
		for _, r := range rs {
			if r.RemoteAddr == addr {
				return true
			}
		}
		return false
	}
	var readers []apiReader
	waitFor(t, 20*time.Second, "both RTMP players in the API's reader list", func() bool {
		readers = rtmpReaders()
		return len(readers) >= 2
	})
	t.Logf("readers: %+v", readers)
	if !hasAddr(readers, stuckAddr) {
		t.Logf("note: no reader has the stuck player's address %s; counting readers instead", stuckAddr)
	}
	from := mustPosition(t, mediaURL)

	// The stuck player must be dropped.
	waitFor(t, 90*time.Second, "the stuck RTMP player to be dropped", func() bool {
		rs := rtmpReaders()
		if hasAddr(readers, stuckAddr) {
			return !hasAddr(rs, stuckAddr)
		}
		return len(rs) < len(readers)
	})
	// The hub drops it (the queue holds about 2 s of media, far less than
	// the RTMP write timeout), with a logged reason.
	line := s.waitLog(t, 10*time.Second, "reader dropped", name, stuckAddr)
	t.Logf("server log: %s", line)

	// The rest carries on.
	pl := waitAdvance(t, mediaURL, from+2000, 20*time.Second)
	if pl.Endlist {
		t.Errorf("HLS ended when a reader was dropped:\n%s", pl.Raw)
	}
	if !pub.Running() {
		t.Errorf("the publisher was disconnected: %v\n%s", pub.err, testutil.Tail(pub.Stderr.String(), 20))
	}
	if !good.Running() {
		t.Errorf("the well-behaved RTMP player was disconnected: %v\n%s", good.err, testutil.Tail(good.Stderr.String(), 20))
	}
	if rs := rtmpReaders(); len(rs) < 1 {
		t.Errorf("no RTMP reader left; the well-behaved player should still be attached: %+v", rs)
	}
	if lines := s.Log.Lines("reader dropped"); len(lines) > 1 {
		t.Errorf("%d readers were dropped, want only the stuck one:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}
