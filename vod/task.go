// Package vod is MPS's offline half: jobs of tasks (transcode, adaptive,
// snapshots, enhancement, quality, ...) run on a persistent queue with the
// same templates, transcoder and packager as the live side.
package vod

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/summary"
	"github.com/mps-dev/mps/transcoder"
)

// ErrBadInput marks a failure that retrying cannot fix: a corrupt or
// truncated file, an input without the stream a task needs, an unknown
// template or field. Jobs failing with it are not retried.
var ErrBadInput = errors.New("bad input")

// Task types.
const (
	TaskTranscode  = "transcode"
	TaskAdaptive   = "adaptive"
	TaskSnapshot   = "snapshot"
	TaskSprite     = "sprite"
	TaskAnimated   = "animated"
	TaskEnhance    = "enhance"
	TaskQuality    = "quality"
	TaskCaptions   = "captions"
	TaskHighlights = "highlights"
	TaskSummary    = "summary"
	TaskQC         = "qc"
)

// Media describes a probed input file.
type Media struct {
	Path     string        `json:"path"`
	Duration time.Duration `json:"duration"`
	Format   string        `json:"format"`
	Video    *VideoStream  `json:"video,omitempty"`
	Audio    *AudioStream  `json:"audio,omitempty"`
	Size     int64         `json:"size"`
}

// VideoStream is the first video stream of a file.
type VideoStream struct {
	Codec  string  `json:"codec"`
	Width  int     `json:"width"`
	Height int     `json:"height"`
	FPS    float64 `json:"fps"`
	Frames int64   `json:"frames,omitempty"`
}

// AudioStream is the first audio stream of a file.
type AudioStream struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

// Env is what a task runs with.
type Env struct {
	FFmpeg  string // binary, default "ffmpeg"
	FFprobe string // binary, default "ffprobe"
	Caps    *transcoder.Capabilities
	// OutDir is the task's output folder; it exists and is empty.
	OutDir string
	// Progress receives the task's progress from 0 to 1; never nil.
	Progress func(fraction float64)
	Logger   *slog.Logger
	// Speech are the recognition engines by name ("pocketsphinx" always).
	Speech map[string]speech.Engine
	// Chat is the chat-completions endpoint of LLM summaries; nil when
	// none is configured.
	Chat *summary.Chat
	// Previous are the job's earlier tasks that succeeded, in order.
	Previous []PreviousTask
}

// logger is Logger, or one that discards.
func (e Env) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

// progress is Progress, or a function that ignores it.
func (e Env) progress() func(float64) {
	if e.Progress == nil {
		return func(float64) {}
	}
	return e.Progress
}

// PreviousTask is the result of an earlier task of the job.
type PreviousTask struct {
	Type string
	// Dir is its output folder.
	Dir string
	// Outputs are its outputs, with Path relative to Dir.
	Outputs []Output
}

// Output is one file a task made.
type Output struct {
	// Kind is video, audio, image, sprite, vtt, srt, transcript, clip,
	// playlist, manifest or report.
	Kind string `json:"kind"`
	// Path is relative to the task's output folder, with forward slashes.
	Path     string  `json:"path"`
	MIME     string  `json:"mime"`
	Size     int64   `json:"size"`
	Width    int     `json:"width,omitempty"`
	Height   int     `json:"height,omitempty"`
	Duration float64 `json:"duration,omitempty"`
	// Data carries results that are no file, such as quality scores.
	Data map[string]any `json:"data,omitempty"`
}

// Runner runs one task type. params is the task's template with the
// task's overrides applied, as JSON; a runner decodes it strictly (an
// unknown field is ErrBadInput) and validates it before running ffmpeg.
type Runner interface {
	Run(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error)
}

// checkedRunner is a runner function with the check its templates get
// when they are saved (see ParamsChecker).
type checkedRunner struct {
	RunnerFunc
	check func(params json.RawMessage) error
}

// CheckParams decodes and checks params as the runner does.
func (c checkedRunner) CheckParams(params json.RawMessage) error { return c.check(params) }

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	return f(ctx, env, in, params)
}
