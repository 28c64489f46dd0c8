package main

import (
	"fmt"
	"log/slog"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/rtmp"
	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/stream"
)

// startRecorder starts the recorder of cfg.Recording on hub: rules pick
// the streams that record from their first frame.
func startRecorder(cfg *config.Config, hub *stream.Hub, ladders recorder.Ladders, bus *events.Bus, log *slog.Logger) (*recorder.Recorder, error) {
	rc := cfg.Recording
	rec, err := recorder.New(recorder.Config{
		Hub:              hub,
		Dir:              rc.Dir,
		PathTemplate:     rc.Path,
		Format:           rc.Format,
		FragmentDuration: rc.FragmentDuration,
		Rollover:         rc.Rollover,
		Finalize:         rc.Finalize,
		Retention: recorder.Retention{
			MaxAge:         rc.Retention.MaxAge,
			MaxSize:        rc.Retention.MaxSize,
			PerApplication: rc.Retention.Scope == config.RetentionScopeApplication,
			Interval:       rc.Retention.Interval,
		},
		Rule: func(name string) (recorder.Options, bool) {
			rule, ok := cfg.RecordingRuleFor(name)
			if !ok {
				return recorder.Options{}, false
			}
			return recorder.Options{Renditions: rule.Renditions, Format: rule.Format}, true
		},
		Ladders:         ladders,
		Events:          bus,
		SegmentDuration: cfg.Packager.SegmentDuration,
		Logger:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	return rec, nil
}

// recordParam applies a publisher's record parameter (kept only where
// its application allows it): record=1 starts recording the stream,
// record=0 stops a recording that a rule started.
func recordParam(rec *recorder.Recorder, log *slog.Logger) func(rtmp.PublishInfo) {
	return func(pi rtmp.PublishInfo) {
		switch pi.Params.Get(auth.ParamRecord) {
		case "1", "true", "yes", "on":
			if _, err := rec.StartRecordingBy(pi.Name, recorder.Options{}, "param"); err != nil {
				log.Warn("recording not started", "stream", pi.Name, "error", err)
			}
		case "0", "false", "no", "off":
			if st, ok := rec.Status(pi.Name); ok && st.Trigger == "rule" {
				if _, err := rec.StopRecording(pi.Name); err != nil {
					log.Warn("recording not stopped", "stream", pi.Name, "error", err)
				}
			}
		}
	}
}
