package vod

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HighlightsReportFile is the report a highlights task writes to its
// OutDir.
const HighlightsReportFile = "highlights.json"

// HighlightsParams are the params of a highlights task. Zero values take
// the defaults.
type HighlightsParams struct {
	// Top is how many moments to find, 1..100; default 5. Fewer are found
	// when the input has fewer that stand out.
	Top int `json:"top,omitempty"`
	// MinDuration and MaxDuration bound a moment's length in seconds;
	// default 3 and 10.
	MinDuration float64 `json:"min_duration,omitempty"`
	MaxDuration float64 `json:"max_duration,omitempty"`
	// Clips also cuts each moment to an MP4 clip (clip-01.mp4 for the
	// best, ...), re-encoded with H.264 (libx264 veryfast) and AAC for
	// frame-accurate cuts. An input without video gets no clips.
	Clips bool `json:"clips,omitempty"`
	// SceneThreshold is the scdet score (0..100) from which a frame is a
	// scene change; default 10.
	SceneThreshold float64 `json:"scene_threshold,omitempty"`
	// SceneWeight and LoudnessWeight weigh scene changes against loud
	// audio in a moment's score (each 0..1, not both 0); default 0.5
	// each. An input without video (or audio) is scored on the other
	// alone.
	SceneWeight    *float64 `json:"scene_weight,omitempty"`
	LoudnessWeight *float64 `json:"loudness_weight,omitempty"`
}

// Highlights defaults and tuning.
const (
	hlDefaultTop       = 5
	hlDefaultMin       = 3.0
	hlDefaultMax       = 10.0
	hlDefaultThreshold = 10.0
	hlDefaultWeight    = 0.5
	// hlBin is the resolution of the analysis, in seconds (ebur128's
	// metadata frames are 100 ms).
	hlBin = 0.1
	// hlSceneSpan is the window, in bins either side, that scene changes
	// are counted over, and hlSceneSaturate how many full-strength
	// changes in it make a density of 1.
	hlSceneSpan     = 5
	hlSceneSaturate = 2.0
	// hlLoudRange is how far, in LU, momentary loudness must rise above
	// the input's median for a loudness of 1.
	hlLoudRange = 15.0
	// hlFloorLUFS is the loudness that silence counts as.
	hlFloorLUFS = -70.0
	// hlMinInterest is the least peak interest a moment needs, and
	// hlKeep the fraction of its peak that its neighbours need to join
	// it.
	hlMinInterest = 0.1
	hlKeep        = 0.4
	// hlMinScore is the least score a moment needs (what is left around
	// a better moment's shoulders scores less).
	hlMinScore = 0.05
	// hlReasonShare is the share of a moment's score a cause needs to be
	// named in its reason.
	hlReasonShare = 0.3
)

// HighlightsPresets returns the built-in highlights presets.
func HighlightsPresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"highlights-default": json.RawMessage(`{"top":5,"min_duration":3,"max_duration":10,"clips":false,` +
			`"scene_threshold":10,"scene_weight":0.5,"loudness_weight":0.5}`),
	}
}

func (p *HighlightsParams) applyDefaults() {
	if p.Top == 0 {
		p.Top = hlDefaultTop
	}
	if p.MinDuration == 0 {
		p.MinDuration = hlDefaultMin
	}
	if p.MaxDuration == 0 {
		p.MaxDuration = max(hlDefaultMax, p.MinDuration)
	}
	if p.SceneThreshold == 0 {
		p.SceneThreshold = hlDefaultThreshold
	}
	if p.SceneWeight == nil {
		w := hlDefaultWeight
		p.SceneWeight = &w
	}
	if p.LoudnessWeight == nil {
		w := hlDefaultWeight
		p.LoudnessWeight = &w
	}
}

