package main

import (
	"log/slog"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/rtsp"
	"github.com/mps-dev/mps/stream"
)

// startRTSP starts the RTSP listener when cfg enables it, and returns nil
// otherwise. Publishers go through the same key policy, admission and
// publish hooks as RTMP's; RTSP players are hub readers of kind "rtsp".
// Close the returned server on shutdown.
func startRTSP(cfg *config.Config, hub *stream.Hub, admit auth.Admitter, onPublish func(auth.PublishInfo), log *slog.Logger) (*rtsp.Server, error) {
	if !cfg.RTSP.Enabled {
		return nil, nil
	}
	s := &rtsp.Server{
		Addr:        cfg.RTSP.Address,
		UDPRTPAddr:  cfg.RTSP.UDPRTPAddress,
		UDPRTCPAddr: cfg.RTSP.UDPRTCPAddress,
		Hub:         hub,
		Auth:        authPolicy(cfg.Applications),
		ReadTimeout: cfg.RTSP.ReadTimeout,
		Admit:       admit,
		OnPublish:   onPublish,
		Logger:      log,
	}
	if err := s.Initialize(); err != nil {
		return nil, err
	}
	return s, nil
}
