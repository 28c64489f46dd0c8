package liveqc

import (
	"log/slog"
	"math"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testts"
	"github.com/mps-dev/mps/test/testutil"
	"github.com/mps-dev/mps/vod"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/liveqc."))
}

// alerts collects qc.alert events.
type alerts struct {
	mu  sync.Mutex
	got []events.Event
}

func (a *alerts) Publish(e events.Event) {
	a.mu.Lock()
	a.got = append(a.got, e)
	a.mu.Unlock()
}

func (a *alerts) find(typ string) (events.Event, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.got {
		if e.Type == events.QCAlert && e.Data["type"] == typ {
			return e, true
		}
	}
	return events.Event{}, false
}

func (a *alerts) all() []events.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]events.Event(nil), a.got...)
}

func setup(t *testing.T) (*Manager, *stream.Hub, *alerts) {
	t.Helper()
	lb := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: log})
	a := &alerts{}
	m := New(Config{Hub: hub, Events: a, Logger: log})
	t.Cleanup(func() {
		m.Close()
		hub.Close()
		if t.Failed() {
			t.Logf("log:\n%s", testutil.Tail(lb.String(), 40))
		}
	})
	return m, hub, a
}

func waitStream(t *testing.T, hub *stream.Hub, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := hub.Get(name); err == nil && st.Session() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not live", name)
}

// TestAlertsAsProblemsHappen watches a live stream with 2 s of black video
// at 3 s and 2 s of silence at 6 s: each comes as a qc.alert with its
// times, while the stream plays on.
func TestAlertsAsProblemsHappen(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	ts, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-vf", "drawbox=color=black:t=fill:enable='between(t,3,5)'", "-af", "volume=enable='between(t,6,8)':volume=0",
		"-t", "11", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-f", "mpegts", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	m, hub, a := setup(t)
	testts.Publish(t, hub, "live/qc", ts)
	waitStream(t, hub, "live/qc")
	if err := m.Start("live/qc", vod.QCParams{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, black := a.find(vod.QCIssueBlack)
		_, silence := a.find(vod.QCIssueSilence)
		if black && silence {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts after 20 s: %+v", a.all())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range []struct {
		typ        string
		start, end float64
	}{{vod.QCIssueBlack, 3, 5}, {vod.QCIssueSilence, 6, 8}} {
		e, _ := a.find(c.typ)
		s, _ := e.Data["start"].(float64)
		en, _ := e.Data["end"].(float64)
		if math.Abs(s-c.start) > 0.5 || math.Abs(en-c.end) > 0.5 || e.Stream != "live/qc" || e.Data["severity"] != vod.SeverityWarning {
			t.Errorf("%s alert %+v, want %v-%v s", c.typ, e, c.start, c.end)
		}
	}
	if !m.Running("live/qc") {
		t.Error("monitor stopped")
	}
	if err := m.Stop("live/qc"); err != nil {
		t.Fatal(err)
	}
	for _, e := range a.all() {
		if ty := e.Data["type"]; ty != vod.QCIssueBlack && ty != vod.QCIssueSilence {
			t.Errorf("unexpected alert %+v", e)
		}
	}
}

// TestMissingTrackAlert publishes video only: the missing audio is
// reported when the session starts.
func TestMissingTrackAlert(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	ts, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "3",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-f", "mpegts", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	m, hub, a := setup(t)
	testts.Publish(t, hub, "live/mute", ts)
	waitStream(t, hub, "live/mute")
	if err := m.Start("live/mute", vod.QCParams{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if e, ok := a.find(vod.QCIssueMissingAudio); ok {
			if e.Data["severity"] != vod.SeverityError {
				t.Errorf("missing audio alert %+v", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no missing-audio alert: %+v", a.all())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := m.Start("live/none", vod.QCParams{}); err == nil {
		t.Error("Start on a missing stream succeeded")
	}
}