func (p *HighlightsParams) validate() error {
	if p.Top < 1 || p.Top > 100 {
		return fmt.Errorf("%w: top %d: must be 1..100", ErrBadInput, p.Top)
	}
	if !(p.MinDuration >= 0.5 && p.MinDuration <= 600) {
		return fmt.Errorf("%w: min_duration %g: must be 0.5..600 seconds", ErrBadInput, p.MinDuration)
	}
	if !(p.MaxDuration >= p.MinDuration && p.MaxDuration <= 600) {
		return fmt.Errorf("%w: max_duration %g: must be min_duration (%g)..600 seconds", ErrBadInput, p.MaxDuration, p.MinDuration)
	}
	if !(p.SceneThreshold > 0 && p.SceneThreshold <= 100) {
		return fmt.Errorf("%w: scene_threshold %g: must be more than 0 and at most 100", ErrBadInput, p.SceneThreshold)
	}
	for _, w := range []struct {
		name string
		v    float64
	}{{"scene_weight", *p.SceneWeight}, {"loudness_weight", *p.LoudnessWeight}} {
		if !(w.v >= 0 && w.v <= 1) {
			return fmt.Errorf("%w: %s %g: must be 0..1", ErrBadInput, w.name, w.v)
		}
	}
	if *p.SceneWeight+*p.LoudnessWeight == 0 {
		return fmt.Errorf("%w: scene_weight and loudness_weight: not both 0", ErrBadInput)
	}
	return nil
}

func decodeHighlightsParams(raw json.RawMessage) (HighlightsParams, error) {
	var p HighlightsParams
	if err := DecodeParams(raw, &p); err != nil {
		return p, err
	}
	p.applyDefaults()
	return p, p.validate()
}

// Highlight is one moment of a highlights report.
type Highlight struct {
	// Rank is 1 for the best moment.
	Rank  int     `json:"rank"`
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	// Duration is End - Start, in seconds.
	Duration float64 `json:"duration"`
	// Score is 0..1: the moment's mean interest (scene-change density and
	// loudness above the input's median, weighed).
	Score float64 `json:"score"`
	// Reason is "scene changes", "loud audio" or "scene changes and loud
	// audio".
	Reason string `json:"reason"`
	// SceneChanges counts the frames inside at or over scene_threshold.
	SceneChanges int `json:"scene_changes"`
	// LoudnessAboveMedian is the moment's highest momentary loudness
	// above the input's median, in LU (0 without audio).
	LoudnessAboveMedian float64 `json:"loudness_above_median"`
	// Clip is the moment's clip file, with clips.
	Clip string `json:"clip,omitempty"`
}

// HighlightsReport is the content of highlights.json.
type HighlightsReport struct {
	Duration float64 `json:"duration"`
	// MedianLoudness is the median momentary loudness of the input's
	// non-silent audio in LUFS; absent without audio.
	MedianLoudness *float64         `json:"median_loudness,omitempty"`
	Highlights     []Highlight      `json:"highlights"`
	Params         HighlightsParams `json:"params"`
}

// Highlights returns the runner of highlights tasks (TaskHighlights): it
// finds the input's liveliest moments in one ffmpeg run (scene-change
// scores of the video by scdet, momentary loudness of the audio by
// ebur128), ranks non-overlapping moments by scene-change density and
// loudness above the input's median, and writes highlights.json (Kind
// "report", the list in Data) and, with clips, clip-01.mp4... (Kind
// "clip"). An input with only audio, or only video, is scored on what it
// has.
func Highlights() Runner { return highlightsRunner{} }

type highlightsRunner struct{}

// CheckParams decodes and checks params as Run does.
func (highlightsRunner) CheckParams(params json.RawMessage) error {
	_, err := decodeHighlightsParams(params)
	return err
}

