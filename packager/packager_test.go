package packager

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

type testServer struct {
	hub *stream.Hub
	pkg *Packager
	srv *httptest.Server
}

func newTestServer(t *testing.T, grace time.Duration, cfg Config) *testServer {
	t.Helper()
	hub := stream.NewHub(stream.HubConfig{GracePeriod: grace})
	pkg := New(hub, cfg)
	srv := httptest.NewServer(pkg)
	t.Cleanup(func() {
		srv.Close()
		hub.Close()
		pkg.Close()
	})
	return &testServer{hub: hub, pkg: pkg, srv: srv}
}

func (ts *testServer) get(t *testing.T, path string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(ts.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func tracksOf(m *testmedia.Media) []*stream.Track {
	v, a := *m.Video, *m.Audio
	return []*stream.Track{&v, &a}
}

// countFrames decodes url with ffmpeg and returns the number of video
// frames, failing on any decode error.
func countFrames(t *testing.T, url string) (video int, hasAudio bool) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "csv=p=0", url).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", url, err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		switch {
		case len(f) >= 5 && f[1] == "video":
			if f[0] != "h264" || f[2] != "320" || f[3] != "240" {
				t.Errorf("video stream %q, want h264 320x240", line)
			}
			video, _ = strconv.Atoi(f[4])
		case len(f) >= 2 && f[1] == "audio":
			hasAudio = f[0] == "aac"
		default:
			if strings.TrimSpace(line) != "" {
				t.Errorf("unexpected ffprobe line %q", line)
			}
		}
	}
	return video, hasAudio
}

