package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// The recorder, seen from outside: config rules, ?record=1 and the API
// start recordings of live streams into MP4 archives; the archives play in
// ffmpeg, survive a SIGKILL, roll over without gaps, are deleted by
// retention, and are played back as HLS ranges, MP4 exports and downloads.

// checkArchiveMedia asserts that an archive file holds H.264 and AAC of
// about want seconds (within tol), with audio and video starting within
// 100 ms of each other, and that every frame of it decodes. It returns the
// ffprobe format duration.
func checkArchiveMedia(t *testing.T, what, file string, want, tol float64) float64 {
	t.Helper()
	m := probeMedia(t, file)
	v, okV := m.stream("video")
	a, okA := m.stream("audio")
	t.Logf("%s: ffprobe: format %s, duration %.3f s; video %s start %.3f; audio %s start %.3f", what, m.FormatName, m.Duration, v.CodecName, v.StartTime, a.CodecName, a.StartTime)
	if !strings.Contains(m.FormatName, "mp4") {
		t.Errorf("%s: ffprobe format %q, want mp4", what, m.FormatName)
	}
	if !okV || v.CodecName != "h264" {
		t.Errorf("%s: video stream %+v (present %v), want h264", what, v, okV)
	}
	if !okA || a.CodecName != "aac" {
		t.Errorf("%s: audio stream %+v (present %v), want aac", what, a, okA)
	}
	if d := absDiff(m.Duration, want); !(d <= tol) {
		t.Errorf("%s: duration %.3f s, want %.3f s within %.2f s", what, m.Duration, want, tol)
	}
	if okV && okA {
		if d := absDiff(v.StartTime, a.StartTime); !(d <= 0.100) {
			t.Errorf("%s: video starts at %.3f s and audio at %.3f s: %.0f ms apart, want <= 100 ms", what, v.StartTime, a.StartTime, d*1000)
		}
	}
	// Every frame decodes: ffmpeg runs with -xerror, and the frame count
	// matches the duration.
	dec := ffmpegDecode(t, file, 10*time.Minute)
	t.Logf("%s: decoded %d video frames (%s), %d audio frames (%.3f s of audio)", what, dec.VideoFrames, dec.VideoSize, dec.AudioFrames, dec.AudioSeconds)
	if dec.Err != nil {
		t.Errorf("%s: ffmpeg decode failed: %v\n%s", what, dec.Err, testutil.Tail(dec.Stderr, 20))
	}
	if lines := errorLines(dec.Stderr); len(lines) > 0 {
		t.Errorf("%s: ffmpeg reported decode errors:\n%s", what, testutil.Tail(strings.Join(lines, "\n"), 20))
	}
	if exp := m.Duration * recFPS; math.Abs(float64(dec.VideoFrames)-exp) > 3 {
		t.Errorf("%s: decoded %d video frames, want %.0f (%.3f s at %d fps) within 3", what, dec.VideoFrames, exp, m.Duration, recFPS)
	}
	if d := absDiff(dec.AudioSeconds, m.Duration); d > 0.15 {
		t.Errorf("%s: decoded %.3f s of audio in a %.3f s file", what, dec.AudioSeconds, m.Duration)
	}
	if dec.VideoSize != "640x360" {
		t.Errorf("%s: decoded picture size %q, want 640x360", what, dec.VideoSize)
	}
	return m.Duration
}

// TestRecordingRule records a 30 s push that a config rule selects: the
// archive is H.264 + AAC, lasts what was pushed, its tracks start together
// and every frame decodes.
func TestRecordingRule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, serverOptions{Config: recordingConfig(dir, recRuleAll)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/rec30"
	const pushed = 30 * time.Second
	tPub := time.Now()
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: pushed})

	recs := waitRecordings(t, s, name, 30*time.Second, "an archive being written", func(rs []apiRecording) bool {
		return anyRecording(rs, "recording")
	})
	t.Logf("while live: %v", recs)
	st, code, b := s.recStatus(t, name)
	if code != http.StatusOK || !st.Recording {
		t.Errorf("GET /api/v1/streams/%s/recording while the rule records: %d %s", name, code, b)
	} else if st.Trigger != "rule" {
		t.Errorf("recording status trigger %q, want rule: %s", st.Trigger, b)
	}

	if exited, err := pub.Wait(pushed + 30*time.Second); !exited || err != nil {
		t.Fatalf("publisher: exited %v, %v\n%s", exited, err, testutil.Tail(pub.Stderr.String(), 10))
	}
	recs = waitRecordingsDone(t, s, name, 1, 30*time.Second)
	tDone := time.Now()
	if len(recs) != 1 {
		t.Fatalf("a %v push with the default 1 h rollover gave %d archives, want 1: %v", pushed, len(recs), recs)
	}
	r := recs[0]
	t.Logf("archive: %v", r)
	if r.State != "complete" || r.Repaired || r.Error != "" {
		t.Errorf("archive state %q repaired %v error %q, want complete", r.State, r.Repaired, r.Error)
	}
	if r.Format != "fmp4" || r.Rendition != "source" || r.Stream != name {
		t.Errorf("archive format %q rendition %q stream %q, want fmp4, source, %s", r.Format, r.Rendition, r.Stream, name)
	}
	if d := absDiff(r.Duration, secs(pushed)); d > 0.5 {
		t.Errorf("API duration %.3f s, want %v within 0.5 s", r.Duration, pushed)
	}
	// The wall-clock times say when the media was pushed (ffmpeg -re sends
	// its first frame right away), so that a range request finds it.
	t.Logf("publisher started %s; archive %s .. %s", rfc(tPub), rfc(r.Start), rfc(r.End))
	if d := r.Start.Sub(tPub); d < -100*time.Millisecond || d > time.Second {
		t.Errorf("the archive's wall-clock start is %s, %v after the publisher started at %s; want 0..1 s", rfc(r.Start), d, rfc(tPub))
	}
	if d := r.End.Sub(tPub.Add(pushed)); d < -100*time.Millisecond || d > time.Second {
		t.Errorf("the archive's wall-clock end is %s, %v after the publisher started + %v (%s); want 0..1 s", rfc(r.End), d, pushed, rfc(tPub.Add(pushed)))
	}
	if d := r.End.Sub(tDone); d > 0 {
		t.Errorf("the archive's wall-clock end %s is %v after the API first showed it complete (%s)", rfc(r.End), d, rfc(tDone))
	}
	if wall := r.End.Sub(r.Start); absDiff(wall.Seconds(), r.Duration) > 1 {
		t.Errorf("API start %s and end %s are %v apart, but the duration is %.3f s", r.Start, r.End, wall, r.Duration)
	}
	file := recFile(dir, r)
	if got := fileSize(file); got != r.Size {
		t.Errorf("%s: %d bytes on disk, API says %d", file, got, r.Size)
	}
	if _, err := os.Stat(file + ".json"); err != nil {
		t.Logf("no sidecar %s.json (informational): %v", file, err)
	}
	checkArchiveMedia(t, "30 s archive", file, secs(pushed), 0.5)
}

