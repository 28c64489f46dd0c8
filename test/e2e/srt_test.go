package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

const (
	srtKey        = "srt-e2e-key"
	srtPassphrase = "srt-e2e-passphrase"
)

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// srtURL is an ffmpeg SRT URL (ffmpeg 5.1 takes the stream id as it is,
// without URL-decoding it).
func srtURL(port int, streamID, passphrase string) string {
	u := fmt.Sprintf("srt://127.0.0.1:%d?streamid=%s&latency=120000&pkt_size=1316", port, streamID)
	if passphrase != "" {
		u += "&passphrase=" + passphrase
	}
	return u
}

// srtPublish pushes H.264 + AAC test media (640x360, 30 fps, 1 s GOP) as
// MPEG-TS over SRT.
func srtPublish(t *testing.T, ctx context.Context, u string, dur time.Duration) *proc {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	args := ffmpegArgs(u, pubOptions{Duration: dur})
	// ffmpegArgs ends with "-f flv URL": publish MPEG-TS instead.
	args[len(args)-2] = "mpegts"
	return startProc(t, ctx, "ffmpeg", args...)
}

// TestSRT publishes over SRT with a passphrase and a key, plays the HLS
// output, reads the stream back over SRT, checks the stream info, and
// checks that a wrong passphrase and a wrong key are refused.
func TestSRT(t *testing.T) {
	t.Parallel()
	port := freeUDPPort(t)
	s := startServer(t, serverOptions{Config: fastConfig + fmt.Sprintf(`
applications:
  - name: live
    keys: [%s]
srt:
  enabled: true
  address: "127.0.0.1:%d"
  latency: 200ms
  passphrases:
    - application: live
      passphrase: %s
`, srtKey, port, srtPassphrase)})
	s.waitLog(t, 10*time.Second, "srt listening")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/srtcam"
	pub := srtPublish(t, ctx, srtURL(port, "#!::r="+name+",m=publish,s="+srtKey, srtPassphrase), 60*time.Second)
	defer pub.Stop()
	waitForPlaylist(t, s, name, 2)

	t.Run("HLS", func(t *testing.T) {
		const dur = 4 * time.Second
		checkProbe(t, "HLS of SRT", ffprobe(t, s.HLSURL(name)), "h264", 640, 360, "aac")
		checkDecode(t, "HLS of SRT", ffmpegDecode(t, s.HLSURL(name), dur), dur, true, true)
	})

	t.Run("ReadBack", func(t *testing.T) {
		const dur = 3 * time.Second
		for _, sid := range []string{"read:" + name, "#!::r=" + name + ",m=request"} {
			res := ffmpegDecode(t, srtURL(port, sid, srtPassphrase), dur)
			checkDecode(t, "SRT read "+sid, res, dur, true, true)
		}
	})

	t.Run("StreamInfo", func(t *testing.T) {
		code, body := s.api(t, http.MethodGet, "/api/v1/streams/"+name, apiToken)
		if code != http.StatusOK {
			t.Fatalf("GET stream: %d %s", code, body)
		}
		var info struct {
			Protocol   string `json:"protocol"`
			RemoteAddr string `json:"remote_addr"`
			BytesIn    uint64 `json:"bytes_in"`
			BytesOut   uint64 `json:"bytes_out"`
		}
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		if info.Protocol != "srt" || !strings.HasPrefix(info.RemoteAddr, "127.0.0.1:") || info.BytesIn == 0 || info.BytesOut == 0 {
			t.Fatalf("stream info %+v", info)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		for _, c := range []struct{ what, name, streamID, passphrase, reason string }{
			{"wrong passphrase", "live/bad1", "publish:live/bad1:" + srtKey, "not-the-passphrase", "wrong passphrase"},
			{"no passphrase", "live/bad2", "publish:live/bad2:" + srtKey, "", "missing passphrase"},
			{"wrong key", "live/bad3", "#!::r=live/bad3,m=publish,s=wrong-key", srtPassphrase, "wrong key"},
		} {
			p := srtPublish(t, ctx, srtURL(port, c.streamID, c.passphrase), 5*time.Second)
			exited, err := p.Wait(20 * time.Second)
			if !exited || err == nil {
				t.Errorf("%s: ffmpeg was not refused (exited %v, err %v)", c.what, exited, err)
			}
			s.waitLog(t, 5*time.Second, "srt connection refused", fmt.Sprintf("reason=%q", c.reason))
			if _, ok := s.stream(t, c.name); ok {
				t.Errorf("%s: a stream was made", c.what)
			}
		}
	})

	t.Run("Kick", func(t *testing.T) {
		code, body := s.api(t, http.MethodDelete, "/api/v1/streams/"+name, apiToken)
		if code/100 != 2 {
			t.Fatalf("kick: %d %s", code, body)
		}
		if exited, _ := pub.Wait(20 * time.Second); !exited {
			t.Fatal("the SRT publisher was not disconnected by the kick")
		}
	})
}