func (highlightsRunner) Run(ctx context.Context, env Env, in Media, raw json.RawMessage) ([]Output, error) {
	log := env.logger()
	progress := env.progress()
	p, err := decodeHighlightsParams(raw)
	if err != nil {
		return nil, err
	}
	if in.Video == nil && in.Audio == nil {
		return nil, fmt.Errorf("%w: the input has neither video nor audio", ErrBadInput)
	}
	analysisShare := 1.0
	if p.Clips && in.Video != nil {
		analysisShare = 0.5
	}

	tmp, err := os.MkdirTemp(env.OutDir, ".highlights-")
	if err != nil {
		return nil, fmt.Errorf("highlights: %w", err)
	}
	defer os.RemoveAll(tmp)
	vLog, aLog := filepath.Join(tmp, "scenes.txt"), filepath.Join(tmp, "loudness.txt")
	var graph, maps []string
	if in.Video != nil {
		graph = append(graph, fmt.Sprintf("[0:v:0]scale=w='min(320,iw)':h=-2,scdet=threshold=%s,metadata=mode=print:key=%s:file=%s[hv]",
			strconv.FormatFloat(p.SceneThreshold, 'f', -1, 64), KeySceneScore, qualityFilterPath(vLog)))
		maps = append(maps, "-map", "[hv]")
	}
	if in.Audio != nil {
		graph = append(graph, fmt.Sprintf("[0:a:0]ebur128=metadata=1,ametadata=mode=print:key=%s:file=%s[ha]",
			KeyMomentary, qualityFilterPath(aLog)))
		maps = append(maps, "-map", "[ha]")
	}
	args := append([]string{"-i", in.Path, "-filter_complex", strings.Join(graph, ";")}, maps...)
	args = append(args, "-f", "null", "-")
	aEnv := env
	aEnv.Progress = func(f float64) { progress(f * analysisShare) }
	log.Debug("highlights: analysing", "graph", strings.Join(graph, ";"))
	if err := RunFFmpeg(ctx, aEnv, in.Duration, args...); err != nil {
		return nil, fmt.Errorf("highlights: %w", err)
	}
	var scenes, loud []Detection
	if in.Video != nil {
		if scenes, err = readDetectionFile(vLog, KeySceneScore); err != nil {
			return nil, fmt.Errorf("highlights: %w", err)
		}
	}
	if in.Audio != nil {
		if loud, err = readDetectionFile(aLog, KeyMomentary); err != nil {
			return nil, fmt.Errorf("highlights: %w", err)
		}
	}
	dur := in.Duration.Seconds()
	report := RankHighlights(p, dur, scenes, loud, in.Video != nil, in.Audio != nil)

	var outs []Output
	if p.Clips && in.Video != nil {
		for i := range report.Highlights {
			h := &report.Highlights[i]
			name := fmt.Sprintf("clip-%02d.mp4", i+1)
			cEnv := env
			n := float64(len(report.Highlights))
			cEnv.Progress = func(f float64) { progress(analysisShare + (1-analysisShare)*(float64(i)+f)/n) }
			if err := cutHighlight(ctx, cEnv, in, *h, filepath.Join(env.OutDir, name)); err != nil {
				return nil, fmt.Errorf("highlights: clip %d: %w", i+1, err)
			}
			fi, err := os.Stat(filepath.Join(env.OutDir, name))
			if err != nil {
				return nil, fmt.Errorf("highlights: clip %d: %w", i+1, err)
			}
			h.Clip = name
			o := Output{Kind: "clip", Path: name, MIME: "video/mp4", Size: fi.Size(), Duration: h.Duration}
			if in.Video != nil {
				o.Width, o.Height = in.Video.Width, in.Video.Height
			}
			outs = append(outs, o)
		}
	}

	body, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("highlights: %w", err)
	}
	if err := os.WriteFile(filepath.Join(env.OutDir, HighlightsReportFile), append(body, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("highlights: %w", err)
	}
	progress(1)
	log.Info("highlights: done", "moments", len(report.Highlights))
	data := map[string]any{"highlights": report.Highlights, "count": len(report.Highlights)}
	if report.MedianLoudness != nil {
		data["median_loudness"] = *report.MedianLoudness
	}
	rep := Output{Kind: "report", Path: HighlightsReportFile, MIME: "application/json", Size: int64(len(body) + 1), Data: data}
	return append([]Output{rep}, outs...), nil
}