// TestRecordingSIGKILL kills mps with SIGKILL while it records: what was
// written plays, and the next mps on the same folder repairs the archive.
func TestRecordingSIGKILL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, serverOptions{Config: recordingConfig(dir, recRuleAll)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/crash"
	t0 := time.Now()
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
	recs := waitRecordings(t, s, name, 30*time.Second, "an archive with data", func(rs []apiRecording) bool {
		return len(rs) > 0 && rs[0].State == "recording" && fileSize(recFile(dir, rs[0])) > 0
	})
	r := recs[0]
	file := recFile(dir, r)
	// Fragments are flushed at least every second: the file grows while
	// recording.
	sz1 := fileSize(file)
	time.Sleep(time.Until(t0.Add(6 * time.Second)))
	sz2 := fileSize(file)
	time.Sleep(time.Until(t0.Add(8 * time.Second)))
	frames := s.videoFramesReceived(t, name)
	tk := time.Now()
	s.kill()
	pushedWall := tk.Sub(t0).Seconds()
	pub.Stop()
	pushed := pushedWall
	if frames > 0 {
		pushed = float64(frames) / recFPS
	}
	sz3 := fileSize(file)
	t.Logf("killed mps %.2f s after the publisher started; mps had received %d video frames (%.2f s); file %s grew %d -> %d -> %d bytes",
		pushedWall, frames, float64(frames)/recFPS, r.Path, sz1, sz2, sz3)
	if !(sz2 > sz1 && sz3 > sz2) {
		t.Errorf("the archive did not grow during recording (%d, %d, %d bytes): fragments are not flushed every second", sz1, sz2, sz3)
	}

	// As the crash left it: it plays up to its last complete fragment.
	dec := ffmpegDecode(t, file, time.Minute)
	t.Logf("unrepaired archive: %d video frames, %.2f s of audio; ffmpeg: %v %s", dec.VideoFrames, dec.AudioSeconds, dec.Err, testutil.Tail(dec.Stderr, 5))
	if min := (pushed - 1.5) * recFPS; float64(dec.VideoFrames) < min {
		t.Errorf("the archive as left by SIGKILL decodes to %d video frames, want >= %.0f ((%.2f s pushed - 1.5 s) at 30 fps)", dec.VideoFrames, min, pushed)
	}

	// Restart on the same recordings folder: the archive is found and closed.
	s2 := startServer(t, serverOptions{Config: recordingConfig(dir, "")})
	recs = waitRecordings(t, s2, name, 30*time.Second, "the archive, repaired", func(rs []apiRecording) bool {
		return len(rs) > 0 && rs[0].State != "recording"
	})
	if len(recs) != 1 {
		t.Errorf("after the restart the API lists %d recordings of %s, want 1: %v", len(recs), name, recs)
	}
	r2 := recs[0]
	t.Logf("after restart: %v", r2)
	if r2.ID != r.ID || r2.Path != r.Path {
		t.Errorf("after the restart the archive is %s at %s, was %s at %s", r2.ID, r2.Path, r.ID, r.Path)
	}
	if r2.State != "complete" || !r2.Repaired {
		t.Errorf("after the restart the archive has state %q repaired %v, want complete and repaired", r2.State, r2.Repaired)
	}
	if d := absDiff(r2.Duration, pushed); d > 1.5 {
		t.Errorf("repaired archive: API duration %.3f s, want %.2f s (pushed before the kill) within 1.5 s", r2.Duration, pushed)
	}
	if got := fileSize(recFile(dir, r2)); got != r2.Size {
		t.Errorf("repaired archive: %d bytes on disk, API says %d", got, r2.Size)
	}
	checkArchiveMedia(t, "repaired archive", recFile(dir, r2), pushed, 1.5)
	// And it is still served.
	code, _, _ := getWith(t, s2.URL("/api/v1/recordings/"+url.PathEscape(r2.ID)+"/download"), map[string]string{"Authorization": "Bearer " + apiToken, "Range": "bytes=0-7"})
	if code != http.StatusPartialContent {
		t.Errorf("download of the repaired archive: %d, want 206", code)
	}
}

