package recorder

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
	"github.com/mps-dev/mps/test/testutil"
)

func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/recorder.", "github.com/mps-dev/mps/stream."))
}

// env is a hub with a recorder on a temporary folder.
type env struct {
	hub    *stream.Hub
	rec    *Recorder
	bus    *events.Bus
	dir    string
	media  *testmedia.Media
	closed bool
}

func newEnv(t *testing.T, seconds int, cfg Config) *env {
	t.Helper()
	e := &env{media: testmedia.MakeMedia(t, seconds), bus: events.NewBus(0)}
	e.hub = stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: slog.New(slog.DiscardHandler)})
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	e.dir = cfg.Dir
	cfg.Hub, cfg.Events, cfg.Logger = e.hub, e.bus, slog.New(slog.DiscardHandler)
	var err error
	if e.rec, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.closed {
		return
	}
	e.closed = true
	e.rec.Close()
	e.hub.Close()
}

func recordAll(string) (Options, bool) { return Options{}, true }

// publish pushes the media (unpaced unless pace) as one session and ends it.
func (e *env) publish(t *testing.T, name string, pace bool) {
	t.Helper()
	tracks := []*stream.Track{e.media.Video, e.media.Audio}
	p, err := e.hub.Publish(name, tracks, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.media.Publish(t, p, tracks, pace, 0)
	p.Close(nil)
	s, err := e.hub.Get(name)
	if err == nil {
		select {
		case <-s.Ended():
		case <-time.After(5 * time.Second):
			t.Fatal("stream did not end")
		}
	}
}

// waitEvent waits for an event of typ.
func (e *env) waitEvent(t *testing.T, typ string, n int) []events.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.bus.Recent(0, func(ev events.Event) bool { return ev.Type == typ })
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d %s events, got %d: %v", n, typ, len(got), e.bus.Recent(0, nil))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe returns ffprobe's format duration of a file and its video frame count.
func probe(t *testing.T, path string) (seconds float64, frames int) {
	t.Helper()
	testutil.RequireTools(t, "ffprobe")
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "format=duration:stream=nb_read_frames", "-of", "default=nw=1:nk=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	// Frames come first (an HLS playlist repeats them for its program),
	// the duration last.
	lines := strings.Fields(string(out))
	if len(lines) < 2 {
		t.Fatalf("ffprobe %s: %q", path, out)
	}
	frames, _ = strconv.Atoi(lines[0])
	seconds, _ = strconv.ParseFloat(lines[len(lines)-1], 64)
	return seconds, frames
}

func TestRolloverIsContinuous(t *testing.T) {
	e := newEnv(t, 5, Config{Rollover: 2 * time.Second, Rule: recordAll})
	e.publish(t, "live/roll", false)
	e.waitEvent(t, events.RecordingFinished, 1)

	page, err := e.rec.List(Filter{Stream: "live/roll"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Recordings) != 3 {
		t.Fatalf("want 3 archives for 5 s with 2 s rollover, got %d", len(page.Recordings))
	}
	frames := 0
	for i, rec := range page.Recordings {
		if rec.State != StateComplete || rec.Seq != i+1 || rec.Session != page.Recordings[0].Session {
			t.Fatalf("archive %d: %+v", i, rec)
		}
		if i > 0 && !rec.Start.Equal(page.Recordings[i-1].End) {
			t.Fatalf("archive %d starts at %s, the previous one ends at %s", i, rec.Start, page.Recordings[i-1].End)
		}
		d, n := probe(t, filepath.Join(e.dir, rec.Path))
		if diff := d - rec.Duration; diff < -0.05 || diff > 0.05 {
			t.Fatalf("archive %d: ffprobe says %.3f s, metadata %.3f s", i, d, rec.Duration)
		}
		frames += n
	}
	if frames != len(e.media.Frames) {
		t.Fatalf("archives hold %d frames, %d were published", frames, len(e.media.Frames))
	}
	fin := e.waitEvent(t, events.RecordingFinished, 1)[0]
	if fin.Data["files"] != 3 || fin.Stream != "live/roll" || fin.Data["id"] != page.Recordings[2].ID {
		t.Fatalf("finished event: %+v", fin)
	}
	var total int64
	for _, rec := range page.Recordings {
		total += rec.Size
	}
	if st := e.rec.Stats(); st.Archives != 3 || st.Writing != 0 || st.BytesWritten != uint64(total) || st.Failures != 0 {
		t.Fatalf("stats %+v, want 3 archives of %d bytes, none writing", st, total)
	}
}

// TestCrashedArchiveIsRepaired cuts an archive in the middle of a fragment,
// as a kill -9 during a write would, and starts a new recorder on it.
func TestCrashedArchiveIsRepaired(t *testing.T) {
	e := newEnv(t, 4, Config{Rule: recordAll})
	e.publish(t, "live/crash", false)
	e.waitEvent(t, events.RecordingFinished, 1)
	rec := e.rec.List
	page, _ := rec(Filter{})
	if len(page.Recordings) != 1 {
		t.Fatalf("want 1 archive, got %d", len(page.Recordings))
	}
	r0 := page.Recordings[0]
	e.close()

	path := filepath.Join(e.dir, r0.Path)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, info.Size()-5000); err != nil {
		t.Fatal(err)
	}
	r0.State = StateRecording
	if err := writeSidecar(path+".json", r0); err != nil {
		t.Fatal(err)
	}

	e2 := newEnv(t, 1, Config{Dir: e.dir})
	got, err := e2.rec.Get(r0.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateComplete || !got.Repaired {
		t.Fatalf("after restart: state %s repaired %v", got.State, got.Repaired)
	}
	if got.Duration >= r0.Duration || got.Duration < r0.Duration-1.1 {
		t.Fatalf("repaired duration %.3f, was %.3f before the cut", got.Duration, r0.Duration)
	}
	d, _ := probe(t, path)
	if diff := d - got.Duration; diff < -0.05 || diff > 0.05 {
		t.Fatalf("ffprobe says %.3f s, metadata %.3f s", d, got.Duration)
	}
	testutil.RequireTools(t, "ffmpeg")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("repaired archive does not decode cleanly: %v\n%s", err, out)
	}
}

func TestExportCutsOnKeyframes(t *testing.T) {
	e := newEnv(t, 6, Config{Rule: recordAll})
	e.publish(t, "live/x", false)
	e.waitEvent(t, events.RecordingFinished, 1)
	page, _ := e.rec.List(Filter{Stream: "live/x"})
	r0 := page.Recordings[0]

	from := r0.Start.Add(1500 * time.Millisecond)
	to := r0.Start.Add(4200 * time.Millisecond)
	x, err := e.rec.Export("live/x", "", from, to)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	// Keyframes are 1 s apart: the cut is at the one at 1 s.
	if got := x.Start.Sub(r0.Start); got != time.Second {
		t.Fatalf("export starts %s into the archive, want the keyframe at 1s", got)
	}
	out := filepath.Join(t.TempDir(), "x.mp4")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	n, err := x.WriteTo(f)
	_ = f.Close()
	if err != nil || n != x.Size {
		t.Fatalf("wrote %d bytes (said %d): %v", n, x.Size, err)
	}
	d, frames := probe(t, out)
	if want := x.End.Sub(x.Start).Seconds(); d < want-0.05 || d > want+0.05 || d < 3.1 || d > 3.3 {
		t.Fatalf("export lasts %.3f s, want %.3f (3.2)", d, want)
	}
	if frames != 96 {
		t.Fatalf("export has %d frames, want 96", frames)
	}

	if _, err := e.rec.Export("live/x", "", to, from); !errors.Is(err, ErrInvalidRange) {
		t.Fatalf("end before start: %v", err)
	}
	if _, err := e.rec.Export("live/none", "", from, to); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("unknown stream: %v", err)
	}
	if _, err := e.rec.Export("live/x", "", to.Add(time.Hour), to.Add(2*time.Hour)); !errors.Is(err, ErrNothingInRange) {
		t.Fatalf("empty range: %v", err)
	}
	if _, err := e.rec.Playback("../../etc", "", from, to); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("traversal: %v", err)
	}
}