func TestEndedStreamPlaysToTheEnd(t *testing.T) {
	media := testmedia.MakeMedia(t, 8)
	ts := newTestServer(t, -1, Config{PlaylistSegments: 10})
	tracks := tracksOf(media)
	p, err := ts.hub.Publish("live/vod", tracks, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	media.Publish(t, p, tracks, false, 0)
	p.Close(nil)

	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, _ := ts.get(t, "/live/vod/t0.m3u8")
		if code == 200 && strings.Contains(body, "#EXT-X-ENDLIST") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("playlist never ended: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body, hdr := ts.get(t, "/live/vod/index.m3u8")
	if code != 200 || hdr.Get("Content-Type") != mimeHLS || hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("multivariant: %d %v", code, hdr)
	}
	for _, want := range []string{`CODECS="avc1.`, `mp4a.40.2"`, "RESOLUTION=320x240", `TYPE=AUDIO`, "t0.m3u8", `URI="t1.m3u8"`} {
		if !strings.Contains(body, want) {
			t.Errorf("multivariant lacks %q:\n%s", want, body)
		}
	}
	frames, audio := countFrames(t, ts.srv.URL+"/live/vod/index.m3u8")
	if frames != len(media.Frames) || !audio {
		t.Errorf("HLS decoded %d video frames (audio %v), want %d and audio", frames, audio, len(media.Frames))
	}
	code, mpd, _ := ts.get(t, "/live/vod/manifest.mpd")
	if code != 200 || !strings.Contains(mpd, `type="static"`) {
		t.Fatalf("MPD after end: %d\n%s", code, mpd)
	}
	frames, audio = countFrames(t, ts.srv.URL+"/live/vod/manifest.mpd")
	if frames != len(media.Frames) || !audio {
		t.Errorf("DASH decoded %d video frames (audio %v), want %d and audio", frames, audio, len(media.Frames))
	}
}

var partRe = regexp.MustCompile(`#EXT-X-PART:DURATION=([0-9.]+),URI="([^"]+)"`)

func TestLowLatencyPlaylistAndBlockingReload(t *testing.T) {
	media := testmedia.MakeMedia(t, 8)
	ts := newTestServer(t, -1, Config{})
	tracks := tracksOf(media)
	p, err := ts.hub.Publish("live/ll", tracks, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		media.Publish(t, p, tracks, true, 0)
		p.Close(nil)
	}()
	defer func() { <-done }()

	code, body, hdr := ts.get(t, "/live/ll/t0.m3u8")
	if code != 200 || hdr.Get("Cache-Control") != "no-cache" {
		t.Fatalf("media playlist: %d %v\n%s", code, hdr, body)
	}
	for _, want := range []string{"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=", "#EXT-X-PART-INF:PART-TARGET=0.20000",
		"#EXT-X-MAP:URI=", "#EXT-X-TARGETDURATION:2", "#EXTINF:", "#EXT-X-PRELOAD-HINT:TYPE=PART", "INDEPENDENT=YES", "#EXT-X-PROGRAM-DATE-TIME:"} {
		if !strings.Contains(body, want) {
			t.Errorf("playlist lacks %q:\n%s", want, body)
		}
	}
	for _, m := range partRe.FindAllStringSubmatch(body, -1) {
		if d, _ := strconv.ParseFloat(m[1], 64); d > 0.2+0.0015 || d <= 0 {
			t.Errorf("part %s lasts %ss, over PART-TARGET", m[2], m[1])
		}
	}
	// Ask for the part named by the preload hint: the request must be held
	// until that part exists, then list it.
	hint := regexp.MustCompile(`PRELOAD-HINT:TYPE=PART,URI="[0-9a-f]+_0_(\d+)_(\d+)\.m4s"`).FindStringSubmatch(body)
	if hint == nil {
		t.Fatalf("no preload hint:\n%s", body)
	}
	wantURI := strings.TrimPrefix(regexp.MustCompile(`URI="([^"]+)"\n$`).FindString(body[strings.Index(body, "#EXT-X-PRELOAD-HINT"):]), `URI="`)
	wantURI = strings.TrimSuffix(wantURI, "\"\n")
	if strings.Contains(body, `#EXT-X-PART:DURATION`) && strings.Contains(body, `URI="`+wantURI+`",`) {
		t.Fatalf("hinted part %s is already listed", wantURI)
	}
	code, next, _ := ts.get(t, fmt.Sprintf("/live/ll/t0.m3u8?_HLS_msn=%s&_HLS_part=%s", hint[1], hint[2]))
	if code != 200 || !strings.Contains(next, `URI="`+wantURI+`"`) {
		t.Fatalf("blocking reload for %s: %d\n%s", wantURI, code, next)
	}
	code, data, hdr := ts.get(t, "/live/ll/"+wantURI)
	if code != 200 || len(data) == 0 || hdr.Get("Content-Type") != "video/iso.segment" {
		t.Fatalf("part %s: %d %v", wantURI, code, hdr)
	}
	// A hinted part that does not exist yet is held, then served.
	hint2 := regexp.MustCompile(`PRELOAD-HINT:TYPE=PART,URI="([^"]+)"`).FindStringSubmatch(next)
	code, data, _ = ts.get(t, "/live/ll/"+hint2[1])
	if code != 200 || !strings.Contains(data, "moof") {
		t.Fatalf("preload-hinted part %s: %d", hint2[1], code)
	}
	if code, _, _ := ts.get(t, "/live/ll/t0.m3u8?_HLS_msn=99999"); code != 400 {
		t.Errorf("far-future _HLS_msn: got %d, want 400", code)
	}
	code, mpd, _ := ts.get(t, "/live/ll/manifest.mpd")
	if code != 200 || !strings.Contains(mpd, `type="dynamic"`) || !strings.Contains(mpd, "<SegmentTimeline>") {
		t.Errorf("live MPD: %d\n%s", code, mpd)
	}
}

func TestReconnectShowsDiscontinuity(t *testing.T) {
	media := testmedia.MakeMedia(t, 4)
	ts := newTestServer(t, 5*time.Second, Config{PlaylistSegments: 10})
	for session := range 2 {
		tracks := tracksOf(media)
		p, err := ts.hub.Publish("live/re", tracks, stream.PublishOptions{Protocol: "test"})
		if err != nil {
			t.Fatalf("session %d: %v", session, err)
		}
		media.Publish(t, p, tracks, false, 0)
		p.Close(nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m := ts.pkg.muxer("live/re")
	if !m.waitFor(ctx, func() bool { return m.period != nil && m.period.id == 2 && m.nextMSN >= 4 }) {
		t.Fatal("second session was not packaged")
	}
	code, body, _ := ts.get(t, "/live/re/t0.m3u8")
	if code != 200 || strings.Count(body, "#EXT-X-DISCONTINUITY\n") != 1 || strings.Count(body, "#EXT-X-MAP:") != 2 {
		t.Fatalf("playlist after reconnect: %d\n%s", code, body)
	}
	if strings.Contains(body, "#EXT-X-ENDLIST") {
		t.Fatal("playlist ended during the grace period")
	}
	code, mpd, _ := ts.get(t, "/live/re/manifest.mpd")
	if code != 200 || strings.Count(mpd, "<Period ") != 2 {
		t.Fatalf("MPD after reconnect: %d\n%s", code, mpd)
	}
}

func TestBadRequests(t *testing.T) {
	ts := newTestServer(t, -1, Config{})
	for path, want := range map[string]int{
		"/live/../../etc/passwd":    400,
		"/live/nope/index.m3u8":     404,
		"/live/nope/evil.txt":       404,
		"/live/x/t0.m3u8?_HLS_msn=": 404,
	} {
		if code, _, _ := ts.get(t, path); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, ts.srv.URL+"/live/x/index.m3u8", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}
