package web

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mps-dev/mps/transcoder"
)

// ladderLister is what the ladder metrics need of a LadderControl; the
// transcoder's Manager has it.
type ladderLister interface {
	List() []transcoder.LadderInfo
}

// ladderCollector reports each running ladder's FFmpeg progress at scrape
// time, so a ladder's series go away with it.
type ladderCollector struct {
	ladders ladderLister

	up       *prometheus.Desc
	fps      *prometheus.Desc
	speed    *prometheus.Desc
	frames   *prometheus.Desc
	dropped  *prometheus.Desc
	dup      *prometheus.Desc
	restarts *prometheus.Desc
}

func newLadderCollector(l ladderLister) *ladderCollector {
	per := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"stream", "template"}, nil)
	}
	return &ladderCollector{
		ladders:  l,
		up:       per("mps_ladder_up", "1 while the ladder's FFmpeg child runs, 0 while it starts again or has failed."),
		fps:      per("mps_ladder_frames_per_second", "Frames the ladder encodes per second, from FFmpeg's progress report."),
		speed:    per("mps_ladder_speed_ratio", "Encoding speed as a multiple of real time; below 1 the ladder falls behind the live source."),
		frames:   per("mps_ladder_frames_total", "Frames encoded by the ladder's current FFmpeg child."),
		dropped:  per("mps_ladder_dropped_frames_total", "Frames FFmpeg dropped in the ladder's current child."),
		dup:      per("mps_ladder_duplicated_frames_total", "Frames FFmpeg duplicated in the ladder's current child."),
		restarts: per("mps_ladder_restarts_total", "Unexpected exits of the ladder's FFmpeg child, each followed by a restart."),
	}
}

// Describe implements prometheus.Collector.
func (c *ladderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.fps, c.speed, c.frames, c.dropped, c.dup, c.restarts} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ladderCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.ladders.List() {
		metric := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, t, v, l.Source, l.Template)
		}
		up := 0.0
		if l.State == transcoder.StateRunning {
			up = 1
		}
		metric(c.up, prometheus.GaugeValue, up)
		metric(c.fps, prometheus.GaugeValue, l.Progress.FPS)
		metric(c.speed, prometheus.GaugeValue, l.Progress.Speed)
		metric(c.frames, prometheus.CounterValue, float64(l.Progress.Frame))
		metric(c.dropped, prometheus.CounterValue, float64(l.Progress.DropFrames))
		metric(c.dup, prometheus.CounterValue, float64(l.Progress.DupFrames))
		metric(c.restarts, prometheus.CounterValue, float64(l.Restarts))
	}
}