func TestRetentionDeletesOldestFirst(t *testing.T) {
	e := newEnv(t, 2, Config{Rule: recordAll})
	for i := range 4 {
		e.publish(t, "live/ret", false)
		e.waitEvent(t, events.RecordingFinished, i+1)
	}
	page, _ := e.rec.List(Filter{Stream: "live/ret"})
	if len(page.Recordings) != 4 {
		t.Fatalf("want 4 archives, got %d", len(page.Recordings))
	}
	keep := page.Recordings[2:]
	e.rec.cfg.Retention.MaxSize = keep[0].Size + keep[1].Size
	e.rec.applyRetention(time.Now())

	page, _ = e.rec.List(Filter{Stream: "live/ret"})
	if len(page.Recordings) != 2 || page.Recordings[0].ID != keep[0].ID || page.Recordings[1].ID != keep[1].ID {
		t.Fatalf("retention kept %+v, want the 2 newest", page.Recordings)
	}
	deleted := e.waitEvent(t, events.RecordingDeleted, 2)
	for _, ev := range deleted {
		if ev.Data["reason"] != "retention" {
			t.Fatalf("deleted event: %+v", ev)
		}
		if _, err := os.Stat(filepath.Join(e.dir, ev.Data["path"].(string))); !os.IsNotExist(err) {
			t.Fatalf("deleted archive still there: %v", err)
		}
	}
	for _, rec := range keep {
		if _, err := os.Stat(filepath.Join(e.dir, rec.Path)); err != nil {
			t.Fatalf("kept archive gone: %v", err)
		}
	}
}

