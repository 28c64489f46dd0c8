package web

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mps-dev/mps/transcoder"
)

func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("metrics lack %s:\n%s", series, text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, "", nil)
	text := body(t, f.do(t, request{path: "/metrics"}))
	if v := metricValue(t, text, "mps_streams"); v != 0 {
		t.Errorf("mps_streams = %v on an empty hub", v)
	}

	f.publish(t, "live/cam1")
	r, err := f.hub.Get("live/cam1")
	if err != nil {
		t.Fatal(err)
	}
	reader, err := r.NewReader("player", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	r.AddBytesOut(5000)

	resp := f.do(t, request{path: "/metrics"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	text = body(t, resp)
	checks := map[string]func(float64) bool{
		`mps_streams`:                       func(v float64) bool { return v == 1 },
		`mps_stream_up{stream="live/cam1"}`: func(v float64) bool { return v == 1 },
		`mps_stream_bitrate_bits_per_second{stream="live/cam1"}`: func(v float64) bool { return v > 200_000 && v < 300_000 },
		`mps_stream_frames_per_second{stream="live/cam1"}`:       func(v float64) bool { return v > 29 && v < 31 },
		`mps_stream_readers{stream="live/cam1"}`:                 func(v float64) bool { return v == 1 },
		`mps_stream_bytes_in_total{stream="live/cam1"}`:          func(v float64) bool { return v == 31_000 },
		`mps_stream_bytes_out_total{stream="live/cam1"}`:         func(v float64) bool { return v == 5000 },
		`mps_stream_uptime_seconds{stream="live/cam1"}`:          func(v float64) bool { return v >= 0 },
		`go_goroutines`:    func(v float64) bool { return v > 0 },
		`process_open_fds`: func(v float64) bool { return v > 0 },
	}
	for series, ok := range checks {
		if v := metricValue(t, text, series); !ok(v) {
			t.Errorf("%s = %v", series, v)
		}
	}
}

// Each server owns its registry: two in one process do not collide.
func TestTwoServersHaveTheirOwnMetrics(t *testing.T) {
	a, b := newFixture(t, "", nil), newFixture(t, "", nil)
	a.publish(t, "live/a")
	if v := metricValue(t, body(t, a.do(t, request{path: "/metrics"})), "mps_streams"); v != 1 {
		t.Errorf("server a: mps_streams = %v", v)
	}
	if v := metricValue(t, body(t, b.do(t, request{path: "/metrics"})), "mps_streams"); v != 0 {
		t.Errorf("server b: mps_streams = %v", v)
	}
}

// A running ladder's FFmpeg progress shows in /metrics, and goes away with
// the ladder.
func TestLadderMetrics(t *testing.T) {
	ladders := newFakeLadders()
	ladders.running["live/cam1"] = transcoder.LadderInfo{
		Source: "live/cam1", Template: "default", State: transcoder.StateRunning, Restarts: 2,
		Progress: transcoder.Progress{Frame: 900, FPS: 30.5, Speed: 1.02, DropFrames: 3, DupFrames: 1},
	}
	f := newFixtureConfig(t, Config{Ladders: ladders}, nil)
	text := body(t, f.do(t, request{path: "/metrics"}))
	labels := `{stream="live/cam1",template="default"}`
	for series, want := range map[string]float64{
		"mps_ladder_up":                      1,
		"mps_ladder_speed_ratio":             1.02,
		"mps_ladder_frames_per_second":       30.5,
		"mps_ladder_frames_total":            900,
		"mps_ladder_dropped_frames_total":    3,
		"mps_ladder_duplicated_frames_total": 1,
		"mps_ladder_restarts_total":          2,
	} {
		if v := metricValue(t, text, series+labels); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	if err := ladders.Stop("live/cam1"); err != nil {
		t.Fatal(err)
	}
	if text := body(t, f.do(t, request{path: "/metrics"})); strings.Contains(text, "mps_ladder_up{") {
		t.Errorf("ladder series remain after the ladder stopped:\n%s", text)
	}
}