// readDetectionFile reads the detections of key from a metadata print
// file.
func readDetectionFile(path, key string) ([]Detection, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Detection
	err = ReadDetections(f, func(d Detection) {
		if d.Key == key && d.Time >= 0 {
			out = append(out, d)
		}
	})
	return out, err
}

// cutHighlight re-encodes one moment to an MP4 clip, cut at exact frames.
func cutHighlight(ctx context.Context, env Env, in Media, h Highlight, path string) error {
	sec := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	args := []string{"-ss", sec(h.Start), "-i", in.Path, "-t", sec(h.Duration), "-map", "0:v:0"}
	if in.Audio != nil {
		args = append(args, "-map", "0:a:0", "-c:a", "aac", "-b:a", "128k")
	}
	args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
		"-movflags", "+faststart", "-sn", "-dn", "-map_metadata", "-1", path)
	return RunFFmpeg(ctx, env, time.Duration(h.Duration*float64(time.Second)), args...)
}

// RankHighlights turns per-frame scene-change scores (KeySceneScore
// detections) and momentary loudness (KeyMomentary detections, ebur128's
// 100 ms frames) into ranked, non-overlapping moments. hasVideo and
// hasAudio say which of the two the input has; a missing one does not
// count. dur is the input's duration in seconds (0: from the
// detections).
func RankHighlights(p HighlightsParams, dur float64, scenes, loud []Detection, hasVideo, hasAudio bool) HighlightsReport {
	p.applyDefaults()
	for _, d := range scenes {
		dur = max(dur, d.Time)
	}
	for _, d := range loud {
		dur = max(dur, d.Time+hlBin)
	}
	n := int(math.Ceil(dur/hlBin - 1e-9))
	report := HighlightsReport{Duration: qcRound3(dur), Highlights: []Highlight{}, Params: p}
	if n <= 0 {
		return report
	}
	binOf := func(t float64) int { return min(n-1, max(0, int(math.Floor(t/hlBin+1e-9)))) }

	// scene-change strength per bin, then its density around each bin
	cuts := make([]float64, n)
	cutCount := make([]int, n)
	for _, d := range scenes {
		if d.Value >= p.SceneThreshold {
			b := binOf(d.Time)
			cuts[b] += min(1, d.Value/(2*p.SceneThreshold))
			cutCount[b]++
		}
	}
	scene := make([]float64, n)
	for b := range n {
		sum := 0.0
		for j := max(0, b-hlSceneSpan); j <= min(n-1, b+hlSceneSpan); j++ {
			sum += cuts[j]
		}
		scene[b] = min(1, sum/hlSceneSaturate)
	}

	// momentary loudness per bin: ebur128's M of a frame covers the 400 ms
	// that end with it, centred 100 ms before the frame's start
	lufs := make([]float64, n)
	for i := range lufs {
		lufs[i] = math.Inf(-1)
	}
	var voiced []float64
	for _, d := range loud {
		b := binOf(d.Time - hlBin)
		v := max(hlFloorLUFS, d.Value)
		lufs[b] = max(lufs[b], v)
		if v > hlFloorLUFS {
			voiced = append(voiced, v)
		}
	}
	median := hlFloorLUFS
	if len(voiced) > 0 {
		slices.Sort(voiced)
		median = voiced[len(voiced)/2]
		if len(voiced)%2 == 0 {
			median = (voiced[len(voiced)/2-1] + voiced[len(voiced)/2]) / 2
		}
	}
	if hasAudio {
		m := math.Round(median*10) / 10
		report.MedianLoudness = &m
	}
	loudness := make([]float64, n)
	for b, v := range lufs {
		if !math.IsInf(v, -1) {
			loudness[b] = min(1, max(0, (v-median)/hlLoudRange))
		}
	}

	ws, wl := *p.SceneWeight, *p.LoudnessWeight
	if !hasVideo {
		ws = 0
	}
	if !hasAudio {
		wl = 0
	}
	if ws+wl == 0 {
		return report
	}
	interest := make([]float64, n)
	for b := range n {
		interest[b] = (ws*scene[b] + wl*loudness[b]) / (ws + wl)
	}

	minBins := max(1, int(math.Round(p.MinDuration/hlBin)))
	maxBins := max(minBins, int(math.Round(p.MaxDuration/hlBin)))
	if minBins > n {
		minBins = n
	}
	used := make([]bool, n)
	free := func(b int) bool { return b >= 0 && b < n && !used[b] }
	for len(report.Highlights) < p.Top {
		best := -1
		for b := range n {
			if !used[b] && (best < 0 || interest[b] > interest[best]) {
				best = b
			}
		}
		if best < 0 || interest[best] < hlMinInterest {
			break
		}
		peak := interest[best]
		lo, hi := best, best
		// grow towards the livelier side while it stays lively
		for hi-lo+1 < maxBins {
			left := free(lo-1) && interest[lo-1] >= hlKeep*peak
			right := free(hi+1) && interest[hi+1] >= hlKeep*peak
			if left && (!right || interest[lo-1] > interest[hi+1]) {
				lo--
			} else if right {
				hi++
			} else {
				break
			}
		}
		// pad a short moment to the minimum, evenly where there is room
		for hi-lo+1 < minBins {
			grew := false
			if free(lo-1) && (!free(hi+1) || (best-lo) <= (hi-best)) {
				lo--
				grew = true
			} else if free(hi + 1) {
				hi++
				grew = true
			}
			if !grew {
				break
			}
		}
		for b := lo; b <= hi; b++ {
			used[b] = true
		}
		if hi-lo+1 < minBins {
			continue // squeezed between better moments
		}
		if h := makeHighlight(lo, hi, dur, interest, scene, loudness, lufs, cutCount, median, ws, wl); h.Score >= hlMinScore {
			report.Highlights = append(report.Highlights, h)
		}
	}
	slices.SortStableFunc(report.Highlights, func(a, b Highlight) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	for i := range report.Highlights {
		report.Highlights[i].Rank = i + 1
	}
	return report
}

func makeHighlight(lo, hi int, dur float64, interest, scene, loudness, lufs []float64, cutCount []int, median, ws, wl float64) Highlight {
	var sum, sceneSum, loudSum float64
	h := Highlight{}
	peakLUFS := math.Inf(-1)
	for b := lo; b <= hi; b++ {
		sum += interest[b]
		sceneSum += scene[b]
		loudSum += loudness[b]
		h.SceneChanges += cutCount[b]
		peakLUFS = max(peakLUFS, lufs[b])
	}
	k := float64(hi - lo + 1)
	h.Start = qcRound3(float64(lo) * hlBin)
	h.End = qcRound3(min(dur, float64(hi+1)*hlBin))
	h.Duration = qcRound3(h.End - h.Start)
	h.Score = math.Round(sum/k*1000) / 1000
	if wl > 0 && !math.IsInf(peakLUFS, -1) {
		h.LoudnessAboveMedian = math.Round(max(0, peakLUFS-median)*10) / 10
	}
	scenePart := ws * sceneSum / k / (ws + wl)
	loudPart := wl * loudSum / k / (ws + wl)
	total := scenePart + loudPart
	var reasons []string
	if scenePart > 0 && scenePart >= hlReasonShare*total {
		reasons = append(reasons, "scene changes")
	}
	if loudPart > 0 && loudPart >= hlReasonShare*total {
		reasons = append(reasons, "loud audio")
	}
	h.Reason = strings.Join(reasons, " and ")
	return h
}
