package pull

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestPullGarbageSource: a source that answers with garbage (or hangs up)
// puts the pull in backoff with a reason; nothing panics or hangs.
func TestPullGarbageSource(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			_, _ = c.Write([]byte(strings.Repeat("garbage\r\n\x00\x03", 200)))
			c.Close()
		}
	}()
	hub := newHub(t, -1)
	m := newManager(t, hub)
	addr := ln.Addr().String()
	for i, u := range []string{"rtmp://" + addr + "/live/x", "rtsp://" + addr + "/x", "http://" + addr + "/index.m3u8"} {
		name := fmt.Sprintf("live/g%d", i)
		if _, err := m.Start(Source{Name: name, URL: u, RTSPTransport: "tcp"}, OriginAPI); err != nil {
			t.Fatal(err)
		}
		st := waitState(t, m, name, PhaseBackoff, 10*time.Second)
		if st.LastError == "" {
			t.Errorf("%s: backoff without a reason", u)
		}
	}
}

// FuzzCheck: no source URL makes the checks panic.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"rtsp://u:p@h:554/x", "rtmp://h/live/k?x=1", "rtmps://h/a#k", "srt://h:1?streamid=read:live/x&latency=200",
		"srt://h:1?passphrase=short", "http://h/x.m3u8", "https://[::1]:8443/a.m3u8", "rtmp://h", "srt://", "://", "%zz",
	} {
		f.Add(s, "")
	}
	f.Add("rtsp://h/x", "tcp")
	f.Fuzz(func(t *testing.T, u, transport string) {
		_ = Check(Source{Name: "live/x", URL: u, RTSPTransport: transport})
		_ = Redact(u)
	})
}
