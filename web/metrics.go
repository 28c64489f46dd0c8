package web

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mps-dev/mps/stream"
)

// newRegistry returns a registry with the hub's stream metrics, the
// ladders' progress when ladders can list themselves, and the Go runtime
// and process metrics.
func newRegistry(hub *stream.Hub, ladders LadderControl, cl ClusterView) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newHubCollector(hub),
	}
	if l, ok := ladders.(ladderLister); ok {
		cs = append(cs, newLadderCollector(l))
	}
	if cl != nil {
		cs = append(cs, newClusterCollector(cl))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register %T: %w", c, err)
		}
	}
	return reg, nil
}

// hubCollector reads the hub's stream snapshots at scrape time, so a
// stream's series go away with the stream.
type hubCollector struct {
	hub *stream.Hub

	streams  *prometheus.Desc
	up       *prometheus.Desc
	bitrate  *prometheus.Desc
	fps      *prometheus.Desc
	readers  *prometheus.Desc
	bytesIn  *prometheus.Desc
	bytesOut *prometheus.Desc
	uptime   *prometheus.Desc
}

func newHubCollector(hub *stream.Hub) *hubCollector {
	per := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"stream"}, nil)
	}
	return &hubCollector{
		hub:      hub,
		streams:  prometheus.NewDesc("mps_streams", "Streams in the hub, live or waiting for their publisher to reconnect.", nil, nil),
		up:       per("mps_stream_up", "1 while the stream's publisher is connected, 0 while the stream waits for it to reconnect."),
		bitrate:  per("mps_stream_bitrate_bits_per_second", "Incoming bitrate of the stream, all tracks, measured over the last second of media."),
		fps:      per("mps_stream_frames_per_second", "Frame rate of the stream's first video track."),
		readers:  per("mps_stream_readers", "Readers attached to the stream (packager, players and other consumers)."),
		bytesIn:  per("mps_stream_bytes_in_total", "Bytes received from the stream's publishers."),
		bytesOut: per("mps_stream_bytes_out_total", "Bytes of the stream delivered to players."),
		uptime:   per("mps_stream_uptime_seconds", "Seconds since the stream was created."),
	}
}

// Describe implements prometheus.Collector.
func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.streams, c.up, c.bitrate, c.fps, c.readers, c.bytesIn, c.bytesOut, c.uptime} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	streams := c.hub.Streams()
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(len(streams)))
	for _, s := range streams {
		in := s.Info()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, in.Name)
		}
		up := 0.0
		if in.State == stream.StateLive {
			up = 1
		}
		gauge(c.up, up)
		gauge(c.bitrate, float64(in.Bitrate))
		for _, t := range in.Tracks {
			if t.Kind == "video" {
				gauge(c.fps, t.FPS)
				break
			}
		}
		gauge(c.readers, float64(in.ReaderCount))
		gauge(c.uptime, in.UptimeSeconds)
		ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(in.BytesIn), in.Name)
		ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(in.BytesOut), in.Name)
	}
}

// promLogger sends promhttp's errors to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Error("metrics", "error", fmt.Sprint(v...)) }
