package main

import (
	"log/slog"
	"slices"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/stream"
)

// hubConfig maps the hub section onto stream.HubConfig. A grace period of
// 0 in the file means none, which the hub spells as a negative value.
func hubConfig(c config.Hub, log *slog.Logger) stream.HubConfig {
	grace := c.GracePeriod
	if grace == 0 {
		grace = -1
	}
	return stream.HubConfig{
		GracePeriod:   grace,
		ReaderQueue:   c.ReaderQueue,
		GOPCacheLimit: c.GOPCacheLimit,
		Logger:        log,
	}
}

func packagerConfig(c config.Packager, log *slog.Logger) packager.Config {
	return packager.Config{
		SegmentDuration:  c.SegmentDuration,
		PartDuration:     c.PartDuration,
		PlaylistSegments: c.PlaylistSegments,
		Linger:           c.Linger,
		DVRWindow:        c.DVRWindow,
		Logger:           log,
	}
}

// authPolicy maps the applications onto the publish policy.
func authPolicy(apps []config.Application) *auth.Policy {
	p := &auth.Policy{Apps: make([]auth.App, 0, len(apps))}
	for _, a := range apps {
		p.Apps = append(p.Apps, auth.App{
			Name:                    a.Name,
			Keys:                    slices.Clone(a.Keys),
			SigningSecret:           a.SigningSecret,
			AllowLoopbackWithoutKey: a.AllowLoopbackWithoutKey,
			Takeover:                a.Takeover,
			AllowLadderParam:        a.AllowLadderParam,
			AllowRecordParam:        a.AllowRecordParam,
		})
	}
	return p
}
