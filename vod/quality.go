package vod

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Quality metrics.
const (
	MetricPSNR = "psnr"
	MetricSSIM = "ssim"
	MetricVMAF = "vmaf"
)

// Quality scale modes: which size both videos are compared at.
const (
	QualityScaleReference = "reference" // the reference's size (default)
	QualityScaleDistorted = "distorted" // the distorted video's size
)

// PSNRCap is the PSNR, in dB, that a frame identical to its reference
// (ffmpeg reports "inf") counts as in means and minimums.
const PSNRCap = 100.0

// QualityReportFile is the report a quality task writes to its OutDir.
const QualityReportFile = "quality.json"

// vmafUnavailableReason is what the report says when this ffmpeg cannot
// compute VMAF.
const vmafUnavailableReason = "this ffmpeg has no libvmaf filter"

// QualityParams are the params of a quality task. The task's input is the
// distorted video (an output to judge); Reference names its source.
type QualityParams struct {
	// Reference is the local path of the reference (source) file the
	// input is compared against. Required.
	Reference string `json:"reference"`
	// Metrics is a subset of psnr, ssim and vmaf; default psnr and ssim.
	// vmaf is computed only where this ffmpeg has the libvmaf filter;
	// elsewhere the report says it is unavailable and the task succeeds.
	Metrics []string `json:"metrics,omitempty"`
	// Subsample evaluates every Nth frame (1..1000); default 1, every
	// frame.
	Subsample int `json:"subsample,omitempty"`
	// Scale is the size both videos are compared at: "reference" (the
	// default: the distorted video is scaled to the reference's size),
	// "distorted" (the reference is scaled to the distorted video's size)
	// or "WxH" (both are scaled to that size).
	Scale string `json:"scale,omitempty"`
}

// QualityPresets returns the built-in quality presets, name -> params
// JSON. The presets have no reference: each job names its own.
func QualityPresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"quality-psnr-ssim": json.RawMessage(`{"metrics":["psnr","ssim"],"subsample":1,"scale":"reference"}`),
		"quality-fast":      json.RawMessage(`{"metrics":["psnr","ssim"],"subsample":5,"scale":"reference"}`),
		"quality-vmaf":      json.RawMessage(`{"metrics":["psnr","ssim","vmaf"],"subsample":1,"scale":"reference"}`),
	}
}

// Quality returns the runner of quality tasks (TaskQuality): it compares
// the input (distorted) against params.reference in one ffmpeg run and
// reports PSNR and SSIM per frame with their mean and minimum, and VMAF
// where this ffmpeg has libvmaf. It writes quality.json (Kind "report")
// and puts the summaries in that output's Data.
func Quality() Runner {
	return checkedRunner{RunnerFunc(runQuality), func(raw json.RawMessage) error {
		var p QualityParams
		if err := DecodeParams(raw, &p); err != nil {
			return err
		}
		p.applyDefaults()
		if p.Reference == "" {
			p.Reference = "-" // a template names none: each job does
		}
		return p.validate()
	}}
}

