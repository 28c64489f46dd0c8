package speech

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mps-dev/mps/fflog"
)

// ffmpegPath is bin, or "ffmpeg" when bin is empty.
func ffmpegPath(bin string) string {
	if bin == "" {
		return "ffmpeg"
	}
	return bin
}

// ffprobePath is probe when set, else the ffprobe beside ffmpeg when
// ffmpeg is given as a path and that file exists, else "ffprobe".
func ffprobePath(probe, ffmpeg string) string {
	if probe != "" {
		return probe
	}
	if strings.ContainsRune(ffmpeg, filepath.Separator) {
		p := filepath.Join(filepath.Dir(ffmpeg), "ffprobe")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "ffprobe"
}

// ffmpegJob is one ffmpeg run.
type ffmpegJob struct {
	bin string
	// args are the inputs, filters and outputs.
	args []string
	// total is the media duration the run covers; 0 reports no progress
	// until the end.
	total time.Duration
	// progress, when not nil, gets 0..1.
	progress func(float64)
	// extra are files the child gets as fd 3, 4, ...
	extra []*os.File
}

// errNoAudioStream reports whether ffmpeg failed because the input has no
// stream for an audio map.
func errNoAudioStream(stderr *fflog.Tail) bool {
	return stderr.Contains("matches no streams") || stderr.Contains("does not contain any stream")
}

// run runs the job. A cancelled ctx kills the child at once, and the child
// dies with this process. The error carries ffmpeg's last error line; an
// input without audio is ErrNoAudio.
func (j ffmpegJob) run(ctx context.Context) error {
	full := append([]string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y"}, j.args...)
	cmd := exec.CommandContext(ctx, ffmpegPath(j.bin), full...)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.ExtraFiles = j.extra
	stderr := &fflog.Tail{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	report := monotonic(j.progress)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = readProgress(stdout, func(out time.Duration) {
			if j.total > 0 {
				report(out.Seconds() / j.total.Seconds())
			}
		})
		_, _ = io.Copy(io.Discard, stdout)
	}()
	<-done
	err = cmd.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("ffmpeg stopped: %w", context.Cause(ctx))
	}
	if err != nil {
		if errNoAudioStream(stderr) {
			return ErrNoAudio
		}
		msg := stderr.LastError()
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("ffmpeg: %s", msg)
	}
	return nil
}

// monotonic wraps a progress callback (which may be nil) so that it only
// ever sees non-decreasing values in 0..1.
func monotonic(progress func(float64)) func(float64) {
	if progress == nil {
		return func(float64) {}
	}
	var mu sync.Mutex
	last := -1.0
	return func(f float64) {
		f = min(1, max(0, f))
		if f != f { // NaN
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if f <= last {
			return
		}
		last = f
		progress(f)
	}
}

// readProgress reads ffmpeg's -progress output (key=value lines) and calls
// fn with the output time of every block that gives one.
func readProgress(r io.Reader, fn func(out time.Duration)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	var out time.Duration
	have := false
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		switch key {
		case "out_time_us", "out_time_ms": // both are microseconds
			if us, err := strconv.ParseInt(value, 10, 64); err == nil && us >= 0 && us < 1<<62/1000 {
				out, have = time.Duration(us)*time.Microsecond, true
			}
		case "out_time":
			if d, ok := parseClock(value); ok && !have {
				out, have = d, true
			}
		case "progress":
			if have {
				fn(out)
			}
			have = false
		}
	}
	return sc.Err()
}

// parseClock parses ffmpeg's [-]HH:MM:SS.micro; negative times are not ok.
func parseClock(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.ParseUint(parts[0], 10, 32)
	m, err2 := strconv.ParseUint(parts[1], 10, 8)
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || m >= 60 || !(sec >= 0 && sec < 60) || h > 1e6 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), true
}

// audioInfo is what a probe tells about an input's audio.
type audioInfo struct {
	HasAudio bool
	Duration time.Duration // of the first audio stream, else the file's; 0 when unknown
}

// probeAudio describes path's audio with ffprobe. errProbeMissing means
// ffprobe could not be run at all.
func probeAudio(ctx context.Context, ffprobe, path string) (audioInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", path)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr fflog.Tail
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return audioInfo{}, fmt.Errorf("probe: %w", context.Cause(ctx))
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return audioInfo{}, fmt.Errorf("%w: %v", errProbeMissing, err)
		}
		msg := stderr.LastError()
		if msg == "" {
			msg = err.Error()
		}
		return audioInfo{}, fmt.Errorf("not a media file ffmpeg can read: %s", msg)
	}
	return parseProbe(out)
}

var errProbeMissing = errors.New("cannot run ffprobe")

// parseProbe reads ffprobe's JSON (-show_format -show_streams).
func parseProbe(b []byte) (audioInfo, error) {
	var po struct {
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			CodecType string `json:"codec_type"`
			Duration  string `json:"duration"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(b, &po); err != nil {
		return audioInfo{}, fmt.Errorf("probe: %w", err)
	}
	var info audioInfo
	for _, s := range po.Streams {
		if s.CodecType == "audio" {
			info.HasAudio = true
			info.Duration = parseSeconds(s.Duration)
			break
		}
	}
	if info.Duration == 0 {
		info.Duration = parseSeconds(po.Format.Duration)
	}
	return info, nil
}

// parseSeconds parses a non-negative number of seconds; 0 when it is not one.
func parseSeconds(s string) time.Duration {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(f >= 0 && f < maxSeconds) {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

// escapeFilterValue escapes s for use as an option value inside a filter
// graph description: first for the option parser, then for the graph
// parser.
func escapeFilterValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\':`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	level1 := b.String()
	b.Reset()
	for _, r := range level1 {
		if strings.ContainsRune(`\'[],;`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