// TestRecordingRollover pushes a little over two rollover periods: three
// archives of one session, with no gap and no overlap between them. Its
// Events subtest checks the recording events of that session.
func TestRecordingRollover(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, serverOptions{Config: recordingConfig(dir, "  rollover: 4s\n"+recRuleAll)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/roll"
	const pushed = 10 * time.Second
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: pushed})
	if exited, err := pub.Wait(pushed + 30*time.Second); !exited || err != nil {
		t.Fatalf("publisher: exited %v, %v", exited, err)
	}
	recs := waitRecordingsDone(t, s, name, 1, 30*time.Second)
	for _, r := range recs {
		t.Logf("archive: %v", r)
	}
	if len(recs) != 3 {
		t.Fatalf("a %v push with rollover 4s gave %d archives, want 3", pushed, len(recs))
	}
	var total float64
	var videoPkts int
	var prevEnd float64
	var prevAudioEnd float64 // in session time: the sum of the earlier archives' durations + the file's time
	for i, r := range recs {
		if r.State != "complete" {
			t.Errorf("archive %d: state %q, want complete", i+1, r.State)
		}
		if r.Session != recs[0].Session || r.Seq != i+1 {
			t.Errorf("archive %d: session %q seq %d, want session %q seq %d", i+1, r.Session, r.Seq, recs[0].Session, i+1)
		}
		if i < 2 && (r.Duration < 4-0.05 || r.Duration > 4+secs(recGOP)+0.05) {
			t.Errorf("archive %d lasts %.3f s, want 4 s up to the next keyframe", i+1, r.Duration)
		}
		total += r.Duration
		file := recFile(dir, r)
		pkts := probePackets(t, file)
		v, a := spanOf(pkts, "video"), spanOf(pkts, "audio")
		videoPkts += v.Packets
		t.Logf("archive %d (%s): video %d packets %.4f..%.4f (first is keyframe: %v), audio %d packets %.4f..%.4f",
			i+1, r.Path, v.Packets, v.First, v.End, v.FirstKey, a.Packets, a.First, a.End)
		if !v.FirstKey {
			t.Errorf("archive %d does not start on a keyframe", i+1)
		}
		if d := absDiff(v.End-v.First, r.Duration); d > 0.05 {
			t.Errorf("archive %d: video spans %.3f s in the file, API says %.3f s", i+1, v.End-v.First, r.Duration)
		}
		if i > 0 {
			prev := recs[i-1]
			// Wall clock: this archive starts where the previous one ended.
			if gap := r.Start.Sub(prev.Start).Seconds() - prev.Duration; math.Abs(gap) > 0.02 {
				t.Errorf("archive %d starts %.3f s after archive %d's start + duration (gap > 0, overlap < 0); want 0", i+1, gap, i)
			}
			if gap := r.Start.Sub(prev.End); gap.Abs() > 40*time.Millisecond {
				t.Errorf("archive %d starts at %s, archive %d ends at %s: %v apart", i+1, rfc(r.Start), i, rfc(prev.End), gap)
			}
			// Media time, when the files carry the session's timeline.
			if v.First > 0.1 {
				if d := v.First - prevEnd; math.Abs(d) > 0.002 {
					t.Errorf("archive %d's first video timestamp is %.4f, archive %d's last + frame duration is %.4f: %+.4f s apart", i+1, v.First, i, prevEnd, d)
				}
			} else {
				t.Logf("archive %d's timestamps start at %.4f: each file has its own timeline, continuity is checked on the API's times and the frame count", i+1, v.First)
			}
		}
		// Audio is cut with the video and continues across the files
		// (one AAC frame is 21.3 ms: a gap or an overlap shows).
		offset := total - r.Duration
		if i > 0 {
			if d := offset + a.First - prevAudioEnd; math.Abs(d) > 0.003 {
				t.Errorf("archive %d's audio starts at %.4f s of the session, archive %d's audio ends at %.4f s: %+.4f s gap", i+1, offset+a.First, i, prevAudioEnd, d)
			}
		}
		prevAudioEnd = offset + a.End
		prevEnd = v.End
	}
	// Together the archives hold exactly what was pushed: no frame is
	// missing or doubled at the cuts.
	if exp := secs(pushed) * recFPS; math.Abs(float64(videoPkts)-exp) > 3 {
		t.Errorf("the 3 archives hold %d video frames, want %.0f (%v at 30 fps) within 3", videoPkts, exp, pushed)
	}
	if d := absDiff(total, secs(pushed)); d > 0.5 {
		t.Errorf("the 3 archives last %.3f s together, want %v within 0.5 s", total, pushed)
	}
	for i, r := range recs {
		dec := ffmpegDecode(t, recFile(dir, r), time.Minute)
		if dec.Err != nil || len(errorLines(dec.Stderr)) > 0 {
			t.Errorf("archive %d does not decode cleanly: %v\n%s", i+1, dec.Err, testutil.Tail(dec.Stderr, 10))
		}
		if exp := r.Duration * recFPS; math.Abs(float64(dec.VideoFrames)-exp) > 2 {
			t.Errorf("archive %d: decoded %d video frames, want %.0f", i+1, dec.VideoFrames, exp)
		}
	}

	t.Run("Events", func(t *testing.T) {
		evs := s.events(t, 0, "recording.", name)
		for _, e := range evs {
			t.Logf("event %v", e)
		}
		byType := map[string][]apiEvent{}
		for _, e := range evs {
			byType[e.Type] = append(byType[e.Type], e)
		}
		if n := len(byType["recording.started"]); n != 1 {
			t.Errorf("%d recording.started events, want 1", n)
		}
		if n := len(byType["recording.finished"]); n != 1 {
			t.Errorf("%d recording.finished events, want 1", n)
		}
		if n := len(byType["recording.file_completed"]); n != 3 {
			t.Errorf("%d recording.file_completed events, want 3 (one per archive)", n)
		}
		for _, typ := range []string{"recording.started", "recording.file_completed", "recording.finished"} {
			for _, e := range byType[typ] {
				for _, k := range []string{"path", "duration", "size"} {
					if _, ok := e.Data[k]; !ok {
						t.Errorf("%s event has no %q: %v", typ, k, e)
					}
				}
			}
		}
		for _, e := range byType["recording.file_completed"] {
			i := slices.IndexFunc(recs, func(r apiRecording) bool { return r.Path == e.str("path") })
			if i < 0 {
				t.Errorf("file_completed event names path %q, which is none of the archives", e.str("path"))
				continue
			}
			r := recs[i]
			if d, ok := e.num("duration"); !ok || absDiff(d, r.Duration) > 0.05 {
				t.Errorf("file_completed event of %s: duration %v, archive lasts %.3f s", r.Path, e.Data["duration"], r.Duration)
			}
			if sz, ok := e.num("size"); !ok || int64(sz) != fileSize(recFile(dir, r)) {
				t.Errorf("file_completed event of %s: size %v, the file has %d bytes", r.Path, e.Data["size"], fileSize(recFile(dir, r)))
			}
		}
		if f := byType["recording.finished"]; len(f) == 1 {
			if d, ok := f[0].num("duration"); !ok || absDiff(d, total) > 0.1 {
				t.Logf("recording.finished duration %v; the session's archives last %.3f s together (informational)", f[0].Data["duration"], total)
			}
		}
		// Ordered: started, then the files, then finished.
		if len(evs) > 0 && (evs[0].Type != "recording.started" || evs[len(evs)-1].Type != "recording.finished") {
			t.Errorf("events are not started ... finished in order: first %s, last %s", evs[0].Type, evs[len(evs)-1].Type)
		}
		// They are logged too.
		if lines := s.Log.Lines("msg=event", "type=recording.file_completed", "stream="+name); len(lines) != 3 {
			t.Errorf("%d log lines for recording.file_completed, want 3", len(lines))
		} else if !strings.Contains(lines[0], "path=") || !strings.Contains(lines[0], "size=") {
			t.Errorf("file_completed log line lacks path or size: %s", lines[0])
		}
	})
}

