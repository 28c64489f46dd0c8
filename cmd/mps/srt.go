package main

import (
	"log/slog"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/srt"
	"github.com/mps-dev/mps/stream"
)

// startSRT starts the SRT listener when cfg enables it, and returns nil
// otherwise. Publishers go through the same key policy, admission and
// publish hooks as RTMP's.
func startSRT(cfg *config.Config, hub *stream.Hub, admit auth.Admitter, onPublish func(auth.PublishInfo), log *slog.Logger) (*srt.Server, error) {
	if !cfg.SRT.Enabled {
		return nil, nil
	}
	s := &srt.Server{
		Addr:        cfg.SRT.Address,
		Hub:         hub,
		Auth:        authPolicy(cfg.Applications),
		Passphrases: cfg.SRT.PassphraseMap(),
		Latency:     cfg.SRT.Latency,
		Admit:       admit,
		OnPublish:   onPublish,
		Logger:      log,
	}
	if err := s.Initialize(); err != nil {
		return nil, err
	}
	return s, nil
}
