package vod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mps-dev/mps/fflog"
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
	stderr := &fflog.Tail{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	progress := env.progress()
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
		msg := stderr.LastError()
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("ffmpeg: %s", msg)
	}
	// ffmpeg decodes what a cut-off file holds and still succeeds: an
	// output made from part of the input is a failure, not a result.
	if line := stderr.Find("partial file"); line != "" {
		return fmt.Errorf("%w: the input is truncated: ffmpeg: %s", ErrBadInput, line)
	}
	progress(1)
	return nil
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
	var stderr fflog.Tail
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return Media{}, fmt.Errorf("probe %s: %w", path, ctx.Err())
		}
		msg := stderr.LastError()
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
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if path := errorPath(reflect.TypeOf(v), params); path != "" {
			msg = path + ": " + msg
		}
		return fmt.Errorf("%w: template: %s", ErrBadInput, msg)
	}
	return nil
}

// errorPath finds the field of raw that makes decoding it into a value of
// type t fail, as a dotted path such as "video.bitrate", by decoding each
// field alone; "" when it cannot tell.
func errorPath(t reflect.Type, raw json.RawMessage) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return ""
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		f, ok := jsonField(t, k)
		if !ok {
			return k
		}
		dec := json.NewDecoder(bytes.NewReader(obj[k]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(reflect.New(f).Interface()); err != nil {
			if sub := errorPath(f, obj[k]); sub != "" {
				return k + "." + sub
			}
			return k
		}
	}
	return ""
}

// jsonField returns the type of the field of struct t that JSON name
// decodes into, looking into embedded structs.
func jsonField(t reflect.Type, name string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && tag == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if typ, ok := jsonField(ft, name); ok {
					return typ, true
				}
			}
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if strings.EqualFold(tag, name) {
			return f.Type, true
		}
	}
	return nil, false
}