// TestRecordingAPIStartStop starts and stops recording a live stream
// through the API: the archive starts and ends within one GOP of the
// requests.
func TestRecordingAPIStartStop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, serverOptions{Config: recordingConfig(dir, "")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/apirec"
	path := "/api/v1/streams/" + name + "/recording"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 90 * time.Second})
	mediaURL, _ := waitForPlaylist(t, s, name, 2)

	if recs := s.recordings(t, name); len(recs) != 0 {
		t.Errorf("a stream without a rule records: %v", recs)
	}
	if _, code, b := s.recStatus(t, name); code != http.StatusNotFound {
		t.Errorf("GET %s before recording: %d %s, want 404", path, code, b)
	}
	if code, b := s.apiBody(t, http.MethodPost, path, `{"format":"avi"}`); code != http.StatusBadRequest {
		t.Errorf("POST %s with format avi: %d %s, want 400", path, code, b)
	}
	if code, b := s.api(t, http.MethodPost, "/api/v1/streams/live/nothere/recording", apiToken); code != http.StatusNotFound {
		t.Errorf("POST recording of a stream that is not live: %d %s, want 404", code, b)
	}
	if code, b := s.api(t, http.MethodPost, path, ""); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("POST %s without the token: %d %s, want 401 or 403", path, code, b)
	}
	time.Sleep(1500 * time.Millisecond)

	tStart := time.Now()
	code, b := s.apiBody(t, http.MethodPost, path, `{"renditions":["source"],"format":"fmp4"}`)
	tStartDone := time.Now()
	if code != http.StatusCreated {
		t.Fatalf("POST %s: %d %s, want 201", path, code, b)
	}
	var st apiRecStatus
	if err := json.Unmarshal(b, &st); err != nil || !st.Recording || st.Trigger != "api" {
		t.Errorf("POST %s answered %s (%v); want recording true, trigger api", path, b, err)
	}
	if code, b := s.api(t, http.MethodPost, path, apiToken); code != http.StatusOK {
		t.Errorf("POST %s again while recording: %d %s, want 200", path, code, b)
	}
	if st, code, b := s.recStatus(t, name); code != http.StatusOK || !st.Recording {
		t.Errorf("GET %s while recording: %d %s", path, code, b)
	}
	time.Sleep(5 * time.Second)
	tStop := time.Now()
	code, b = s.api(t, http.MethodDelete, path, apiToken)
	tStopDone := time.Now()
	if code != http.StatusOK {
		t.Fatalf("DELETE %s: %d %s, want 200", path, code, b)
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Recording {
		t.Errorf("DELETE %s answered %s (%v); want recording false", path, b, err)
	}
	if code, b := s.api(t, http.MethodDelete, path, apiToken); code != http.StatusNotFound {
		t.Errorf("DELETE %s when not recording: %d %s, want 404", path, code, b)
	}
	if _, code, b := s.recStatus(t, name); code != http.StatusNotFound {
		t.Errorf("GET %s after stopping: %d %s, want 404", path, code, b)
	}
	t.Logf("start requested %s..%s, stop requested %s..%s", tStart.Format("15:04:05.000"), tStartDone.Format("15:04:05.000"), tStop.Format("15:04:05.000"), tStopDone.Format("15:04:05.000"))

	recs := waitRecordingsDone(t, s, name, 1, 20*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d archives, want 1: %v", len(recs), recs)
	}
	r := recs[0]
	t.Logf("archive: %v", r)
	gop := secs(recGOP) + 0.25 // one GOP, and a margin for the requests' own time
	if d := r.Start.Sub(tStart).Seconds(); d < -gop || r.Start.Sub(tStartDone).Seconds() > gop {
		t.Errorf("archive starts at %s, %.3f s from the start request at %s; want within one GOP", rfc(r.Start), d, rfc(tStart))
	}
	if d := r.End.Sub(tStop).Seconds(); d < -gop || r.End.Sub(tStopDone).Seconds() > gop {
		t.Errorf("archive ends at %s, %.3f s from the stop request at %s; want within one GOP", rfc(r.End), d, rfc(tStop))
	}
	if d := absDiff(r.Duration, tStop.Sub(tStart).Seconds()); d > gop {
		t.Errorf("archive lasts %.3f s, the requests were %.3f s apart; want within one GOP", r.Duration, tStop.Sub(tStart).Seconds())
	}
	got := checkArchiveMedia(t, "API archive", recFile(dir, r), r.Duration, 0.1)
	if d := absDiff(got, tStop.Sub(tStart).Seconds()); d > gop {
		t.Errorf("the file lasts %.3f s, the requests were %.3f s apart", got, tStop.Sub(tStart).Seconds())
	}
	// The live stream went on all along.
	if !pub.Running() {
		t.Errorf("the publisher stopped: %v", pub.err)
	}
	if pl, err := fetchMediaPlaylist(ctx, mediaURL); err != nil || pl.Endlist {
		t.Errorf("the live playlist after the recording stopped: %v %+v", err, pl)
	}
	pub.Stop()
}

