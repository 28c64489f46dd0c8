package main

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/livecaptions"
	"github.com/mps-dev/mps/liveqc"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/summary"
	"github.com/mps-dev/mps/vod"
)

// speechEngines builds the speech engines of cfg's ai section: the
// built-in pocketsphinx and every configured OpenAI-compatible endpoint.
func speechEngines(cfg *config.Config, log *slog.Logger) map[string]speech.Engine {
	ffmpeg := cfg.Transcoder.FFmpeg
	engines := map[string]speech.Engine{
		config.PocketsphinxEngine: &speech.Pocketsphinx{FFmpeg: ffmpeg, ModelDir: cfg.AI.PocketsphinxModel, Logger: log},
	}
	for _, e := range cfg.AI.SpeechEngines {
		engines[e.Name] = &speech.OpenAI{EngineName: e.Name, URL: e.URL, APIKey: e.APIKey, Model: e.Model,
			Language: e.Language, Timeout: e.Timeout, FFmpeg: ffmpeg, Logger: log}
	}
	return engines
}

// chatEndpoint is the chat-completions endpoint of LLM summaries, or nil.
func chatEndpoint(cfg *config.Config) *summary.Chat {
	c := cfg.AI.Chat
	if c.URL == "" {
		return nil
	}
	return &summary.Chat{URL: c.URL, APIKey: c.APIKey, Model: c.Model, Timeout: c.Timeout}
}

// startLiveCaptions starts the live captions manager. Chunks of audio are
// as long as a segment at most (but 2 s at least, or recognition loses the
// words' context), so that captions trail by one segment plus the
// recognition time.
func startLiveCaptions(cfg *config.Config, hub *stream.Hub, engines map[string]speech.Engine, log *slog.Logger) *livecaptions.Manager {
	return livecaptions.New(livecaptions.Config{
		Hub:      hub,
		Engines:  engines,
		FFmpeg:   cfg.Transcoder.FFmpeg,
		MaxChunk: max(cfg.Packager.SegmentDuration, 2*time.Second),
		Keep:     cfg.Packager.SegmentDuration*time.Duration(cfg.Packager.PlaylistSegments) + cfg.Packager.DVRWindow + time.Minute,
		Logger:   log,
	})
}

// captionRules starts the live captions that ai.live_captions asks for
// when a stream is published.
func captionRules(cfg *config.Config, lc *livecaptions.Manager, log *slog.Logger) func(auth.PublishInfo) {
	return func(pi auth.PublishInfo) {
		r, ok := cfg.LiveCaptionRuleFor(pi.Name)
		if !ok {
			return
		}
		if _, on := lc.Info(pi.Name); on {
			return
		}
		if err := lc.Start(pi.Name, livecaptions.Options{Engine: r.Engine, Language: r.Language, Label: r.Label}); err != nil {
			log.Warn("live captions not started", "stream", pi.Name, "error", err.Error())
		}
	}
}

// liveQCRules starts the live QC that ai.live_qc asks for when a stream
// is published.
func liveQCRules(cfg *config.Config, qc *liveqc.Manager, log *slog.Logger) func(auth.PublishInfo) {
	return func(pi auth.PublishInfo) {
		r, ok := cfg.LiveQCRuleFor(pi.Name)
		if !ok || qc.Running(pi.Name) {
			return
		}
		var p vod.QCParams
		if err := json.Unmarshal(vod.QCPresets()[r.Template], &p); err != nil {
			log.Warn("live qc not started", "stream", pi.Name, "template", r.Template, "error", err.Error())
			return
		}
		if err := qc.Start(pi.Name, p); err != nil {
			log.Warn("live qc not started", "stream", pi.Name, "error", err.Error())
		}
	}
}
