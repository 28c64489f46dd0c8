package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// TestAPI checks what an operator sees: the stream list with codecs,
// resolution and frame rate, kicking a publisher, metrics and health.
func TestAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: fastConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/api"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
	mediaURL, _ := waitForPlaylist(t, s, name, 2)

	t.Run("Healthz", func(t *testing.T) {
		if code, body := httpGet(t, s.URL("/healthz")); code != 200 {
			t.Errorf("/healthz: %d %s", code, body)
		}
	})

	t.Run("Auth", func(t *testing.T) {
		if code, b := s.api(t, http.MethodGet, "/api/v1/streams", ""); code != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/streams without a token: %d, want 401\n%.300s", code, b)
		}
		if code, b := s.api(t, http.MethodGet, "/api/v1/streams", "not-the-token"); code != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/streams with a wrong token: %d, want 401\n%.300s", code, b)
		}
		if code, b := s.api(t, http.MethodDelete, "/api/v1/streams/"+name, "not-the-token"); code != http.StatusUnauthorized {
			t.Errorf("DELETE /api/v1/streams/%s with a wrong token: %d, want 401\n%.300s", name, code, b)
		}
		if !pub.Running() {
			t.Fatalf("an unauthorised DELETE kicked the publisher")
		}
	})

	t.Run("List", func(t *testing.T) {
		var st apiStream
		// fps is measured over a second of media: wait until it is known.
		waitFor(t, 15*time.Second, "the stream in the list with its video fps", func() bool {
			for _, x := range s.streams(t) {
				if x.Name == name {
					st = x
					for _, tr := range x.Tracks {
						if tr.Kind == "video" && tr.FPS > 0 {
							return true
						}
					}
				}
			}
			return false
		})
		t.Logf("listed: %+v", st)
		if st.State != "live" {
			t.Errorf("state %q, want live", st.State)
		}
		if st.Protocol != "" && !strings.Contains(strings.ToLower(st.Protocol), "rtmp") {
			t.Errorf("protocol %q, want rtmp", st.Protocol)
		}
		var video, audio *apiTrack
		for i := range st.Tracks {
			switch st.Tracks[i].Kind {
			case "video":
				video = &st.Tracks[i]
			case "audio":
				audio = &st.Tracks[i]
			}
		}
		if video == nil || audio == nil {
			t.Fatalf("tracks %+v, want a video and an audio track", st.Tracks)
		}
		if video.Codec != "h264" || video.Width != 640 || video.Height != 360 {
			t.Errorf("video track %+v, want h264 640x360", *video)
		}
		// testsrc2 runs at 30 fps; this is the source's rate, not a speed measurement.
		if video.FPS < 28 || video.FPS > 32 {
			t.Errorf("video fps %v, want about 30", video.FPS)
		}
		if audio.Codec != "aac" || audio.SampleRate != 48000 {
			t.Errorf("audio track %+v, want aac 48000 Hz", *audio)
		}
		one, ok := s.stream(t, name)
		if !ok {
			t.Fatalf("GET /api/v1/streams/%s: 404", name)
		}
		if one.Name != name || len(one.Tracks) != len(st.Tracks) {
			t.Errorf("GET /api/v1/streams/%s: %+v, want the listed stream", name, one)
		}
		if _, ok := s.stream(t, "live/nope"); ok {
			t.Errorf("GET /api/v1/streams/live/nope: found a stream that does not exist")
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		// The same access rule as the API (api/openapi.yaml).
		if code, body := httpGet(t, s.URL("/metrics")); code != http.StatusUnauthorized {
			t.Errorf("/metrics without the token: %d, want 401\n%.200s", code, body)
		}
		code, b := s.api(t, http.MethodGet, "/metrics", apiToken)
		body := string(b)
		if code != 200 {
			t.Fatalf("/metrics: %d %.300s", code, body)
		}
		var series []string
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "mps_") {
				series = append(series, line)
			}
		}
		if len(series) == 0 {
			t.Errorf("/metrics has no mps_ series:\n%s", testutil.Tail(body, 40))
		}
		for _, want := range []string{"mps_streams ", `mps_stream_up{stream="` + name + `"} 1`, `mps_stream_frames_per_second{stream="` + name + `"`} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics has no %s:\n%s", want, strings.Join(series, "\n"))
			}
		}
	})

	t.Run("Kick", func(t *testing.T) {
		code, b := s.api(t, http.MethodDelete, "/api/v1/streams/"+name, apiToken)
		if code/100 != 2 {
			t.Fatalf("DELETE /api/v1/streams/%s: %d %.300s", name, code, b)
		}
		exited, err := pub.Wait(20 * time.Second)
		if !exited {
			t.Fatalf("the publisher is still connected 20 s after DELETE")
		}
		t.Logf("kicked publisher exited: %v", err)
		// Kicked is like any other disconnect: after the grace period the
		// stream ends.
		waitFor(t, 30*time.Second, "EXT-X-ENDLIST after the kick", func() bool {
			pl, err := fetchMediaPlaylist(ctx, mediaURL)
			return err == nil && pl.Endlist
		})
		waitFor(t, 15*time.Second, "the kicked stream to leave the API list", func() bool {
			for _, x := range s.streams(t) {
				if x.Name == name && x.State == "live" {
					return false
				}
			}
			return true
		})
		if code, b := s.api(t, http.MethodDelete, "/api/v1/streams/live/nope", apiToken); code != http.StatusNotFound {
			t.Errorf("DELETE of a stream that does not exist: %d, want 404\n%.300s", code, b)
		}
	})
}
