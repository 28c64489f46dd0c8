package transcoder

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// scriptFFmpeg writes a shell script that stands in for ffmpeg.
func scriptFFmpeg(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// newSmallQueueEnv is a test env whose hub drops a reader 48 items behind.
func newSmallQueueEnv(t *testing.T, ffmpeg string) *testEnv {
	t.Helper()
	checkLeaks(t)
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: time.Second, ReaderQueue: 1, GOPCacheLimit: 32, Logger: log})
	m := &Manager{Hub: hub, Logger: log, FFmpeg: ffmpeg,
		RestartBackoffMin: 100 * time.Millisecond, RestartBackoffMax: time.Second}
	t.Cleanup(func() {
		m.Close()
		hub.Close()
		if t.Failed() || os.Getenv("TRANSCODER_TEST_LOGS") != "" {
			t.Logf("logs:\n%s", testutil.Tail(logs.String(), 80))
		}
	})
	return &testEnv{hub: hub, m: m, logs: logs}
}

// TestChildStopsReading: a child that stops reading its input gets the
// ladder's reader dropped by the hub (never the source), and is killed
// and restarted once it has not read for stallTimeout.
func TestChildStopsReading(t *testing.T) {
	med := testMediaFor(t)
	old := stallTimeout
	stallTimeout = 4 * time.Second
	t.Cleanup(func() { stallTimeout = old })
	env := newSmallQueueEnv(t, scriptFFmpeg(t, "exec sleep 600"))
	src := startSource(t, env.hub, "live/stall", med)
	watcher := collect(t, env.hub, "live/stall")
	if err := env.m.Start("live/stall", testTemplate()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the hung child to be killed and restarted", func() bool {
		i, _ := env.m.Info("live/stall")
		return i.Restarts >= 1 && strings.Contains(i.LastError, "stopped reading")
	})
	if len(env.logs.Lines("reader dropped", "kind=transcoder")) == 0 {
		t.Error("the hub did not drop the ladder's reader")
	}
	if len(env.logs.Lines("reader dropped", "kind=test")) != 0 || src.pub.Stream().State() != stream.StateLive {
		t.Error("the source or its other reader suffered")
	}
	if before := watcher.lastDTS(); before < 0 {
		t.Error("the source's reader got nothing")
	}
}

// TestReaderReattach: a child that stops reading for a while (but less
// than stallTimeout) makes the hub drop the ladder's reader; the ladder
// attaches again and keeps the same child.
func TestReaderReattach(t *testing.T) {
	med := testMediaFor(t)
	env := newSmallQueueEnv(t, scriptFFmpeg(t, "sleep 8; exec cat >/dev/null"))
	startSource(t, env.hub, "live/slow", med)
	if err := env.m.Start("live/slow", testTemplate()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a reattach", func() bool { return len(env.logs.Lines("fell behind")) > 0 })
	i1, _ := env.m.Info("live/slow")
	// Still fed: the same child keeps running.
	time.Sleep(500 * time.Millisecond)
	i2, _ := env.m.Info("live/slow")
	if i1.PID == 0 || i2.PID != i1.PID || i2.Restarts != 0 {
		t.Errorf("child changed: %+v then %+v", i1, i2)
	}
}

// TestChildDiesWithParent kills (-9) a process that runs a ladder: its
// child must die too (Pdeathsig), even one that does not read its input
// (a real ffmpeg would also stop at the end of its input).
func TestChildDiesWithParent(t *testing.T) {
	if os.Getenv("MPS_TRANSCODER_HELPER") == "1" {
		runHelper(t)
		return
	}
	testutil.RequireTools(t, "ffmpeg")
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildDiesWithParent$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MPS_TRANSCODER_HELPER=1", "MPS_TRANSCODER_HELPER_FFMPEG="+scriptFFmpeg(t, "exec sleep 600"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testutil.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidc := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "FFMPEG_PID "); ok {
				n, _ := strconv.Atoi(s)
				pidc <- n
				return
			}
		}
		close(pidc)
	}()
	var pid int
	select {
	case pid = <-pidc:
	case <-time.After(waitTimeout):
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the helper reported no ffmpeg pid:\n%s", testutil.Tail(stderr.String(), 40))
	}
	// Should the child survive, do not leave it behind.
	t.Cleanup(func() {
		if !deadOrZombie(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, fmt.Sprintf("ffmpeg %d to die with its parent", pid), func() bool { return deadOrZombie(pid) })
}

// deadOrZombie: gone, or a zombie waiting for a reaper (init in a
// container may not reap).
func deadOrZombie(pid int) bool {
	if processGone(pid) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// runHelper runs a ladder and prints its child's pid, then waits to be
// killed.
func runHelper(t *testing.T) {
	med := testMediaFor(t)
	hub := stream.NewHub(stream.HubConfig{})
	m := &Manager{Hub: hub, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), FFmpeg: os.Getenv("MPS_TRANSCODER_HELPER_FFMPEG")}
	startSource(t, hub, "live/h", med)
	tpl := &Template{Name: "h", Rungs: []Rung{{Name: "90p", Video: Video{Height: 90, Preset: "ultrafast"}}}}
	if err := m.Start("live/h", tpl); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if i, _ := m.Info("live/h"); i.PID != 0 {
			fmt.Printf("FFMPEG_PID %d\n", i.PID)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(waitTimeout) // killed before this ends
}
