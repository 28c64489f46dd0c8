package vod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/summary"
)

// SummaryReportFile is the report a summary task writes to its OutDir.
const SummaryReportFile = "summary.json"

// Summary methods.
const (
	SummaryExtractive = "extractive"
	SummaryLLM        = "llm"
)

const (
	summaryMaxSentences = 50
	summaryMaxKeywords  = 100
	summaryMaxChapter   = 24 * 3600.0
	// summaryDefaultEngine transcribes inputs no earlier captions task
	// transcribed.
	summaryDefaultEngine = "pocketsphinx"
)

// SummaryParams are the params of a summary task.
type SummaryParams struct {
	// Method is extractive (default: sentences, keywords and chapters
	// picked from the transcript, no model) or llm (the configured
	// chat-completions endpoint writes them).
	Method string `json:"method,omitempty"`
	// MaxSentences is how many sentences an extractive summary keeps,
	// 1..50; default 3.
	MaxSentences int `json:"max_sentences,omitempty"`
	// MaxKeywords caps the keywords, 1..100; default 10.
	MaxKeywords int `json:"max_keywords,omitempty"`
	// MinChapter is the shortest extractive chapter in seconds, 1..86400;
	// default 60.
	MinChapter float64 `json:"min_chapter,omitempty"`
	// Engine is the speech engine that transcribes the input when no
	// earlier captions task of the job did; default pocketsphinx.
	Engine string `json:"engine,omitempty"`
}

// SummaryPresets returns the built-in summary templates, name -> params
// JSON.
func SummaryPresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"summary-extractive": json.RawMessage(`{"method":"extractive","max_sentences":3,"max_keywords":10,"min_chapter":60}`),
		"summary-llm":        json.RawMessage(`{"method":"llm"}`),
	}
}

// Summary returns the runner of summary tasks (TaskSummary): it sums up
// the transcript of the job's latest captions task (or, without one, the
// transcript its own speech engine makes of the input) with a summary,
// keywords and chapters, extractive or by an LLM. It writes summary.json
// (Kind "report", a summary.Result) and puts the summary, keywords,
// chapters and method in that output's Data.
func Summary() Runner { return summaryRunner{} }

type summaryRunner struct{}

func (summaryRunner) Run(ctx context.Context, env Env, in Media, params json.RawMessage) ([]Output, error) {
	return runSummary(ctx, env, in, params)
}

// CheckParams decodes and checks params as Run does.
func (summaryRunner) CheckParams(params json.RawMessage) error {
	_, err := DecodeSummaryParams(params)
	return err
}

// DecodeSummaryParams decodes params strictly, checks them and fills in
// the defaults. Every error wraps ErrBadInput and names its field.
func DecodeSummaryParams(params json.RawMessage) (SummaryParams, error) {
	var p SummaryParams
	if err := DecodeParams(params, &p); err != nil {
		return p, err
	}
	switch p.Method {
	case "":
		p.Method = SummaryExtractive
	case SummaryExtractive, SummaryLLM:
	default:
		return p, fmt.Errorf("%w: method %q: must be extractive or llm", ErrBadInput, p.Method)
	}
	if p.MaxSentences == 0 {
		p.MaxSentences = summary.DefaultMaxSentences
	}
	if p.MaxSentences < 1 || p.MaxSentences > summaryMaxSentences {
		return p, fmt.Errorf("%w: max_sentences %d: must be 1..%d", ErrBadInput, p.MaxSentences, summaryMaxSentences)
	}
	if p.MaxKeywords == 0 {
		p.MaxKeywords = summary.DefaultMaxKeywords
	}
	if p.MaxKeywords < 1 || p.MaxKeywords > summaryMaxKeywords {
		return p, fmt.Errorf("%w: max_keywords %d: must be 1..%d", ErrBadInput, p.MaxKeywords, summaryMaxKeywords)
	}
	if p.MinChapter == 0 {
		p.MinChapter = summary.DefaultMinChapter.Seconds()
	}
	if p.MinChapter < 1 || p.MinChapter > summaryMaxChapter {
		return p, fmt.Errorf("%w: min_chapter %g: must be 1..%g seconds", ErrBadInput, p.MinChapter, summaryMaxChapter)
	}
	p.Engine = strings.TrimSpace(p.Engine)
	if p.Engine == "" {
		p.Engine = summaryDefaultEngine
	}
	return p, nil
}