// MetricSummary sums up one metric over the compared frames.
type MetricSummary struct {
	// Frames is how many frames were compared.
	Frames int     `json:"frames"`
	Mean   float64 `json:"mean"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// WorstFrame is the index, in the reference, of the frame with the
	// lowest score, and WorstTime its time in seconds from the start.
	WorstFrame int     `json:"worst_frame"`
	WorstTime  float64 `json:"worst_time"`
	// Capped counts the frames identical to the reference, whose PSNR
	// (infinite) counts as PSNRCap. PSNR only.
	Capped int `json:"capped,omitempty"`
}

// VMAFResult is the VMAF part of a quality report.
type VMAFResult struct {
	// Available reports whether this ffmpeg has the libvmaf filter.
	Available bool `json:"available"`
	// Computed reports whether VMAF was computed (available and asked
	// for in metrics).
	Computed bool           `json:"computed"`
	Reason   string         `json:"reason,omitempty"`
	Summary  *MetricSummary `json:"summary,omitempty"`
}

// QualityReport is the content of quality.json.
type QualityReport struct {
	Distorted string   `json:"distorted"`
	Reference string   `json:"reference"`
	Metrics   []string `json:"metrics"`
	Subsample int      `json:"subsample"`
	// Width and Height are the size the videos were compared at, and
	// FrameRate the reference's frame rate both were aligned to.
	Width     int     `json:"width"`
	Height    int     `json:"height"`
	FrameRate float64 `json:"frame_rate"`
	// DistortedDuration and ReferenceDuration are the durations of both
	// files, in seconds; only their common part is compared.
	DistortedDuration float64        `json:"distorted_duration"`
	ReferenceDuration float64        `json:"reference_duration"`
	PSNR              *MetricSummary `json:"psnr,omitempty"`
	SSIM              *MetricSummary `json:"ssim,omitempty"`
	VMAF              VMAFResult     `json:"vmaf"`
	Warnings          []string       `json:"warnings,omitempty"`
	// PerFrame holds each metric's score per compared frame, in order;
	// frame i is reference frame i*Subsample.
	PerFrame map[string][]float64 `json:"per_frame,omitempty"`
}

// qualityPlan is a validated quality task.
type qualityPlan struct {
	params        QualityParams
	psnr, ssim    bool
	vmafAsked     bool
	vmafAvailable bool
	width, height int
	ref           Media
}

func (p *QualityParams) applyDefaults() {
	if len(p.Metrics) == 0 {
		p.Metrics = []string{MetricPSNR, MetricSSIM}
	}
	if p.Subsample == 0 {
		p.Subsample = 1
	}
	if p.Scale == "" {
		p.Scale = QualityScaleReference
	}
}

// validate checks the params that need no file.
func (p *QualityParams) validate() error {
	if strings.TrimSpace(p.Reference) == "" {
		return fmt.Errorf("%w: reference: required (the local path of the file to compare against)", ErrBadInput)
	}
	seen := map[string]bool{}
	for i, m := range p.Metrics {
		switch m {
		case MetricPSNR, MetricSSIM, MetricVMAF:
		default:
			return fmt.Errorf("%w: metrics[%d] %q: must be psnr, ssim or vmaf", ErrBadInput, i, m)
		}
		if seen[m] {
			return fmt.Errorf("%w: metrics[%d] %q: listed twice", ErrBadInput, i, m)
		}
		seen[m] = true
	}
	if p.Subsample < 1 || p.Subsample > 1000 {
		return fmt.Errorf("%w: subsample %d: must be 1..1000", ErrBadInput, p.Subsample)
	}
	switch p.Scale {
	case QualityScaleReference, QualityScaleDistorted:
	default:
		if _, _, err := parseQualitySize(p.Scale); err != nil {
			return fmt.Errorf("%w: scale %q: must be reference, distorted or WxH (%v)", ErrBadInput, p.Scale, err)
		}
	}
	return nil
}

// parseQualitySize reads "WxH" with both sides 16..7680.
func parseQualitySize(s string) (int, int, error) {
	ws, hs, ok := strings.Cut(strings.ToLower(s), "x")
	if !ok {
		return 0, 0, errors.New("no x")
	}
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil {
		return 0, 0, errors.New("not numbers")
	}
	if w < 16 || w > 7680 || h < 16 || h > 7680 {
		return 0, 0, errors.New("each side must be 16..7680")
	}
	return w, h, nil
}

// checkReference checks that the reference is a readable media file
// with video.
func checkReference(ctx context.Context, env Env, path string) (Media, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Media{}, fmt.Errorf("%w: reference %q: no such file", ErrBadInput, path)
		}
		return Media{}, fmt.Errorf("%w: reference %q: %v", ErrBadInput, path, err)
	}
	if !fi.Mode().IsRegular() {
		return Media{}, fmt.Errorf("%w: reference %q: not a regular file", ErrBadInput, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return Media{}, fmt.Errorf("%w: reference %q: not readable: %v", ErrBadInput, path, err)
	}
	f.Close()
	m, err := Probe(ctx, env, path)
	if err != nil {
		if errors.Is(err, ErrBadInput) {
			return Media{}, fmt.Errorf("reference %q: %w", path, err)
		}
		return Media{}, fmt.Errorf("probe reference %q: %w", path, err)
	}
	if m.Video == nil {
		return Media{}, fmt.Errorf("%w: reference %q: the reference has no video stream", ErrBadInput, path)
	}
	return m, nil
}

// planQuality decodes, defaults and validates params against the input
// and the reference.
func planQuality(ctx context.Context, env Env, in Media, raw json.RawMessage) (*qualityPlan, error) {
	var p QualityParams
	if err := DecodeParams(raw, &p); err != nil {
		return nil, err
	}
	p.applyDefaults()
	if err := p.validate(); err != nil {
		return nil, err
	}
	if in.Video == nil {
		return nil, fmt.Errorf("%w: the input has no video stream", ErrBadInput)
	}
	ref, err := checkReference(ctx, env, p.Reference)
	if err != nil {
		return nil, err
	}
	plan := &qualityPlan{
		params:        p,
		psnr:          slices.Contains(p.Metrics, MetricPSNR),
		ssim:          slices.Contains(p.Metrics, MetricSSIM),
		vmafAsked:     slices.Contains(p.Metrics, MetricVMAF),
		vmafAvailable: env.Caps.HasFilter("libvmaf"),
		ref:           ref,
	}
	switch p.Scale {
	case QualityScaleReference:
		plan.width, plan.height = ref.Video.Width, ref.Video.Height
	case QualityScaleDistorted:
		plan.width, plan.height = in.Video.Width, in.Video.Height
	default:
		plan.width, plan.height, _ = parseQualitySize(p.Scale)
	}
	return plan, nil
}

// qualityRate writes a frame rate for ffmpeg's fps filter, exactly for
// the NTSC rates (30000/1001 and the like).
func qualityRate(f float64) string {
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return ""
	}
	if r := math.Round(f); math.Abs(f-r) < 1e-6 {
		return strconv.Itoa(int(r))
	}
	if n := math.Round(f * 1.001); math.Abs(f*1.001-n) < 1e-3 {
		return fmt.Sprintf("%d/1001", int(n)*1000)
	}
	return strconv.FormatFloat(f, 'f', 6, 64)
}

// qualityFilterPath writes path as a filter option value inside a
// filtergraph: quoted for the option parser, then escaped for the
// graph parser.
func qualityFilterPath(path string) string {
	quoted := "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
	var b strings.Builder
	for _, r := range quoted {
		switch r {
		case '\\', '\'', '[', ']', ',', ';':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// qualityGraph builds the filtergraph: input 0 is the distorted video,
// input 1 the reference. Both are brought to the same rate, size and
// pixel format, subsampled, split, and fed to each metric's filter. It
// returns the graph and the labels of its outputs.
func qualityGraph(plan *qualityPlan, in Media, psnrLog, ssimLog, vmafLog string) (string, []string) {
	rate := qualityRate(plan.ref.Video.FPS)
	// The distorted video is aligned to the reference's frame rate when
	// the two differ.
	alignRate := rate != "" && math.Abs(in.Video.FPS-plan.ref.Video.FPS) > 0.01
	// Both are scaled to the plan's size with scale; when that size is
	// unknown (a stream ffprobe gave no size), scale2ref brings the
	// distorted video to the reference's size.
	useScale2Ref := plan.width <= 0 || plan.height <= 0
	head := func(v *VideoStream, align bool) []string {
		f := []string{"setpts=PTS-STARTPTS"}
		if align {
			f = append(f, "fps=fps="+rate)
		}
		if !useScale2Ref && (v.Width != plan.width || v.Height != plan.height) {
			f = append(f, fmt.Sprintf("scale=%d:%d:flags=bicubic", plan.width, plan.height))
		}
		return f
	}
	tail := []string{"setsar=1", "format=yuv420p"}
	if plan.params.Subsample > 1 {
		tail = append(tail, fmt.Sprintf("framestep=step=%d", plan.params.Subsample))
	}
	var metrics []string
	if plan.psnr {
		metrics = append(metrics, "psnr=stats_file="+qualityFilterPath(psnrLog)+":shortest=1")
	}
	if plan.ssim {
		metrics = append(metrics, "ssim=stats_file="+qualityFilterPath(ssimLog)+":shortest=1")
	}
	if plan.vmafAsked && plan.vmafAvailable {
		metrics = append(metrics, fmt.Sprintf("libvmaf=log_fmt=json:log_path=%s:n_threads=%d:shortest=1",
			qualityFilterPath(vmafLog), runtime.NumCPU()))
	}
	n := len(metrics)
	var g strings.Builder
	dHead, rHead := head(in.Video, alignRate), head(plan.ref.Video, false)
	dTail, rTail := tail, tail
	if useScale2Ref {
		fmt.Fprintf(&g, "[0:v:0]%s[dh];[1:v:0]%s[rh];[dh][rh]scale2ref=flags=bicubic[ds][rs];",
			strings.Join(dHead, ","), strings.Join(rHead, ","))
		fmt.Fprintf(&g, "[ds]%s,split=%d", strings.Join(dTail, ","), n)
	} else {
		fmt.Fprintf(&g, "[0:v:0]%s,split=%d", strings.Join(append(dHead, dTail...), ","), n)
	}
	for i := range n {
		fmt.Fprintf(&g, "[d%d]", i)
	}
	if useScale2Ref {
		fmt.Fprintf(&g, ";[rs]%s,split=%d", strings.Join(rTail, ","), n)
	} else {
		fmt.Fprintf(&g, ";[1:v:0]%s,split=%d", strings.Join(append(rHead, rTail...), ","), n)
	}
	for i := range n {
		fmt.Fprintf(&g, "[r%d]", i)
	}
	outs := make([]string, n)
	for i, m := range metrics {
		outs[i] = fmt.Sprintf("[q%d]", i)
		fmt.Fprintf(&g, ";[d%d][r%d]%s%s", i, i, m, outs[i])
	}
	return g.String(), outs
}

func runQuality(ctx context.Context, env Env, in Media, raw json.RawMessage) ([]Output, error) {
	log := env.logger()
	progress := env.progress()
	env.Progress = progress
	plan, err := planQuality(ctx, env, in, raw)
	if err != nil {
		return nil, err
	}
	p := plan.params
	report := QualityReport{
		Distorted:         in.Path,
		Reference:         p.Reference,
		Metrics:           p.Metrics,
		Subsample:         p.Subsample,
		Width:             plan.width,
		Height:            plan.height,
		FrameRate:         plan.ref.Video.FPS,
		DistortedDuration: in.Duration.Seconds(),
		ReferenceDuration: plan.ref.Duration.Seconds(),
		VMAF:              VMAFResult{Available: plan.vmafAvailable},
		PerFrame:          map[string][]float64{},
	}
	if !plan.vmafAvailable {
		report.VMAF.Reason = vmafUnavailableReason
	} else if !plan.vmafAsked {
		report.VMAF.Reason = "not asked for in metrics"
	}
	if d := math.Abs(in.Duration.Seconds() - plan.ref.Duration.Seconds()); in.Duration > 0 && plan.ref.Duration > 0 && d > 0.5 {
		report.Warnings = append(report.Warnings, fmt.Sprintf(
			"the input lasts %.2fs and the reference %.2fs: only the first %.2fs are compared",
			in.Duration.Seconds(), plan.ref.Duration.Seconds(), min(in.Duration, plan.ref.Duration).Seconds()))
	}
	if in.Video.FPS > 0 && math.Abs(in.Video.FPS-plan.ref.Video.FPS) > 0.01 {
		report.Warnings = append(report.Warnings, fmt.Sprintf(
			"the input has %.3f fps and the reference %.3f fps: the input was aligned to the reference's rate",
			in.Video.FPS, plan.ref.Video.FPS))
	}

	runFFmpeg := plan.psnr || plan.ssim || (plan.vmafAsked && plan.vmafAvailable)
	if runFFmpeg {
		tmp, err := os.MkdirTemp(env.OutDir, ".quality-")
		if err != nil {
			return nil, fmt.Errorf("quality: %w", err)
		}
		defer os.RemoveAll(tmp)
		psnrLog := filepath.Join(tmp, "psnr.log")
		ssimLog := filepath.Join(tmp, "ssim.log")
		vmafLog := filepath.Join(tmp, "vmaf.json")
		graph, outs := qualityGraph(plan, in, psnrLog, ssimLog, vmafLog)
		total := plan.ref.Duration
		if in.Duration > 0 && in.Duration < total {
			total = in.Duration
		}
		args := []string{"-i", in.Path, "-i", p.Reference, "-filter_complex", graph}
		for _, o := range outs {
			args = append(args, "-map", o)
		}
		args = append(args, "-f", "null", "-")
		log.Debug("quality: running ffmpeg", "graph", graph)
		start := time.Now()
		if err := RunFFmpeg(ctx, env, total, args...); err != nil {
			return nil, fmt.Errorf("quality: %w", err)
		}
		log.Debug("quality: compared", "took", time.Since(start))
		frameTime := func(i int) (int, float64) {
			idx := i * p.Subsample
			if plan.ref.Video.FPS > 0 {
				return idx, float64(idx) / plan.ref.Video.FPS
			}
			return idx, 0
		}
		if plan.psnr {
			vals, capped, err := readStats(psnrLog, ParsePSNRStats)
			if err != nil {
				return nil, fmt.Errorf("quality: psnr: %w", err)
			}
			report.PSNR = summarize(vals, frameTime)
			report.PSNR.Capped = capped
			report.PerFrame[MetricPSNR] = vals
		}
		if plan.ssim {
			vals, _, err := readStats(ssimLog, func(r io.Reader) ([]float64, int, error) {
				v, err := ParseSSIMStats(r)
				return v, 0, err
			})
			if err != nil {
				return nil, fmt.Errorf("quality: ssim: %w", err)
			}
			report.SSIM = summarize(vals, frameTime)
			report.PerFrame[MetricSSIM] = vals
		}
		if plan.vmafAsked && plan.vmafAvailable {
			b, err := os.ReadFile(vmafLog)
			if err != nil {
				return nil, fmt.Errorf("quality: vmaf: %w", err)
			}
			vals, err := ParseVMAFLog(b)
			if err != nil {
				return nil, fmt.Errorf("quality: vmaf: %w", err)
			}
			if len(vals) == 0 {
				return nil, fmt.Errorf("%w: quality: vmaf: no frames were compared", ErrBadInput)
			}
			report.VMAF.Computed = true
			report.VMAF.Summary = summarize(vals, frameTime)
			report.PerFrame[MetricVMAF] = vals
		}
	}
	progress(1)

	body, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("quality: %w", err)
	}
	path := filepath.Join(env.OutDir, QualityReportFile)
	if err := os.WriteFile(path, append(body, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("quality: %w", err)
	}
	data := map[string]any{
		"metrics":   p.Metrics,
		"subsample": p.Subsample,
		"width":     plan.width,
		"height":    plan.height,
		"vmaf":      report.VMAF,
	}
	if report.PSNR != nil {
		data[MetricPSNR] = *report.PSNR
	}
	if report.SSIM != nil {
		data[MetricSSIM] = *report.SSIM
	}
	if len(report.Warnings) > 0 {
		data["warnings"] = report.Warnings
	}
	return []Output{{
		Kind: "report",
		Path: QualityReportFile,
		MIME: "application/json",
		Size: int64(len(body) + 1),
		Data: data,
	}}, nil
}

// readStats parses a stats file; one without frames is ErrBadInput (no
// frame of the two files could be compared).
func readStats(path string, parse func(io.Reader) ([]float64, int, error)) ([]float64, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	vals, capped, err := parse(f)
	if err != nil {
		return nil, 0, err
	}
	if len(vals) == 0 {
		return nil, 0, fmt.Errorf("%w: no frames were compared", ErrBadInput)
	}
	return vals, capped, nil
}

// summarize sums up per-frame scores; frameTime maps a position in vals
// to the reference frame index and time.
func summarize(vals []float64, frameTime func(int) (int, float64)) *MetricSummary {
	s := &MetricSummary{Frames: len(vals)}
	if len(vals) == 0 {
		return s
	}
	worst := 0
	sum := 0.0
	s.Min, s.Max = vals[0], vals[0]
	for i, v := range vals {
		sum += v
		if v < s.Min {
			s.Min, worst = v, i
		}
		s.Max = max(s.Max, v)
	}
	s.Mean = sum / float64(len(vals))
	s.WorstFrame, s.WorstTime = frameTime(worst)
	return s
}

// statsFields reads one stats line's "key:value" fields.
func statsFields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, ":"); ok && k != "" {
			if _, dup := m[k]; !dup {
				m[k] = v
			}
		}
	}
	return m
}

const maxStatsLine = 1 << 16

// ParsePSNRStats reads the stats file of ffmpeg's psnr filter
// ("n:1 mse_avg:0.52 ... psnr_avg:50.97 ..."), one line per frame, and
// returns each frame's psnr_avg in order. "inf" (a frame identical to
// its reference) counts as PSNRCap; capped says how many did. A line
// without a finite psnr_avg is an error.
func ParsePSNRStats(r io.Reader) (vals []float64, capped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxStatsLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		raw, ok := statsFields(text)["psnr_avg"]
		if !ok {
			return nil, 0, fmt.Errorf("psnr stats line %d: no psnr_avg", line)
		}
		var v float64
		switch strings.ToLower(raw) {
		case "inf", "+inf":
			v = PSNRCap
			capped++
		default:
			v, err = strconv.ParseFloat(raw, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, fmt.Errorf("psnr stats line %d: psnr_avg %q is no finite number", line, raw)
			}
			if v >= PSNRCap {
				v = PSNRCap
				capped++
			}
		}
		vals = append(vals, v)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("psnr stats: %w", err)
	}
	return vals, capped, nil
}

// ParseSSIMStats reads the stats file of ffmpeg's ssim filter
// ("n:1 Y:0.99 U:0.98 V:0.98 All:0.987 (18.9)"), one line per frame, and
// returns each frame's All value in order. A line without a finite All
// value is an error.
func ParseSSIMStats(r io.Reader) ([]float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxStatsLine)
	var vals []float64
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		raw, ok := statsFields(text)["All"]
		if !ok {
			return nil, fmt.Errorf("ssim stats line %d: no All value", line)
		}
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("ssim stats line %d: All %q is no finite number", line, raw)
		}
		vals = append(vals, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ssim stats: %w", err)
	}
	return vals, nil
}

// ParseVMAFLog reads the JSON log of ffmpeg's libvmaf filter (libvmaf 2
// keeps each frame's score in frames[].metrics.vmaf, libvmaf 1 in
// frames[].vmaf) and returns each frame's VMAF in order.
func ParseVMAFLog(b []byte) ([]float64, error) {
	var log struct {
		Frames []struct {
			FrameNum int                `json:"frameNum"`
			Metrics  map[string]float64 `json:"metrics"`
			VMAF     *float64           `json:"vmaf"`
		} `json:"frames"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&log); err != nil {
		return nil, fmt.Errorf("vmaf log: %w", err)
	}
	vals := make([]float64, 0, len(log.Frames))
	for i, f := range log.Frames {
		v, ok := f.Metrics["vmaf"]
		if !ok && f.VMAF != nil {
			v, ok = *f.VMAF, true
		}
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("vmaf log: frame %d has no vmaf score", i)
		}
		vals = append(vals, v)
	}
	return vals, nil
}
