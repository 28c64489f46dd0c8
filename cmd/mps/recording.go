package main

import (
	"fmt"
	"log/slog"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/stream"
	"github.com/prometheus/client_golang/prometheus"
)

// startRecorder starts the recorder of cfg.Recording on hub: rules pick
// the streams that record from their first frame.
func startRecorder(cfg *config.Config, hub *stream.Hub, ladders recorder.Ladders, bus *events.Bus, mirror func(path, rel string) error,
	log *slog.Logger) (*recorder.Recorder, error) {
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
		Mirror:          mirror,
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
func recordParam(rec *recorder.Recorder, log *slog.Logger) func(auth.PublishInfo) {
	return func(pi auth.PublishInfo) {
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

// registerRecorderMetrics adds the recorder's counters to reg.
func registerRecorderMetrics(reg prometheus.Registerer, rec *recorder.Recorder) error {
	gauge := func(name, help string, v func(recorder.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(rec.Stats()) })
	}
	counter := func(name, help string, v func(recorder.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(rec.Stats())) })
	}
	for _, c := range []prometheus.Collector{
		gauge("mps_recordings_writing", "Archives being written now.", func(s recorder.Stats) float64 { return float64(s.Writing) }),
		counter("mps_recording_bytes_written_total", "Bytes written to archives.", func(s recorder.Stats) uint64 { return s.BytesWritten }),
		counter("mps_recording_archives_total", "Archives completed.", func(s recorder.Stats) uint64 { return s.Archives }),
		counter("mps_recording_failures_total", "Write errors that stopped a recording until it could resume.", func(s recorder.Stats) uint64 { return s.Failures }),
		counter("mps_recording_deleted_total", "Archives deleted by retention or through the API.", func(s recorder.Stats) uint64 { return s.Deleted }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("recording metrics: %w", err)
		}
	}
	return nil
}
