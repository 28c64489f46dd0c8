package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mps-dev/mps/cluster"
	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/transcoder"
	"github.com/mps-dev/mps/vod"
)

// startJobs starts the VOD job engine of cfg.Jobs, or returns nil when it
// is disabled.
func startJobs(ctx context.Context, cfg *config.Config, caps *transcoder.Capabilities, rec *recorder.Recorder, bus *events.Bus,
	engines map[string]speech.Engine, cl *cluster.Cluster, store *objectStore, log *slog.Logger) (*vod.Engine, error) {
	jc := cfg.Jobs
	if !jc.Enabled {
		return nil, nil
	}
	workflows, err := jc.VODWorkflows()
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	var hooks []vod.Webhook
	for _, ep := range jc.Webhooks.Endpoints {
		hooks = append(hooks, vod.Webhook{URL: ep.URL, Key: ep.Key, Events: ep.Events})
	}
	workers := jc.Workers
	if !cfg.Cluster.HasRole(config.RoleWorker) {
		workers = -1 // takes submissions; the worker nodes run them
	}
	vc := vod.Config{
		DBPath:      jc.DBPath,
		Dir:         jc.Dir,
		Workers:     workers,
		JobTimeout:  jc.Timeout,
		MaxAttempts: jc.MaxAttempts,
		FFmpeg:      cfg.Transcoder.FFmpeg,
		Caps:        caps,
		Inputs: &vod.Inputs{
			MediaRoots:   jc.MediaRoots,
			Recording:    rec.ArchiveFile,
			AllowedHosts: jc.URLInputs.AllowedHosts,
			AllowPrivate: jc.URLInputs.AllowPrivate,
			MaxDownload:  jc.URLInputs.MaxSize,
			S3:           store.opener(),
			S3List:       store.lister(),
		},
		Runners:       vod.Runners(),
		Speech:        engines,
		Chat:          chatEndpoint(cfg),
		Presets:       vod.Presets(),
		Workflows:     workflows,
		WatchInterval: jc.WatchInterval,
		Bus:           bus,
		Outbox: vod.OutboxConfig{
			Timeout:     jc.Webhooks.Timeout,
			MaxAttempts: jc.Webhooks.MaxAttempts,
			BackoffMax:  jc.Webhooks.BackoffMax,
			Logger:      log,
		},
		Webhooks: hooks,
		Logger:   log,
	}
	if cl != nil {
		vc.Postgres, vc.NodeID, vc.DeadNodes = cfg.Cluster.Postgres, cl.NodeID(), cl.DeadNodes
	}
	e, err := vod.NewEngine(ctx, vc)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return e, nil
}
