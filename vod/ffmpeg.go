package vod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mps-dev/mps/transcoder"
)

func (e Env) ffmpeg() string {
	if e.FFmpeg == "" {
		return "ffmpeg"
	}
	return e.FFmpeg
}

func (e Env) ffprobe() string {
	if e.FFprobe == "" {
		return "ffprobe"
	}
	return e.FFprobe
}

// tailBuffer keeps the last lines written to it.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
	part  []byte
}

const tailLines = 20

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(t.part[:i])); line != "" {
			t.lines = append(t.lines, line)
			if len(t.lines) > tailLines {
				t.lines = t.lines[1:]
			}
		}
		t.part = t.part[i+1:]
	}
	if len(t.part) > 4096 {
		t.part = t.part[:0]
	}
	return len(p), nil
}

// lastError is ffmpeg's most telling line: the last that looks like an
// error, else the last one.
func (t *tailBuffer) lastError() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string{}, t.lines...)
	if s := strings.TrimSpace(string(t.part)); s != "" {
		lines = append(lines, s)
	}
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.ToLower(lines[i])
		if strings.Contains(l, "error") || strings.Contains(l, "invalid") || strings.Contains(l, "no such") ||
			strings.Contains(l, "not found") || strings.Contains(l, "does not contain") || strings.Contains(l, "unable") {
			return lines[i]
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

// RunFFmpeg runs ffmpeg with args (inputs, filters and outputs), reporting
// progress against total (the media duration the outputs will have; 0
// reports nothing until the end). A cancelled ctx kills the child at
// once. The error carries ffmpeg's last error line.
func RunFFmpeg(ctx context.Context, env Env, total time.Duration, args ...string) error {
	full := append([]string{"-nostdin", "-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y"}, args...)
	cmd := exec.CommandContext(ctx, env.ffmpeg(), full...)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr := &tailBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	progress := env.Progress
	if progress == nil {
		progress = func(float64) {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = transcoder.ReadProgress(stdout, func(p transcoder.Progress) {
			if total > 0 {
				progress(min(1, max(0, p.OutTime().Seconds()/total.Seconds())))
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
		msg := stderr.lastError()
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("ffmpeg: %s", msg)
	}
	// ffmpeg decodes what a cut-off file holds and still succeeds: an
	// output made from part of the input is a failure, not a result.
	if line := stderr.find("partial file"); line != "" {
		return fmt.Errorf("%w: the input is truncated: ffmpeg: %s", ErrBadInput, line)
	}
	progress(1)
	return nil
}

// find returns the last kept line that contains s.
func (t *tailBuffer) find(s string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.lines) - 1; i >= 0; i-- {
		if strings.Contains(t.lines[i], s) {
			return t.lines[i]
		}
	}
	return ""
}

// ffprobeOutput is the part of ffprobe's JSON that Probe reads.
type ffprobeOutput struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		Size       string `json:"size"`
	} `json:"format"`
	Streams []struct {
		CodecType    string `json:"codec_type"`
		CodecName    string `json:"codec_name"`
		Width        int    `json:"width"`
		Height       int    `json:"height"`
		AvgFrameRate string `json:"avg_frame_rate"`
		NbFrames     string `json:"nb_frames"`
		SampleRate   string `json:"sample_rate"`
		Channels     int    `json:"channels"`
		Duration     string `json:"duration"`
		Disposition  struct {
			AttachedPic int `json:"attached_pic"`
		} `json:"disposition"`
	} `json:"streams"`
}

// Probe describes a media file. A file ffprobe cannot read, or one with
// neither video nor audio, is ErrBadInput.
func Probe(ctx context.Context, env Env, path string) (Media, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.ffprobe(), "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "--", path)
	var stderr tailBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return Media{}, fmt.Errorf("probe %s: %w", path, ctx.Err())
		}
		msg := stderr.lastError()
		if msg == "" {
			msg = err.Error()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return Media{}, fmt.Errorf("%w: the input is not a media file ffmpeg can read: %s", ErrBadInput, msg)
		}
		return Media{}, fmt.Errorf("probe %s: %s", path, msg)
	}
	var po ffprobeOutput
	if err := json.Unmarshal(out, &po); err != nil {
		return Media{}, fmt.Errorf("probe %s: %w", path, err)
	}
	m := Media{Path: path, Format: po.Format.FormatName}
	m.Duration = parseSeconds(po.Format.Duration)
	fmt.Sscan(po.Format.Size, &m.Size) //nolint:errcheck // 0 when missing
	for _, s := range po.Streams {
		switch {
		case s.CodecType == "video" && m.Video == nil && s.Disposition.AttachedPic == 0:
			v := &VideoStream{Codec: s.CodecName, Width: s.Width, Height: s.Height, FPS: parseRate(s.AvgFrameRate)}
			fmt.Sscan(s.NbFrames, &v.Frames) //nolint:errcheck // 0 when missing
			m.Video = v
		case s.CodecType == "audio" && m.Audio == nil:
			a := &AudioStream{Codec: s.CodecName, Channels: s.Channels}
			fmt.Sscan(s.SampleRate, &a.SampleRate) //nolint:errcheck // 0 when missing
			m.Audio = a
		}
		if m.Duration == 0 {
			m.Duration = parseSeconds(s.Duration)
		}
	}
	if m.Video == nil && m.Audio == nil {
		return Media{}, fmt.Errorf("%w: the input has neither a video nor an audio stream", ErrBadInput)
	}
	return m, nil
}

func parseSeconds(s string) time.Duration {
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil || f < 0 {
		return 0
	}
	return time.Duration(f * float64(time.Second))
}

func parseRate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	var n, d float64
	if _, err := fmt.Sscan(num, &n); err != nil {
		return 0
	}
	if !ok {
		return n
	}
	if _, err := fmt.Sscan(den, &d); err != nil || d == 0 {
		return 0
	}
	return n / d
}

// DecodeParams decodes a task's params into v strictly: an unknown field
// or a wrong type is ErrBadInput, naming the field.
func DecodeParams(params json.RawMessage, v any) error {
	if len(bytes.TrimSpace(params)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: template: %v", ErrBadInput, strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