// TestRecordingPublishParam: ?record=1 on the publish URL records where the
// application allows it; ?record=0 turns a rule off for one publish. With
// finalize on, a faststart MP4 is written next to each archive; a rule with
// format hls records segments and a VOD playlist.
func TestRecordingPublishParam(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := recordingConfig(dir, `  finalize: true
  rules:
    - match: "live/ruled-*"
    - match: "live/hls-*"
      format: hls
`) + `applications:
  - name: live
  - name: norec
    allow_record_param: false
`
	s := startServer(t, serverOptions{Config: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const pushed = 6 * time.Second
	pubs := map[string]*proc{}
	for name, q := range map[string]string{
		"live/param":     "?record=1",
		"live/plain":     "",
		"live/ruled-off": "?record=0",
		"norec/param":    "?record=1",
		"live/hls-1":     "",
	} {
		pubs[name] = ffmpegPublish(t, ctx, s.RTMPURL(name)+q, pubOptions{Duration: pushed})
	}
	waitRecordings(t, s, "live/param", 30*time.Second, "live/param recording", func(rs []apiRecording) bool {
		return anyRecording(rs, "recording")
	})
	if st, code, b := s.recStatus(t, "live/param"); code != http.StatusOK || st.Trigger != "param" {
		t.Errorf("recording status of live/param: %d %s; want recording with trigger param", code, b)
	}
	for name, p := range pubs {
		if exited, err := p.Wait(pushed + 30*time.Second); !exited || err != nil {
			t.Errorf("publisher of %s: exited %v, %v\n%s", name, exited, err, testutil.Tail(p.Stderr.String(), 5))
		}
	}
	recs := waitRecordingsDone(t, s, "live/param", 1, 20*time.Second)
	if len(recs) != 1 {
		t.Errorf("live/param?record=1: %d archives, want 1: %v", len(recs), recs)
	}
	r := recs[0]
	got := checkArchiveMedia(t, "?record=1 archive", recFile(dir, r), secs(pushed), 0.5)
	for _, name := range []string{"live/plain", "live/ruled-off", "norec/param"} {
		if recs := s.recordings(t, name); len(recs) != 0 {
			t.Errorf("%s recorded: %v", name, recs)
		}
	}
	all := s.recordings(t, "")
	if len(all) != 2 {
		t.Errorf("the recordings list holds %d archives, want live/param's and live/hls-1's: %v", len(all), all)
	}

	t.Run("Finalize", func(t *testing.T) {
		waitFor(t, 20*time.Second, "the finalized MP4 of live/param's archive", func() bool {
			fr, code := s.recordingByID(t, r.ID)
			if code == http.StatusOK && fr.Finalized != "" {
				r = fr
				return true
			}
			return false
		})
		t.Logf("finalized: %s", r.Finalized)
		file := filepath.Join(dir, filepath.FromSlash(r.Finalized))
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		boxes, err := topLevelBoxes(b)
		if err != nil {
			t.Errorf("%s: %v", r.Finalized, err)
		}
		moov, mdat := slices.Index(boxes, "moov"), slices.Index(boxes, "mdat")
		if moov < 0 || mdat < 0 || moov > mdat || slices.Contains(boxes, "moof") {
			t.Errorf("%s has top-level boxes %v, want a non-fragmented faststart MP4 (moov before mdat, no moof)", r.Finalized, boxes)
		}
		checkArchiveMedia(t, "finalized MP4", file, got, 0.05)
		// The fragmented archive stays.
		if fileSize(recFile(dir, r)) != r.Size {
			t.Errorf("the archive %s is gone or changed after finalizing", r.Path)
		}
	})

	t.Run("HLSFormat", func(t *testing.T) {
		recs := waitRecordingsDone(t, s, "live/hls-1", 1, 20*time.Second)
		if len(recs) != 1 {
			t.Fatalf("%d archives of live/hls-1, want 1: %v", len(recs), recs)
		}
		r := recs[0]
		t.Logf("archive: %v", r)
		if r.Format != "hls" || !strings.HasSuffix(r.Path, "index.m3u8") {
			t.Errorf("archive format %q path %q, want hls and a folder's index.m3u8", r.Format, r.Path)
		}
		body, err := os.ReadFile(recFile(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		pl := parseMediaPlaylist(string(body))
		var total float64
		for _, sg := range pl.Segments {
			total += sg.Duration
		}
		if !pl.Endlist || pl.Map["URI"] == "" || len(pl.Segments) == 0 {
			t.Errorf("the archive's playlist lacks EXT-X-ENDLIST, EXT-X-MAP or segments:\n%s", body)
		}
		if absDiff(total, secs(pushed)) > 0.5 || absDiff(total, r.Duration) > 0.1 {
			t.Errorf("the archive's playlist lasts %.3f s; pushed %v, API duration %.3f s", total, pushed, r.Duration)
		}
		dec := ffmpegDecode(t, recFile(dir, r), time.Minute)
		t.Logf("HLS archive: decoded %d video frames, %.2f s of audio", dec.VideoFrames, dec.AudioSeconds)
		if dec.Err != nil || len(errorLines(dec.Stderr)) > 0 {
			t.Errorf("ffmpeg decode of the HLS archive: %v\n%s", dec.Err, testutil.Tail(dec.Stderr, 10))
		}
		if exp := total * recFPS; math.Abs(float64(dec.VideoFrames)-exp) > 3 {
			t.Errorf("decoded %d video frames from %.3f s of playlist", dec.VideoFrames, total)
		}
	})
}

// TestRecordingRetentionMaxAge records short archives with max_age 3s:
// each archive is deleted once it is older than that, never before, oldest
// first, and the newest stay until their time comes.
func TestRecordingRetentionMaxAge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const maxAge = 3 * time.Second
	const interval = time.Second
	s := startServer(t, serverOptions{Config: recordingConfig(dir, fmt.Sprintf(`  rollover: 2s
  retention:
    max_age: %v
    interval: %v
`, maxAge, interval)+recRuleAll)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/age"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 9 * time.Second})
	// Keep every archive as last seen, since they disappear; until the
	// push has ended and no archive is being written.
	seen := map[string]apiRecording{}
	var order []string
	var deletedBeforeAge []string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		now := time.Now()
		recs := s.recordings(t, name)
		listed := map[string]bool{}
		for _, r := range recs {
			if _, ok := seen[r.ID]; !ok {
				order = append(order, r.ID)
			}
			seen[r.ID] = r
			listed[r.ID] = true
		}
		// An archive that ended less than max_age ago must still be there.
		for _, id := range order {
			r := seen[id]
			if !listed[id] && r.State != "recording" && now.Sub(r.End) < maxAge-100*time.Millisecond {
				deletedBeforeAge = append(deletedBeforeAge, fmt.Sprintf("%s (ended %s, gone at %s)", r.Path, rfc(r.End), rfc(now)))
			}
		}
		if !pub.Running() && len(order) > 0 && !anyRecording(recs, "recording") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(deletedBeforeAge) > 0 {
		t.Errorf("archives deleted before they were %v old: %v", maxAge, deletedBeforeAge)
	}
	if len(order) < 4 {
		t.Fatalf("%d archives for a 9 s push with rollover 2s: %v", len(order), order)
	}
	// Everything goes once old enough.
	waitFor(t, maxAge+interval+10*time.Second, "every archive deleted by max_age", func() bool {
		return len(s.recordings(t, name)) == 0
	})
	evs := s.events(t, 0, "recording.deleted", name)
	if len(evs) != len(order) {
		t.Errorf("%d recording.deleted events for %d archives", len(evs), len(order))
	}
	for i, e := range evs {
		r, ok := seen[e.str("id")]
		if !ok {
			t.Errorf("deleted event for an unknown archive: %v", e)
			continue
		}
		if i < len(order) && e.str("id") != order[i] {
			t.Errorf("deletion %d is of %s, want the oldest, %s", i+1, r.Path, seen[order[i]].Path)
		}
		age := e.Time.Sub(r.End)
		t.Logf("deleted %s (ended %s) at age %v", r.Path, r.End.Format("15:04:05.000"), age)
		if age < maxAge || age > maxAge+interval+time.Second {
			t.Errorf("%s deleted at age %v; want between %v and %v", r.Path, age, maxAge, maxAge+interval+time.Second)
		}
		if e.str("reason") != "retention" {
			t.Errorf("deleted event reason %q, want retention", e.str("reason"))
		}
		if fileSize(recFile(dir, r)) >= 0 {
			t.Errorf("%s is still on disk after its deleted event", r.Path)
		}
	}
}

// TestRecordingRetention records two streams into short archives, then
// restarts mps with a max_size that the first stream's archives exceed:
// its oldest archives are deleted, oldest first, and only as many as
// needed; the other stream's are kept.
func TestRecordingRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, serverOptions{Config: recordingConfig(dir, "  rollover: 2s\n"+recRuleAll)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := ffmpegPublish(t, ctx, s.RTMPURL("live/ret-a"), pubOptions{Duration: 11 * time.Second})
	b := ffmpegPublish(t, ctx, s.RTMPURL("live/ret-b"), pubOptions{Duration: 3 * time.Second})
	for _, p := range []*proc{a, b} {
		if exited, err := p.Wait(60 * time.Second); !exited || err != nil {
			t.Fatalf("publisher: exited %v, %v", exited, err)
		}
	}
	recsA := waitRecordingsDone(t, s, "live/ret-a", 5, 20*time.Second)
	recsB := waitRecordingsDone(t, s, "live/ret-b", 1, 20*time.Second)
	checkRecordingsList(t, s, "live/ret-a", recsA)
	stopServer(t, s)
	var sumB int64
	for _, r := range recsB {
		sumB += r.Size
	}
	n := len(recsA)
	// Keep the two newest archives of ret-a: the limit is their size plus
	// half of the third newest.
	maxSize := recsA[n-1].Size + recsA[n-2].Size + recsA[n-3].Size/2
	for i, r := range recsA {
		t.Logf("ret-a archive %d: %v", i+1, r)
	}
	t.Logf("ret-b: %d archives, %d bytes; max_size %d", len(recsB), sumB, maxSize)
	if sumB >= maxSize {
		t.Fatalf("test set-up: ret-b's archives (%d bytes) exceed max_size %d", sumB, maxSize)
	}
	wantDeleted := recsA[:n-2]
	wantKept := recsA[n-2:]

	s2 := startServer(t, serverOptions{Config: recordingConfig(dir, fmt.Sprintf(`  retention:
    max_size: %d
    scope: stream
    interval: 1s
`, maxSize))})
	var dels []apiEvent
	waitFor(t, 20*time.Second, fmt.Sprintf("%d recording.deleted events", len(wantDeleted)), func() bool {
		dels = s2.events(t, 0, "recording.deleted", "")
		return len(dels) >= len(wantDeleted)
	})
	time.Sleep(2500 * time.Millisecond) // two more retention runs
	dels = s2.events(t, 0, "recording.deleted", "")
	for _, e := range dels {
		t.Logf("event %v", e)
	}
	if len(dels) != len(wantDeleted) {
		t.Errorf("%d recording.deleted events, want %d (the oldest of ret-a only)", len(dels), len(wantDeleted))
	}
	for i, e := range dels {
		if i >= len(wantDeleted) {
			break
		}
		w := wantDeleted[i]
		if e.Stream != "live/ret-a" || e.str("id") != w.ID || e.str("path") != w.Path {
			t.Errorf("deletion %d: stream %s id %s path %s; want the oldest remaining archive %s (%s)", i+1, e.Stream, e.str("id"), e.str("path"), w.ID, w.Path)
		}
		if e.str("reason") != "retention" {
			t.Errorf("deletion %d: reason %q, want retention", i+1, e.str("reason"))
		}
	}
	for _, r := range wantDeleted {
		if fileSize(recFile(dir, r)) >= 0 {
			t.Errorf("%s should have been deleted (oldest) but is still on disk", r.Path)
		}
		if _, code := s2.recordingByID(t, r.ID); code != http.StatusNotFound {
			t.Errorf("GET deleted recording %s: %d, want 404", r.ID, code)
		}
	}
	for _, r := range append(append([]apiRecording{}, wantKept...), recsB...) {
		if fileSize(recFile(dir, r)) != r.Size {
			t.Errorf("%s (%s) should have been kept, its size is now %d (was %d)", r.Path, r.Stream, fileSize(recFile(dir, r)), r.Size)
		}
	}
	var keptIDs []string
	for _, r := range s2.recordings(t, "live/ret-a") {
		keptIDs = append(keptIDs, r.ID)
	}
	if want := []string{wantKept[0].ID, wantKept[1].ID}; !slices.Equal(keptIDs, want) {
		t.Errorf("the API lists ret-a archives %v, want %v", keptIDs, want)
	}
	if got := len(s2.recordings(t, "live/ret-b")); got != len(recsB) {
		t.Errorf("the API lists %d ret-b archives, want %d", got, len(recsB))
	}
	if lines := s2.Log.Lines("msg=event", "type=recording.deleted"); len(lines) != len(dels) {
		t.Errorf("%d recording.deleted log lines for %d events", len(lines), len(dels))
	}
}

// TestRecordingPlayback records a stream and plays a range of it back: as
// HLS (hls.js in Chromium, ffmpeg), as DASH, as an MP4 export and as a
// download with Range requests; bad requests get 4xx and touch nothing
// outside the recordings folder.
func TestRecordingPlayback(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "rec")
	s := startServer(t, serverOptions{Config: recordingConfig(dir, recRuleAll)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/vod"
	const pushed = 12 * time.Second
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: pushed})
	if exited, err := pub.Wait(pushed + 30*time.Second); !exited || err != nil {
		t.Fatalf("publisher: exited %v, %v", exited, err)
	}
	recs := waitRecordingsDone(t, s, name, 1, 20*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d archives, want 1: %v", len(recs), recs)
	}
	r := recs[0]
	t.Logf("archive: %v", r)
	// A 6 s range from 2.5 s into the recording (mid-GOP).
	start := r.Start.Add(2500 * time.Millisecond)
	end := start.Add(6 * time.Second)
	want := end.Sub(start).Seconds()
	q := rangeQuery(start, end)
	base := "/recordings/" + name + "/"

	t.Run("HLS", func(t *testing.T) {
		u := s.URL(base + "index.m3u8?" + q)
		code, body := httpGet(t, u)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, code, body)
		}
		mediaURL, err := firstMediaPlaylistURL(u, body)
		if err != nil {
			t.Fatalf("%v\n%s", err, body)
		}
		if !strings.Contains(mediaURL, "start=") {
			t.Errorf("the media playlist URI %s does not carry the range", mediaURL)
		}
		pl, err := fetchMediaPlaylist(ctx, mediaURL)
		if err != nil {
			t.Fatal(err)
		}
		var total float64
		for _, sg := range pl.Segments {
			total += sg.Duration
		}
		t.Logf("media playlist: %d segments, %.3f s:\n%s", len(pl.Segments), total, pl.Raw)
		if !pl.Endlist {
			t.Errorf("the range's media playlist has no EXT-X-ENDLIST")
		}
		if total < want-0.1 || total > want+secs(recGOP)+0.1 {
			t.Errorf("the range's playlist lasts %.3f s, want %.1f s up to one GOP more", total, want)
		}
		dec := ffmpegDecode(t, u, time.Minute)
		t.Logf("ffmpeg decoded %d video frames, %.2f s of audio", dec.VideoFrames, dec.AudioSeconds)
		if dec.Err != nil || len(errorLines(dec.Stderr)) > 0 {
			t.Errorf("ffmpeg decode of %s: %v\n%s", u, dec.Err, testutil.Tail(dec.Stderr, 10))
		}
		if exp := total * recFPS; math.Abs(float64(dec.VideoFrames)-exp) > 3 {
			t.Errorf("decoded %d video frames, the playlist lasts %.3f s (%.0f frames)", dec.VideoFrames, total, exp)
		}
		if dec.AudioSeconds < want-0.2 {
			t.Errorf("decoded %.2f s of audio, want about %.1f", dec.AudioSeconds, want)
		}
		// DASH of the same range.
		code, mpd := httpGet(t, s.URL(base+"manifest.mpd?"+q))
		if code != http.StatusOK || !strings.Contains(mpd, `type="static"`) {
			t.Errorf("GET manifest.mpd of the range: %d, want 200 and a static MPD:\n%.500s", code, mpd)
		}
		dir := browserDir(t)
		runPlayer(t, ctx, dir, "hls", u, 3, 45, nil)
	})

	t.Run("Export", func(t *testing.T) {
		u := s.URL(base + "export.mp4?" + q)
		code, h, body := getWith(t, u, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", u, code, body)
		}
		boxes, err := topLevelBoxes(body)
		t.Logf("export: %d bytes, Content-Type %q, X-MPS-Start %q, X-MPS-End %q, boxes %v", len(body), h.Get("Content-Type"), h.Get("X-MPS-Start"), h.Get("X-MPS-End"), boxes)
		if err != nil {
			t.Errorf("export is not a well-formed MP4: %v", err)
		}
		moov, mdat := slices.Index(boxes, "moov"), slices.Index(boxes, "mdat")
		if moov < 0 || mdat < 0 || moov > mdat {
			t.Errorf("export top-level boxes %v: want moov before mdat (faststart)", boxes)
		}
		if slices.Contains(boxes, "moof") {
			t.Logf("note: the export is a fragmented MP4 (has moof)")
		}
		if ct := h.Get("Content-Type"); ct != "video/mp4" {
			t.Errorf("export Content-Type %q, want video/mp4", ct)
		}
		xs, err1 := time.Parse(time.RFC3339Nano, h.Get("X-MPS-Start"))
		xe, err2 := time.Parse(time.RFC3339Nano, h.Get("X-MPS-End"))
		if err1 != nil || err2 != nil {
			t.Errorf("X-MPS-Start / X-MPS-End: %v %v", err1, err2)
		} else {
			// Cut at the last keyframe at or before start, end before end.
			if d := start.Sub(xs); d < -time.Millisecond || d > recGOP+50*time.Millisecond {
				t.Errorf("export starts at %s, %v before the requested start %s; want 0..one GOP", rfc(xs), d, rfc(start))
			}
			if d := end.Sub(xe); d < -time.Millisecond || d > recGOP+50*time.Millisecond {
				t.Errorf("export ends at %s, %v before the requested end %s; want 0..one GOP", rfc(xe), d, rfc(end))
			}
		}
		file := filepath.Join(t.TempDir(), "export.mp4")
		if err := os.WriteFile(file, body, 0o644); err != nil {
			t.Fatal(err)
		}
		got := checkArchiveMedia(t, "export", file, want, secs(recGOP))
		if err1 == nil && err2 == nil {
			if d := absDiff(got, xe.Sub(xs).Seconds()); d > 0.05 {
				t.Errorf("export lasts %.3f s, but X-MPS-Start..X-MPS-End is %v", got, xe.Sub(xs))
			}
		}
	})

	t.Run("Download", func(t *testing.T) {
		u := s.URL("/api/v1/recordings/" + url.PathEscape(r.ID) + "/download")
		auth := map[string]string{"Authorization": "Bearer " + apiToken}
		onDisk, err := os.ReadFile(recFile(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		code, h, body := getWith(t, u, map[string]string{"Authorization": "Bearer " + apiToken, "Range": "bytes=0-99"})
		if code != http.StatusPartialContent || len(body) != 100 {
			t.Errorf("download with Range bytes=0-99: %d, %d bytes; want 206 and 100 bytes", code, len(body))
		} else if !bytes.Equal(body, onDisk[:100]) {
			t.Errorf("the first 100 bytes differ from the file's")
		}
		if cr, want := h.Get("Content-Range"), fmt.Sprintf("bytes 0-99/%d", len(onDisk)); cr != want {
			t.Errorf("Content-Range %q, want %q", cr, want)
		}
		code, _, _ = getWith(t, u, map[string]string{"Authorization": "Bearer " + apiToken, "Range": fmt.Sprintf("bytes=%d-", len(onDisk)+10)})
		if code != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("download with a range past the end: %d, want 416", code)
		}
		if code, _, _ := getWith(t, u, nil); code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("download without the token: %d, want 401 or 403", code)
		}
		code, h, body = getWith(t, u, auth)
		if code != http.StatusOK {
			t.Fatalf("download: %d %.200s", code, body)
		}
		t.Logf("download: %d bytes, Content-Type %q, Content-Disposition %q, Accept-Ranges %q", len(body), h.Get("Content-Type"), h.Get("Content-Disposition"), h.Get("Accept-Ranges"))
		if !bytes.Equal(body, onDisk) || int64(len(body)) != r.Size {
			t.Errorf("download: %d bytes, the file has %d, the API says %d (equal content: %v)", len(body), len(onDisk), r.Size, bytes.Equal(body, onDisk))
		}
		if ct := h.Get("Content-Type"); ct != "video/mp4" {
			t.Errorf("download Content-Type %q, want video/mp4", ct)
		}
		if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") {
			t.Errorf("download Content-Disposition %q, want attachment", h.Get("Content-Disposition"))
		}
		if h.Get("Accept-Ranges") != "bytes" {
			t.Errorf("download Accept-Ranges %q, want bytes", h.Get("Accept-Ranges"))
		}
		file := filepath.Join(t.TempDir(), "download.mp4")
		if err := os.WriteFile(file, body, 0o644); err != nil {
			t.Fatal(err)
		}
		checkArchiveMedia(t, "download", file, secs(pushed), 0.5)
	})

	t.Run("BadRequests", func(t *testing.T) {
		// Files outside the recordings folder that a path traversal could reach.
		canary := []byte("canary: not a recording\n")
		for _, p := range []string{"canary.mp4", "canary.mp4.json", "canary.json", "etc/passwd", "etc/index.m3u8", "rec2/x.mp4"} {
			full := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, canary, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before := treeSnapshot(t, root, dir)
		archiveBefore := fileSize(recFile(dir, r))
		auth := map[string]string{"Authorization": "Bearer " + apiToken}
		past := time.Now().Add(-24 * time.Hour)
		cases := []struct {
			method, path string
			want         int // 0: any 400 or 404
		}{
			{"GET", base + "index.m3u8?" + rangeQuery(end, start), 400},
			{"GET", base + "index.m3u8?" + rangeQuery(start, start), 400},
			{"GET", base + "index.m3u8", 400},
			{"GET", base + "index.m3u8?start=yesterday&end=" + url.QueryEscape(rfc(end)), 400},
			{"GET", base + "export.mp4?" + rangeQuery(end, start), 400},
			{"GET", base + "manifest.mpd?" + rangeQuery(end, start), 400},
			{"GET", "/recordings/live/nosuch/index.m3u8?" + q, 404},
			{"GET", "/recordings/live/nosuch/export.mp4?" + q, 404},
			{"GET", base + "index.m3u8?" + rangeQuery(past, past.Add(10*time.Second)), 404},
			{"GET", "/recordings/..%2f..%2fetc/index.m3u8?" + q, 0},
			{"GET", "/recordings/..%2f..%2fetc/passwd?" + q, 0},
			{"GET", "/recordings/../../etc/passwd", 0},
			{"GET", "/recordings/%2e%2e/%2e%2e/canary.mp4?" + q, 0},
			{"GET", base + "..%2f..%2f..%2fcanary.mp4?" + q, 0},
			{"GET", base + "..%2f..%2f..%2fetc%2fpasswd?" + q, 0},
			{"GET", "/recordings/live/..%2f..%2f..%2fetc/export.mp4?" + q, 0},
			{"GET", "/api/v1/recordings/..%2f..", 0},
			{"GET", "/api/v1/recordings/..%2f..%2fcanary.mp4", 0},
			{"GET", "/api/v1/recordings/..%2f..%2fcanary.mp4/download", 0},
			{"GET", "/api/v1/recordings/..%2f..%2fetc%2fpasswd/download", 0},
			{"GET", "/api/v1/recordings/no-such-recording", 404},
			{"GET", "/api/v1/recordings/no-such-recording/download", 404},
			{"DELETE", "/api/v1/recordings/no-such-recording", 404},
			{"DELETE", "/api/v1/recordings/..%2f..%2fcanary.mp4", 0},
			{"DELETE", "/api/v1/recordings/..%2f..%2frec2%2fx.mp4", 0},
			{"DELETE", "/api/v1/recordings/..%2f..", 0},
			{"DELETE", "/api/v1/recordings/%2e%2e", 0},
			{"POST", "/api/v1/streams/..%2f..%2fetc/recording", 0},
			{"POST", "/api/v1/streams/live/nosuch/recording", 404},
		}
		for _, c := range cases {
			var hdr map[string]string
			if strings.HasPrefix(c.path, "/api/") {
				hdr = auth
			}
			code, _, body := rawRequest(t, s.HTTPAddr, c.method, c.path, hdr)
			t.Logf("%s %s: %d %.120s", c.method, c.path, code, bytes.TrimSpace(body))
			bad := false
			if c.want != 0 && code != c.want {
				bad = true
			}
			if c.want == 0 && code != 400 && code != 404 {
				bad = true
			}
			if bad {
				want := fmt.Sprint(c.want)
				if c.want == 0 {
					want = "400 or 404"
				}
				t.Errorf("%s %s: %d, want %s: %.200s", c.method, c.path, code, want, body)
			}
			if bytes.Contains(body, canary) || bytes.Contains(body, []byte("root:")) {
				t.Errorf("%s %s: served a file from outside the recordings folder: %.200s", c.method, c.path, body)
			}
			if strings.HasPrefix(c.path, "/api/") && code >= 400 {
				var e struct {
					Error string `json:"error"`
					Code  int    `json:"code"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Code != code {
					t.Errorf("%s %s: error body %q, want JSON {\"error\": ..., \"code\": %d}", c.method, c.path, body, code)
				}
			}
		}
		after := treeSnapshot(t, root, dir)
		for p, v := range before {
			if after[p] != v {
				t.Errorf("%s outside the recordings folder changed: %q -> %q", p, v, after[p])
			}
		}
		for p := range after {
			if _, ok := before[p]; !ok {
				t.Errorf("%s appeared outside the recordings folder", p)
			}
		}
		if got := fileSize(recFile(dir, r)); got != archiveBefore {
			t.Errorf("the archive %s changed: %d -> %d bytes", r.Path, archiveBefore, got)
		}
		if _, code := s.recordingByID(t, r.ID); code != http.StatusOK {
			t.Errorf("the archive's recording is gone after the bad requests: %d", code)
		}
		// A real delete works, and then the id is unknown.
		if code, b := s.api(t, http.MethodDelete, "/api/v1/recordings/"+url.PathEscape(r.ID), apiToken); code != http.StatusNoContent {
			t.Errorf("DELETE the archive: %d %s, want 204", code, b)
		} else {
			if fileSize(recFile(dir, r)) >= 0 {
				t.Errorf("the archive %s is still on disk after DELETE", r.Path)
			}
			if _, code := s.recordingByID(t, r.ID); code != http.StatusNotFound {
				t.Errorf("GET of a deleted recording: %d, want 404", code)
			}
			if evs := s.events(t, 0, "recording.deleted", name); len(evs) != 1 || evs[0].str("reason") != "api" {
				t.Errorf("recording.deleted events after DELETE: %v; want one with reason api", evs)
			}
		}
	})
}

// checkRecordingsList checks the list's paging and time filter against
// the archives of one stream (oldest first, at least 4).
func checkRecordingsList(t *testing.T, s *server, stream string, recs []apiRecording) {
	t.Helper()
	list := func(q url.Values) apiRecPage {
		t.Helper()
		q.Set("stream", stream)
		code, b := s.api(t, http.MethodGet, "/api/v1/recordings?"+q.Encode(), apiToken)
		if code != http.StatusOK {
			t.Fatalf("GET /api/v1/recordings?%s: %d %s", q.Encode(), code, b)
		}
		var p apiRecPage
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("GET /api/v1/recordings?%s: %v", q.Encode(), err)
		}
		return p
	}
	ids := func(rs []apiRecording) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	n := len(recs)
	p := list(url.Values{"limit": {"2"}})
	if p.Total != n || !slices.Equal(ids(p.Recordings), ids(recs[:2])) || p.NextOffset != 2 {
		t.Errorf("limit=2: total %d, ids %v, next_offset %d; want total %d, %v, next_offset 2", p.Total, ids(p.Recordings), p.NextOffset, n, ids(recs[:2]))
	}
	p = list(url.Values{"limit": {"2"}, "offset": {fmt.Sprint(n - 2)}})
	if !slices.Equal(ids(p.Recordings), ids(recs[n-2:])) || p.NextOffset != 0 {
		t.Errorf("last page: ids %v, next_offset %d; want %v, 0", ids(p.Recordings), p.NextOffset, ids(recs[n-2:]))
	}
	// from..to overlapping the 3rd and 4th archives only.
	from, to := recs[2].Start.Add(500*time.Millisecond), recs[3].Start.Add(500*time.Millisecond)
	p = list(url.Values{"from": {rfc(from)}, "to": {rfc(to)}})
	if !slices.Equal(ids(p.Recordings), ids(recs[2:4])) || p.Total != 2 {
		t.Errorf("from %s to %s: ids %v (total %d); want %v", rfc(from), rfc(to), ids(p.Recordings), p.Total, ids(recs[2:4]))
	}
	if code, b := s.api(t, http.MethodGet, "/api/v1/recordings?from=yesterday", apiToken); code != http.StatusBadRequest {
		t.Errorf("GET /api/v1/recordings?from=yesterday: %d %s, want 400", code, b)
	}
	if code, _ := s.api(t, http.MethodGet, "/api/v1/recordings", ""); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("GET /api/v1/recordings without the token: %d, want 401 or 403", code)
	}
}

// TestRecordingReconnect: a publisher that reconnects within the grace
// period continues the recording session in a new archive, and one whose
// codec parameters changed (another picture size) gets its own archive.
func TestRecordingReconnect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := strings.Replace(recordingConfig(dir, recRuleAll), "grace_period: 1s", "grace_period: 6s", 1)
	s := startServer(t, serverOptions{Config: cfg})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "live/reconnect"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: time.Minute})
	waitRecordings(t, s, name, 30*time.Second, "an archive with 3 s", func(rs []apiRecording) bool {
		return len(rs) == 1 && rs[0].Duration >= 3
	})
	pub.Kill()
	time.Sleep(300 * time.Millisecond)
	pub = ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 4 * time.Second, Size: "320x240"})
	if exited, err := pub.Wait(40 * time.Second); !exited || err != nil {
		t.Fatalf("second publisher: exited %v, %v", exited, err)
	}
	recs := waitRecordingsDone(t, s, name, 2, 30*time.Second)
	for _, r := range recs {
		t.Logf("archive: %v", r)
	}
	if len(recs) != 2 {
		t.Fatalf("%d archives, want 2 (one per publish, one session)", len(recs))
	}
	if recs[0].Session != recs[1].Session || recs[0].Seq != 1 || recs[1].Seq != 2 {
		t.Errorf("archives: session %q seq %d, session %q seq %d; want one session, seq 1 and 2", recs[0].Session, recs[0].Seq, recs[1].Session, recs[1].Seq)
	}
	if evs := s.events(t, 0, "recording.started", name); len(evs) != 1 {
		t.Errorf("%d recording.started events, want 1 (the session continued)", len(evs))
	}
	for i, want := range []string{"640x360", "320x240"} {
		r := recs[i]
		if r.State != "complete" {
			t.Errorf("archive %d: state %q", i+1, r.State)
		}
		dec := ffmpegDecode(t, recFile(dir, r), time.Minute)
		if dec.Err != nil || len(errorLines(dec.Stderr)) > 0 || dec.VideoSize != want {
			t.Errorf("archive %d: %v, picture %s (want %s)\n%s", i+1, dec.Err, dec.VideoSize, want, testutil.Tail(dec.Stderr, 10))
		}
		if exp := r.Duration * recFPS; math.Abs(float64(dec.VideoFrames)-exp) > 3 {
			t.Errorf("archive %d: %d video frames for %.3f s", i+1, dec.VideoFrames, r.Duration)
		}
	}
	if d := absDiff(recs[1].Duration, 4); d > 0.5 {
		t.Errorf("the second archive lasts %.3f s, the second publisher pushed 4 s", recs[1].Duration)
	}
}
