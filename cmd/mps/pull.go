package main

import (
	"fmt"
	"log/slog"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/pull"
	"github.com/mps-dev/mps/stream"
)

// startPull starts the pull sources of cfg.Pull.Sources and returns the
// manager, which also takes pulls started through the API (hand it to
// web.Config.Pulls). Pulls go through the same application policy,
// admission and publish hooks as publishers, without a stream key. Close
// the manager on shutdown, before the hub. A source that fails to start
// stops the server with the reason; one that cannot be reached is only
// retried with backoff.
func startPull(cfg *config.Config, hub *stream.Hub, admit auth.Admitter, onPublish func(auth.PublishInfo), log *slog.Logger) (*pull.Manager, error) {
	m := &pull.Manager{
		Hub:         hub,
		Policy:      authPolicy(cfg.Applications),
		Admit:       admit,
		OnPublish:   onPublish,
		MinBackoff:  cfg.Pull.BackoffMin,
		MaxBackoff:  cfg.Pull.BackoffMax,
		StableAfter: cfg.Pull.StableAfter,
		ReadTimeout: cfg.Pull.ReadTimeout,
		Logger:      log,
	}
	for i, s := range cfg.Pull.Sources {
		if s.OnDemand {
			m.Close()
			return nil, fmt.Errorf("pull.sources[%d] (%s): on_demand pulls are not supported yet", i, s.Name)
		}
		src := pull.Source{Name: s.Name, URL: s.URL, RTSPTransport: s.RTSPTransport}
		if _, err := m.Start(src, pull.OriginConfig); err != nil {
			m.Close()
			return nil, fmt.Errorf("pull.sources[%d] (%s): %w", i, s.Name, err)
		}
	}
	return m, nil
}
