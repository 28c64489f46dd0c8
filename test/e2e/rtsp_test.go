package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

const rtspKey = "rtsp-e2e-key"

// freeUDPPortPair returns an even loopback UDP port whose successor was
// free a moment ago too: RTSP wants RTCP on the port after RTP's.
func freeUDPPortPair(t *testing.T) int {
	t.Helper()
	for range 100 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port &^ 1
		a.Close()
		if p < 1024 || p > 65534 {
			continue
		}
		x, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		y, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		x.Close()
		if err == nil {
			y.Close()
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// TestRTSP publishes over RTSP with a key, plays the HLS output, reads the
// stream back over RTSP (TCP and UDP), checks the stream info, and checks
// that a wrong key is refused.
func TestRTSP(t *testing.T) {
	t.Parallel()
	tcpPort := testutil.FreePort(t)
	udpPort := freeUDPPortPair(t)
	s := startServer(t, serverOptions{Config: fastConfig + fmt.Sprintf(`
applications:
  - name: live
    keys: [%s]
rtsp:
  enabled: true
  address: "127.0.0.1:%d"
  udp_rtp_address: "127.0.0.1:%d"
  udp_rtcp_address: "127.0.0.1:%d"
`, rtspKey, tcpPort, udpPort, udpPort+1)})
	s.waitLog(t, 10*time.Second, "rtsp listening")
	rtspURL := func(name string) string { return fmt.Sprintf("rtsp://127.0.0.1:%d/%s", tcpPort, name) }

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/rtspcam"
	pub := rtspPublish(t, ctx, rtspURL(name+"?key="+rtspKey), 60*time.Second)
	defer pub.Stop()
	waitForPlaylist(t, s, name, 2)

	t.Run("HLS", func(t *testing.T) {
		const dur = 4 * time.Second
		checkProbe(t, "HLS of RTSP", ffprobe(t, s.HLSURL(name)), "h264", 640, 360, "aac")
		checkDecode(t, "HLS of RTSP", ffmpegDecode(t, s.HLSURL(name), dur), dur, true, true)
	})

	t.Run("ReadBack", func(t *testing.T) {
		const dur = 3 * time.Second
		for _, tr := range []string{"tcp", "udp"} {
			res := rtspDecode(t, rtspURL(name), tr, dur)
			checkDecode(t, "RTSP read over "+tr, res, dur, true, true)
		}
	})

	t.Run("StreamInfo", func(t *testing.T) {
		// A reader that stays while the info is read.
		rd := startProc(t, ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
			"-i", rtspURL(name), "-t", "20", "-f", "null", "-")
		defer rd.Stop()
		var info struct {
			Protocol   string `json:"protocol"`
			RemoteAddr string `json:"remote_addr"`
			BytesIn    uint64 `json:"bytes_in"`
			BytesOut   uint64 `json:"bytes_out"`
			Readers    []struct {
				Kind       string `json:"kind"`
				RemoteAddr string `json:"remote_addr"`
			} `json:"readers"`
		}
		waitFor(t, 15*time.Second, "an rtsp reader in the stream info", func() bool {
			code, body := s.api(t, http.MethodGet, "/api/v1/streams/"+name, apiToken)
			if code != http.StatusOK {
				t.Fatalf("GET stream: %d %s", code, body)
			}
			if err := json.Unmarshal(body, &info); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			for _, r := range info.Readers {
				if r.Kind == "rtsp" && strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") {
					return true
				}
			}
			return false
		})
		if info.Protocol != "rtsp" || !strings.HasPrefix(info.RemoteAddr, "127.0.0.1:") || info.BytesIn == 0 || info.BytesOut == 0 {
			t.Fatalf("stream info %+v", info)
		}
	})

	t.Run("WrongKey", func(t *testing.T) {
		p := rtspPublish(t, ctx, rtspURL("live/rtspbad?key=wrong"), 5*time.Second)
		exited, err := p.Wait(20 * time.Second)
		if !exited || err == nil {
			t.Fatalf("publisher with a wrong key: exited %v, err %v", exited, err)
		}
		s.waitLog(t, 5*time.Second, "publish refused", "live/rtspbad", "wrong key")
		if code, _ := s.api(t, http.MethodGet, "/api/v1/streams/live/rtspbad", apiToken); code != http.StatusNotFound {
			t.Fatalf("refused stream is listed: %d", code)
		}
	})
}

// rtspPublish pushes H.264 + AAC test media (640x360, 30 fps, 1 s GOP)
// with ffmpeg's RTSP muxer (ANNOUNCE + RECORD, interleaved over TCP).
func rtspPublish(t *testing.T, ctx context.Context, u string, dur time.Duration) *proc {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	args := ffmpegArgs(u, pubOptions{Duration: dur})
	// ffmpegArgs ends with "-f flv URL": publish over RTSP instead.
	args = append(args[:len(args)-3], "-rtsp_transport", "tcp", "-f", "rtsp", u)
	return startProc(t, ctx, "ffmpeg", args...)
}

// rtspDecode is ffmpegDecode for an rtsp:// URL, whose demuxer has no
// -rw_timeout option: it decodes up to dur over transport (tcp or udp),
// with -xerror, and counts the frames.
func rtspDecode(t *testing.T, u, transport string, dur time.Duration) decodeResult {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), dur+60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-xerror",
		"-rtsp_transport", transport, "-timeout", "15000000", "-i", u,
		"-map", "0:v?", "-map", "0:a?", "-t", fmt.Sprintf("%.3f", dur.Seconds()), "-f", "framecrc", "-")
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := decodeResult{Stderr: stderr.String(), Err: err}
	if ctx.Err() != nil {
		res.Err = fmt.Errorf("ffmpeg hung: %w (%v)", ctx.Err(), err)
	}
	// framecrc: "#media_type 0: video", "#tb 1: 1/48000", "#dimensions 0: WxH",
	// then "stream, dts, pts, duration, size, crc".
	kinds := map[string]string{}
	tbs := map[string]float64{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if key, val, ok := strings.Cut(line, ": "); ok && strings.HasPrefix(line, "#") {
			f := strings.Fields(key)
			if len(f) != 2 {
				continue
			}
			switch f[0] {
			case "#media_type":
				kinds[f[1]] = val
			case "#dimensions":
				res.VideoSize = val
			case "#tb":
				n, d, _ := strings.Cut(val, "/")
				nn, _ := strconv.ParseFloat(n, 64)
				dd, _ := strconv.ParseFloat(d, 64)
				if dd > 0 {
					tbs[f[1]] = nn / dd
				}
			}
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 6 {
			continue
		}
		idx := strings.TrimSpace(f[0])
		switch kinds[idx] {
		case "video":
			res.VideoFrames++
		case "audio":
			res.AudioFrames++
			d, _ := strconv.ParseFloat(strings.TrimSpace(f[3]), 64)
			res.AudioSeconds += d * tbs[idx]
		}
	}
	return res
}