// TestWriteErrorRecovers blocks the archive folder with a file: the
// recording fails with an event, and resumes once the folder can be made.
func TestWriteErrorRecovers(t *testing.T) {
	e := newEnv(t, 8, Config{Rule: recordAll, RetryInterval: 300 * time.Millisecond})
	blocker := filepath.Join(e.dir, "live")
	if err := os.WriteFile(blocker, []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.publish(t, "live/err", true)
	}()
	failed := e.waitEvent(t, events.RecordingFailed, 1)[0]
	if !strings.Contains(failed.Data["error"].(string), "not a directory") {
		t.Fatalf("failed event: %+v", failed)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	resumed := e.waitEvent(t, events.RecordingResumed, 1)[0]
	wg.Wait()
	e.waitEvent(t, events.RecordingFinished, 1)
	rec, err := e.rec.Get(resumed.Data["id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateComplete || rec.Duration < 4 {
		t.Fatalf("resumed archive: %+v", rec)
	}
}

type ladderOf map[string]string

func (l ladderOf) SourceOf(rendition string) (string, bool) {
	src, ok := l[rendition]
	return src, ok
}

// TestRenditionsAndHLSFormat records a source and one of its renditions
// as HLS folders, started and stopped through the API, with finalize on.
func TestRenditionsAndHLSFormat(t *testing.T) {
	e := newEnv(t, 3, Config{
		Format:   FormatHLS,
		Finalize: true,
		Ladders:  ladderOf{"live/src/720p": "live/src", "live/src/480p": "live/src"},
	})
	tracks := func() []*stream.Track { return []*stream.Track{e.media.Video, e.media.Audio} }
	src, err := e.hub.Publish("live/src", tracks(), stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.StartRecording("live/none", Options{}); !errors.Is(err, ErrNoStream) {
		t.Fatalf("unknown stream: %v", err)
	}
	if _, err := e.rec.StartRecording("live/src", Options{Renditions: []string{"all", "720p"}}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("all with another rendition: %v", err)
	}
	st, err := e.rec.StartRecording("live/src", Options{Renditions: []string{"source", "720p"}})
	if err != nil || !st.Recording || st.Trigger != "api" || st.Format != FormatHLS {
		t.Fatalf("start: %+v %v", st, err)
	}
	var pubs []*stream.Publisher
	for _, name := range []string{"live/src/720p", "live/src/480p"} {
		p, err := e.hub.Publish(name, tracks(), stream.PublishOptions{Protocol: "test"})
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
	}
	var wg sync.WaitGroup
	for _, p := range append(pubs, src) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.media.Publish(t, p, tracks(), false, 0)
		}()
	}
	wg.Wait()
	// Let the recorder drain its queues: both archives hold all but the
	// held-back last frame.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := e.rec.Status("live/src")
		n := 0
		for _, cur := range st.Current {
			if cur.Duration >= 2.9 {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archives did not fill: %+v", st.Current)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.rec.StopRecording("live/src"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rec.StopRecording("live/src"); !errors.Is(err, ErrNotRecording) {
		t.Fatalf("second stop: %v", err)
	}
	for _, p := range append(pubs, src) {
		p.Close(nil)
	}
	page, _ := e.rec.List(Filter{Stream: "live/src"})
	got := map[string]Recording{}
	for _, rec := range page.Recordings {
		got[rec.Rendition] = rec
	}
	if len(page.Recordings) != 2 || got["source"].ID == "" || got["720p"].ID == "" {
		t.Fatalf("want the source and 720p recorded, got %+v", page.Recordings)
	}
	for _, rec := range got {
		if !strings.HasSuffix(rec.Path, "/index.m3u8") || rec.State != StateComplete {
			t.Fatalf("HLS recording: %+v", rec)
		}
		pl, err := os.ReadFile(filepath.Join(e.dir, rec.Path))
		if err != nil || !strings.Contains(string(pl), "#EXT-X-ENDLIST") || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") {
			t.Fatalf("playlist %s: %v\n%s", rec.Path, err, pl)
		}
		d, frames := probe(t, filepath.Join(e.dir, rec.Path))
		if frames != len(e.media.Frames) || d < 2.9 || d > 3.1 {
			t.Fatalf("%s plays %.3f s with %d frames, want 3 s and %d", rec.Path, d, frames, len(e.media.Frames))
		}
	}
	// Finalize runs in the background.
	waitFinalized := func(id string) Recording {
		deadline := time.Now().Add(10 * time.Second)
		for {
			rec, err := e.rec.Get(id)
			if err == nil && rec.Finalized != "" {
				return rec
			}
			if time.Now().After(deadline) {
				t.Fatalf("recording %s not finalized: %+v %v", id, rec, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	rec := waitFinalized(got["source"].ID)
	if p, err := e.rec.ArchiveFile(rec.ID); err != nil || p != filepath.Join(e.dir, rec.Finalized) {
		t.Fatalf("archive file %q %v, want the finalized MP4", p, err)
	}
	if p, err := e.rec.ArchiveFile(got["720p"].ID); err != nil || (!strings.HasSuffix(p, "/index.m3u8") && !strings.HasSuffix(p, ".faststart.mp4")) {
		t.Fatalf("archive file of an HLS recording: %q %v", p, err)
	}
	d, frames := probe(t, filepath.Join(e.dir, rec.Finalized))
	if frames != len(e.media.Frames) || d < 2.9 || d > 3.1 {
		t.Fatalf("finalized MP4 plays %.3f s with %d frames", d, frames)
	}
	dl, err := e.rec.OpenDownload(rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Name != filepath.Base(rec.Finalized) {
		t.Fatalf("download serves %s, want the finalized MP4", dl.Name)
	}
	_ = dl.File.Close()

	if err := e.rec.Delete(rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, filepath.Dir(rec.Path))); !os.IsNotExist(err) {
		t.Fatalf("deleted HLS folder still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, rec.Finalized)); !os.IsNotExist(err) {
		t.Fatalf("deleted finalized MP4 still there: %v", err)
	}
	if err := e.rec.Delete(rec.ID); !errors.Is(err, ErrNoRecording) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestReconnectWithNewCodecContinuesTheSession publishes again within the
// grace period with another picture size (new codec parameters arrive as a
// new session): the recording session goes on in a new archive.
func TestReconnectWithNewCodecContinuesTheSession(t *testing.T) {
	e := newEnv(t, 2, Config{Rule: recordAll})
	e.hub.Close()
	e.hub = stream.NewHub(stream.HubConfig{GracePeriod: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	e.rec.Close()
	var err error
	if e.rec, err = New(Config{Hub: e.hub, Dir: e.dir, Rule: recordAll, Events: e.bus, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	big := testmedia.MakeSizedMedia(t, 2, "640x360", "-g", "30")
	for _, m := range []*testmedia.Media{e.media, big} {
		tracks := []*stream.Track{m.Video, m.Audio}
		p, err := e.hub.Publish("live/re", tracks, stream.PublishOptions{Protocol: "test"})
		if err != nil {
			t.Fatal(err)
		}
		m.Publish(t, p, tracks, false, 0)
		e.waitEvent(t, events.RecordingStarted, 1)
		p.Close(nil)
	}
	e.waitEvent(t, events.RecordingFileCompleted, 1)
	if _, err := e.rec.StopRecording("live/re"); err != nil {
		t.Fatal(err)
	}
	page, _ := e.rec.List(Filter{Stream: "live/re"})
	if len(page.Recordings) != 2 {
		t.Fatalf("want 2 archives, got %+v", page.Recordings)
	}
	a, b := page.Recordings[0], page.Recordings[1]
	if a.Session != b.Session || a.Seq != 1 || b.Seq != 2 {
		t.Fatalf("archives are not one session: %+v %+v", a, b)
	}
	if a.Tracks[0].Width != 320 || b.Tracks[0].Width != 640 {
		t.Fatalf("picture sizes %d and %d, want 320 then 640", a.Tracks[0].Width, b.Tracks[0].Width)
	}
	if started := e.bus.Recent(0, func(ev events.Event) bool { return ev.Type == events.RecordingStarted }); len(started) != 1 {
		t.Fatalf("a reconnect must not start a new recording: %d started events", len(started))
	}
}
