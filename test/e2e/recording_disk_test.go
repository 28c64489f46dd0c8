package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// TestRecordingDiskFull records onto a small tmpfs that fills up: the
// recording stops with a recording.failed event while the live stream goes
// on and mps stays up; once space is freed, recording resumes by itself in
// a new archive.
func TestRecordingDiskFull(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs for the recordings")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): %s", err, out)
	}
	// Cleanups run last-in first-out: this one runs after the server's
	// (registered later) and before t.TempDir's removal.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	// A ballast file takes most of the space, so the recording fills the
	// rest in a few seconds; removing it frees space even while mps holds
	// the failed archive open.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, bytes.Repeat([]byte{0x55}, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "rec")
	s := startServer(t, serverOptions{Config: recordingConfig(dir, recRuleAll)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/disk"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
	mediaURL, _ := waitForPlaylist(t, s, name, 1)

	failed := waitEvent(t, s, 0, "recording.failed", name, 60*time.Second)
	var st syscall.Statfs_t
	syscall.Statfs(mnt, &st)
	t.Logf("failed: %v; %d bytes free on the tmpfs", failed, st.Bavail*uint64(st.Bsize))
	if failed.str("error") == "" {
		t.Errorf("recording.failed event without an error: %v", failed)
	}
	if lines := s.Log.Lines("type=recording.failed", "stream="+name); len(lines) == 0 {
		t.Errorf("no log line for recording.failed")
	}
	recs := s.recordings(t, name)
	for _, r := range recs {
		t.Logf("archive: %v", r)
	}
	if !anyRecording(recs, "failed") {
		t.Errorf("no archive in state failed after recording.failed: %v", recs)
	}
	// The live stream goes on, and mps is up.
	pl, err := fetchMediaPlaylist(ctx, mediaURL)
	if err != nil {
		t.Fatal(err)
	}
	pl = waitAdvance(t, mediaURL, pl.Position()+2000, 20*time.Second)
	if pl.Endlist {
		t.Errorf("the live playlist ended when the disk filled:\n%s", pl.Raw)
	}
	if code, _ := httpGet(t, s.URL("/healthz")); code != http.StatusOK {
		t.Errorf("/healthz with a full disk: %d", code)
	}
	if !pub.Running() {
		t.Fatalf("the publisher was disconnected when the disk filled: %v\n%s", pub.err, testutil.Tail(pub.Stderr.String(), 10))
	}

	// Free space: recording resumes by itself, in a new archive that grows.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	resumed := waitEvent(t, s, failed.Seq, "recording.resumed", name, 60*time.Second)
	t.Logf("resumed: %v", resumed)
	var cur apiRecording
	recs = waitRecordings(t, s, name, 20*time.Second, "a new archive being written", func(rs []apiRecording) bool {
		for _, r := range rs {
			if r.State == "recording" && r.Path != failed.str("path") && fileSize(recFile(dir, r)) > 0 {
				cur = r
				return true
			}
		}
		return false
	})
	sz1 := fileSize(recFile(dir, cur))
	waitFor(t, 10*time.Second, "the new archive to grow", func() bool { return fileSize(recFile(dir, cur)) > sz1 })
	pl = waitAdvance(t, mediaURL, pl.Position()+1000, 20*time.Second)
	if pl.Endlist {
		t.Errorf("the live playlist ended:\n%s", pl.Raw)
	}
	pub.Stop()

	// The new archive completes and plays.
	recs = waitRecordingsDone(t, s, name, 2, 30*time.Second)
	for _, r := range recs {
		t.Logf("archive: %v", r)
		if r.ID == cur.ID {
			if r.State != "complete" {
				t.Errorf("the archive written after the resume ended in state %q (%s), want complete", r.State, r.Error)
			}
			dec := ffmpegDecode(t, recFile(dir, r), time.Minute)
			if dec.Err != nil || dec.VideoFrames < int(r.Duration*recFPS)-3 {
				t.Errorf("the resumed archive does not play: %v, %d frames for %.2f s\n%s", dec.Err, dec.VideoFrames, r.Duration, testutil.Tail(dec.Stderr, 10))
			}
		}
		if r.State == "failed" {
			// What was written before the disk filled plays up to its last
			// complete fragment.
			dec := ffmpegDecode(t, recFile(dir, r), time.Minute)
			t.Logf("failed archive: %d frames, %.2f s of audio; %v %s", dec.VideoFrames, dec.AudioSeconds, dec.Err, strings.TrimSpace(testutil.Tail(dec.Stderr, 3)))
			if dec.VideoFrames == 0 {
				t.Errorf("the archive that hit the full disk does not play")
			}
		}
	}
}