func runSummary(ctx context.Context, env Env, in Media, raw json.RawMessage) ([]Output, error) {
	log := env.logger()
	progress := env.progress()
	p, err := DecodeSummaryParams(raw)
	if err != nil {
		return nil, err
	}
	if p.Method == SummaryLLM && env.Chat == nil {
		return nil, fmt.Errorf("%w: method llm: no chat endpoint configured (ai.chat.url in the config)", ErrBadInput)
	}

	tr, source, err := previousTranscript(env)
	if err != nil {
		return nil, err
	}
	if tr == nil {
		engine, err := summaryEngine(env, p.Engine)
		if err != nil {
			return nil, err
		}
		if in.Audio == nil {
			return nil, fmt.Errorf("%w: summary: the input has no audio stream to transcribe (and no earlier captions task of the job made a transcript)", ErrBadInput)
		}
		log.Debug("summary: transcribing", "engine", p.Engine, "input", in.Path)
		tr, err = engine.Transcribe(ctx, in.Path, func(f float64) { progress(0.9 * min(max(f, 0), 1)) })
		if err != nil {
			if errors.Is(err, speech.ErrNoAudio) {
				return nil, fmt.Errorf("%w: summary: %v", ErrBadInput, err)
			}
			return nil, fmt.Errorf("summary: transcribe with %s: %w", p.Engine, err)
		}
		if tr == nil {
			tr = &speech.Transcript{}
		}
		source = p.Engine
	}
	progress(0.9)

	var res summary.Result
	switch p.Method {
	case SummaryLLM:
		log.Debug("summary: asking the chat endpoint", "url", env.Chat.URL, "model", env.Chat.Model)
		start := time.Now()
		res, err = env.Chat.Summarize(ctx, tr)
		if err != nil {
			return nil, fmt.Errorf("summary: llm: %w", err)
		}
		log.Debug("summary: the chat endpoint answered", "took", time.Since(start))
	default:
		res = summary.Extractive(tr, summary.Options{
			MaxSentences: p.MaxSentences,
			MaxKeywords:  p.MaxKeywords,
			MinChapter:   time.Duration(p.MinChapter * float64(time.Second)),
		})
	}
	if len(res.Keywords) > p.MaxKeywords {
		res.Keywords = res.Keywords[:p.MaxKeywords]
	}
	if res.Keywords == nil {
		res.Keywords = []string{}
	}
	if res.Chapters == nil {
		res.Chapters = []summary.Chapter{}
	}

	body, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	body = append(body, '\n')
	if err := os.WriteFile(filepath.Join(env.OutDir, SummaryReportFile), body, 0o644); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	progress(1)
	data := map[string]any{
		"method":   res.Method,
		"summary":  res.Summary,
		"keywords": res.Keywords,
		"chapters": res.Chapters,
		"source":   source,
	}
	if res.Model != "" {
		data["model"] = res.Model
	}
	return []Output{{
		Kind: "report",
		Path: SummaryReportFile,
		MIME: "application/json",
		Size: int64(len(body)),
		Data: data,
	}}, nil
}

// previousTranscript reads the transcript of the job's latest captions
// task that made one; nil when there is none. source says where it came
// from ("captions").
func previousTranscript(env Env) (*speech.Transcript, string, error) {
	for _, pt := range slices.Backward(env.Previous) {
		if pt.Type != TaskCaptions {
			continue
		}
		for _, o := range pt.Outputs {
			if o.Kind != "transcript" {
				continue
			}
			path := filepath.Join(pt.Dir, filepath.FromSlash(o.Path))
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, "", fmt.Errorf("summary: read the captions task's transcript: %w", err)
			}
			var tr speech.Transcript
			if err := json.Unmarshal(b, &tr); err != nil {
				return nil, "", fmt.Errorf("summary: the captions task's transcript %s: %w", o.Path, err)
			}
			return &tr, TaskCaptions, nil
		}
	}
	return nil, "", nil
}

// summaryEngine returns the named speech engine.
func summaryEngine(env Env, name string) (speech.Engine, error) {
	if e, ok := env.Speech[name]; ok && e != nil {
		return e, nil
	}
	known := make([]string, 0, len(env.Speech))
	for n := range env.Speech {
		known = append(known, n)
	}
	slices.Sort(known)
	if len(known) == 0 {
		return nil, fmt.Errorf("%w: engine %q: no speech engine is configured", ErrBadInput, name)
	}
	return nil, fmt.Errorf("%w: engine %q: unknown speech engine (known: %s)", ErrBadInput, name, strings.Join(known, ", "))
}
