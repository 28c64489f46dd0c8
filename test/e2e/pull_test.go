package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// pullConfig is fastConfig with a short grace period, so that a stopped
// pull's stream ends quickly, and quick retries.
const pullConfig = `
log:
  level: debug
hub:
  grace_period: 1s
packager:
  segment_duration: 1s
  part_duration: 200ms
  playlist_segments: 6
  linger: 60s
pull:
  backoff_min: 200ms
  backoff_max: 1s
  read_timeout: 5s
`

// apiPull is the part of a pull's state the tests read.
type apiPull struct {
	Name        string     `json:"name"`
	Protocol    string     `json:"protocol"`
	Origin      string     `json:"origin"`
	State       string     `json:"state"`
	LastError   string     `json:"last_error"`
	NextAttempt *time.Time `json:"next_attempt"`
	Connects    int        `json:"connects"`
}

func (s *server) pull(t *testing.T, name string) (apiPull, int) {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/pulls/"+name, apiToken)
	var p apiPull
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("pull %s: %v: %s", name, err, b)
		}
	}
	return p, code
}

func (s *server) waitPull(t *testing.T, name, state string, timeout time.Duration) apiPull {
	t.Helper()
	var p apiPull
	waitFor(t, timeout, "pull "+name+" "+state, func() bool {
		p, _ = s.pull(t, name)
		return p.State == state
	})
	return p
}

// rtmpListen runs `ffmpeg ... -f flv -listen 1 rtmp://127.0.0.1:PORT/live/x`:
// an RTMP server with live test media for one player.
func rtmpListen(t *testing.T, ctx context.Context, port int) *proc {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	return startProc(t, ctx, "ffmpeg", ffmpegArgs(fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port),
		pubOptions{Extra: []string{"-listen", "1"}})...)
}

// TestPullRTMP: a configured pull from an ffmpeg RTMP listener shows up as
// a stream whose HLS decodes; it comes back by itself after the source is
// killed and restarted; pulls start and stop through the API.
func TestPullRTMP(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := testutil.FreePort(t)
	src := rtmpListen(t, ctx, port)
	const name = "live/pulled"
	s := startServer(t, serverOptions{Config: pullConfig + fmt.Sprintf(`  sources:
    - name: %s
      url: rtmp://127.0.0.1:%d/live/x
`, name, port)})

	p := s.waitPull(t, name, "live", 20*time.Second)
	if p.Protocol != "pull-rtmp" || p.Origin != "config" {
		t.Errorf("pull %+v", p)
	}
	if code, body := s.api(t, "GET", "/api/v1/streams/"+name, apiToken); code != 200 || !strings.Contains(string(body), `"pull":{`) || !strings.Contains(string(body), `"state":"live"`) {
		t.Errorf("stream info lacks the pull's state: %d %s", code, body)
	}
	var st apiStream
	waitFor(t, 10*time.Second, "stream in GET /api/v1/streams", func() bool {
		for _, x := range s.streams(t) {
			if x.Name == name && x.State == "live" {
				st = x
				return true
			}
		}
		return false
	})
	if st.Protocol != "pull-rtmp" || len(st.Tracks) != 2 {
		t.Errorf("stream %+v", st)
	}
	waitForPlaylist(t, s, name, 2)
	const dur = 3 * time.Second
	checkDecode(t, "HLS of a pull", ffmpegDecode(t, s.HLSURL(name), dur), dur, true, true)

	// The source dies and comes back: the pull reconnects by itself.
	src.Kill()
	bo := s.waitPull(t, name, "backoff", 15*time.Second)
	if bo.LastError == "" || bo.NextAttempt == nil {
		t.Errorf("backoff without error or next attempt: %+v", bo)
	}
	rtmpListen(t, ctx, port)
	if p := s.waitPull(t, name, "live", 20*time.Second); p.Connects != 2 {
		t.Errorf("connects %d, want 2", p.Connects)
	}
	waitFor(t, 10*time.Second, "stream live again", func() bool {
		x, ok := s.stream(t, name)
		return ok && x.State == "live"
	})
	checkDecode(t, "HLS after the reconnect", ffmpegDecode(t, s.HLSURL(name), 2*time.Second), 2*time.Second, true, true)

	// A pull started and stopped through the API.
	port2 := testutil.FreePort(t)
	rtmpListen(t, ctx, port2)
	const name2 = "live/apipull"
	code, b := s.apiBody(t, http.MethodPost, "/api/v1/pulls",
		fmt.Sprintf(`{"name":%q,"url":"rtmp://127.0.0.1:%d/live/x"}`, name2, port2))
	if code != http.StatusCreated {
		t.Fatalf("POST /api/v1/pulls: %d %s", code, b)
	}
	if code, b := s.apiBody(t, http.MethodPost, "/api/v1/pulls", fmt.Sprintf(`{"name":%q,"url":"rtmp://127.0.0.1:1/a/b"}`, name2)); code != http.StatusConflict {
		t.Errorf("duplicate POST: %d %s", code, b)
	}
	s.waitPull(t, name2, "live", 20*time.Second)
	waitFor(t, 10*time.Second, "API pull's stream live", func() bool {
		x, ok := s.stream(t, name2)
		return ok && x.State == "live" && x.Protocol == "pull-rtmp"
	})
	code, b = s.api(t, http.MethodGet, "/api/v1/pulls", apiToken)
	var list []apiPull
	if code != http.StatusOK || json.Unmarshal(b, &list) != nil || len(list) != 2 {
		t.Errorf("GET /api/v1/pulls: %d %s", code, b)
	}
	if code, b := s.api(t, http.MethodDelete, "/api/v1/pulls/"+name2, apiToken); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, b)
	}
	if _, code := s.pull(t, name2); code != http.StatusNotFound {
		t.Errorf("stopped pull: GET %d, want 404", code)
	}
	waitFor(t, 10*time.Second, "stopped pull's stream to end", func() bool {
		_, ok := s.stream(t, name2)
		return !ok
	})
	// The configured pull kept running.
	if p, _ := s.pull(t, name); p.State != "live" {
		t.Errorf("configured pull %+v", p)
	}
}
