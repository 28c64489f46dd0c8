package main

import (
	"log/slog"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/webrtc"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/web"
)

// startWebRTC opens the ICE ports of WHIP ingest and WHEP playback when
// webrtc.enabled is set. It returns the handler for web.Config.WebRTC (an
// untyped nil when WebRTC is off, so the routes answer 501) and the
// function that ends every session and closes the ports (never nil).
func startWebRTC(cfg *config.Config, hub *stream.Hub, admit auth.Admitter, onPublish func(auth.PublishInfo),
	log *slog.Logger) (web.WebRTC, func(), error) {
	if !cfg.WebRTC.Enabled {
		return nil, func() {}, nil
	}
	s := &webrtc.Server{
		Hub:        hub,
		Auth:       authPolicy(cfg.Applications),
		Admit:      admit,
		OnPublish:  onPublish,
		UDPAddr:    cfg.WebRTC.UDPAddress,
		TCPAddr:    cfg.WebRTC.TCPAddress,
		NAT1To1IPs: cfg.WebRTC.NAT1To1IPList(),
		// Browsers that send VP8 get it transcoded to H.264, for HLS.
		VP8FFmpeg: cfg.Transcoder.FFmpeg,
		Logger:    log,
	}
	if cfg.WebRTC.AACToOpus {
		s.FFmpeg = cfg.Transcoder.FFmpeg
	}
	if err := s.Initialize(); err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}
