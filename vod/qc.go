package vod

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// QCReportFile is the report a qc task writes to its OutDir.
const QCReportFile = "qc.json"

// QC issue types.
const (
	QCIssueBlack        = "black"
	QCIssueFreeze       = "freeze"
	QCIssueSilence      = "silence"
	QCIssueLoudness     = "loudness"
	QCIssueTruePeak     = "true_peak"
	QCIssueClipping     = "clipping"
	QCIssueMissingVideo = "missing_video"
	QCIssueMissingAudio = "missing_audio"
)

// QC severities. A report passes when it has no warning and no error.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityError   = "error"
)

// QCParams are the params of a qc task (technical quality control). Zero
// values take the defaults.
type QCParams struct {
	// BlackMinDuration is the shortest run of black frames reported, in
	// seconds; default 0.5.
	BlackMinDuration float64 `json:"black_min_duration,omitempty"`
	// BlackPixelThreshold is the luma (0..1) at or below which a pixel is
	// black; default 0.10 (blackdetect's pix_th).
	BlackPixelThreshold float64 `json:"black_pixel_threshold,omitempty"`
	// FreezeNoiseDB is the difference, in dB, below which two frames are
	// the same; default -60 (freezedetect's noise).
	FreezeNoiseDB float64 `json:"freeze_noise_db,omitempty"`
	// FreezeMinDuration is the shortest frozen span reported, in seconds;
	// default 1.
	FreezeMinDuration float64 `json:"freeze_min_duration,omitempty"`
	// SilenceNoiseDB is the level, in dBFS, below which audio is silent;
	// default -50.
	SilenceNoiseDB float64 `json:"silence_noise_db,omitempty"`
	// SilenceMinDuration is the shortest silence reported, in seconds;
	// default 1.
	SilenceMinDuration float64 `json:"silence_min_duration,omitempty"`
	// TargetLUFS is the integrated loudness aimed at; default -23 (EBU
	// R128). ToleranceLU is how far from it passes; default 2.
	TargetLUFS  float64 `json:"target_lufs,omitempty"`
	ToleranceLU float64 `json:"tolerance_lu,omitempty"`
	// MaxTruePeak is the highest true peak that passes, in dBTP; default
	// -1.
	MaxTruePeak *float64 `json:"max_true_peak,omitempty"`
	// ClipLevel is the sample peak, in dBFS, at which audio counts as
	// clipping; default -0.1. ClipSamples is how many samples at that
	// peak a 100 ms window needs to count as clipped; default 10.
	ClipLevel   *float64 `json:"clip_level,omitempty"`
	ClipSamples int      `json:"clip_samples,omitempty"`
	// RequireVideo and RequireAudio make a missing track an error issue;
	// both default true.
	RequireVideo *bool `json:"require_video,omitempty"`
	RequireAudio *bool `json:"require_audio,omitempty"`
}

// QC defaults.
const (
	qcDefaultBlackMin     = 0.5
	qcDefaultBlackPix     = 0.10
	qcDefaultFreezeNoise  = -60.0
	qcDefaultFreezeMin    = 1.0
	qcDefaultSilenceNoise = -50.0
	qcDefaultSilenceMin   = 1.0
	qcDefaultTarget       = -23.0
	qcDefaultTolerance    = 2.0
	qcDefaultMaxTruePeak  = -1.0
	qcDefaultClipLevel    = -0.1
	qcDefaultClipSamples  = 10
	// qcClipGap joins clipped windows closer than this, in seconds.
	qcClipGap = 0.5
	// qcWindow is the length of the audio frames ebur128 hands on with
	// metadata, and so of astats' windows.
	qcWindow = 0.1
	// qcFloorDB stands for -inf dB in reports.
	qcFloorDB = -144.0
)

// QCPresets returns the built-in qc presets, name -> params JSON.
func QCPresets() map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"qc-default": json.RawMessage(`{"black_min_duration":0.5,"freeze_noise_db":-60,"freeze_min_duration":1,` +
			`"silence_noise_db":-50,"silence_min_duration":1,"target_lufs":-23,"tolerance_lu":2,"max_true_peak":-1}`),
	}
}

func (p *QCParams) applyDefaults() {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.BlackMinDuration, qcDefaultBlackMin)
	def(&p.BlackPixelThreshold, qcDefaultBlackPix)
	def(&p.FreezeNoiseDB, qcDefaultFreezeNoise)
	def(&p.FreezeMinDuration, qcDefaultFreezeMin)
	def(&p.SilenceNoiseDB, qcDefaultSilenceNoise)
	def(&p.SilenceMinDuration, qcDefaultSilenceMin)
	def(&p.TargetLUFS, qcDefaultTarget)
	def(&p.ToleranceLU, qcDefaultTolerance)
	if p.MaxTruePeak == nil {
		v := qcDefaultMaxTruePeak
		p.MaxTruePeak = &v
	}
	if p.ClipLevel == nil {
		v := qcDefaultClipLevel
		p.ClipLevel = &v
	}
	if p.ClipSamples == 0 {
		p.ClipSamples = qcDefaultClipSamples
	}
	if p.RequireVideo == nil {
		v := true
		p.RequireVideo = &v
	}
	if p.RequireAudio == nil {
		v := true
		p.RequireAudio = &v
	}
}

func (p *QCParams) validate() error {
	check := func(field string, v, lo, hi float64, unit string) error {
		if math.IsNaN(v) || v < lo || v > hi {
			return fmt.Errorf("%w: %s %g: must be %g..%g%s", ErrBadInput, field, v, lo, hi, unit)
		}
		return nil
	}
	for _, c := range []struct {
		field     string
		v, lo, hi float64
		unit      string
	}{
		{"black_min_duration", p.BlackMinDuration, 0.04, 3600, " seconds"},
		{"black_pixel_threshold", p.BlackPixelThreshold, 0.001, 1, ""},
		{"freeze_noise_db", p.FreezeNoiseDB, -90, -10, " dB"},
		{"freeze_min_duration", p.FreezeMinDuration, 0.1, 3600, " seconds"},
		{"silence_noise_db", p.SilenceNoiseDB, -90, -10, " dBFS"},
		{"silence_min_duration", p.SilenceMinDuration, 0.1, 3600, " seconds"},
		{"target_lufs", p.TargetLUFS, -70, -5, " LUFS"},
		{"tolerance_lu", p.ToleranceLU, 0.1, 20, " LU"},
		{"max_true_peak", *p.MaxTruePeak, -30, 3, " dBTP"},
		{"clip_level", *p.ClipLevel, -6, 0, " dBFS"},
	} {
		if err := check(c.field, c.v, c.lo, c.hi, c.unit); err != nil {
			return err
		}
	}
	if p.ClipSamples < 1 || p.ClipSamples > 48000 {
		return fmt.Errorf("%w: clip_samples %d: must be 1..48000", ErrBadInput, p.ClipSamples)
	}
	return nil
}

// qcNum writes a number for a filter option.
func qcNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// QCFilters returns the filter chains of a qc run (defaults applied to
// p): video for the first video stream (blackdetect and freezedetect),
// audio for the first audio stream (silencedetect, ebur128 with true
// peaks and astats over 100 ms windows). Each ends with a metadata
// printer without a file, which logs each frame's detections at info
// level; feed ffmpeg's stderr (at -loglevel info) line by line to a
// QCDetector. For a file, append ":file=PATH" to each chain.
func QCFilters(p QCParams) (video, audio string) {
	p.applyDefaults()
	video = fmt.Sprintf("blackdetect=d=%s:pix_th=%s,freezedetect=n=%sdB:d=%s,metadata=mode=print",
		qcNum(p.BlackMinDuration), qcNum(p.BlackPixelThreshold), qcNum(p.FreezeNoiseDB), qcNum(p.FreezeMinDuration))
	audio = fmt.Sprintf("silencedetect=n=%sdB:d=%s,ebur128=peak=true:metadata=1,"+
		"aformat=sample_fmts=s16,astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=Peak_level+Peak_count,"+
		"ametadata=mode=print",
		qcNum(p.SilenceNoiseDB), qcNum(p.SilenceMinDuration))
	return video, audio
}

// QCIssue is one problem found, with its span in seconds from the start
// (a file-level issue spans the whole input).
type QCIssue struct {
	Type     string  `json:"type"`
	Start    float64 `json:"start"`
	End      float64 `json:"end"`
	Duration float64 `json:"duration"`
	Severity string  `json:"severity"`
	Message  string  `json:"message"`
}

// QCLoudness is the audio's loudness (EBU R128).
type QCLoudness struct {
	// Integrated is the integrated loudness in LUFS.
	Integrated float64 `json:"integrated"`
	// TruePeak is the highest true peak in dBTP.
	TruePeak float64 `json:"true_peak"`
	// LRA is the loudness range in LU.
	LRA float64 `json:"lra"`
}

// QCReport is the content of qc.json.
type QCReport struct {
	Passed   bool        `json:"passed"`
	Duration float64     `json:"duration"`
	Issues   []QCIssue   `json:"issues"`
	Loudness *QCLoudness `json:"loudness"`
	Params   QCParams    `json:"params"`
}

// qcSpan is an interval in seconds.
type qcSpan struct{ start, end float64 }

// qcOpenSpan is an interval whose end is not known yet.
type qcOpenSpan struct {
	open  bool
	start float64
}

// QCDetector turns the output lines of a run of QCFilters into issues as
// they arrive: a black, freeze or silence issue when its span ends, a
// true-peak issue when the true peak first passes the maximum, a clipping
// issue when a clipped stretch ends. Finish closes what is still open
// and judges the integrated loudness. It reads both the metadata
// printers' lines and the filters' own log lines, and reports each span
// once when both are present. It is not safe for concurrent use.
type QCDetector struct {
	// Offset, in seconds, is added to every time the filters report: for
	// a live stream, the stream time at which ffmpeg's time 0 is.
	Offset float64

	p        QCParams
	parser   DetectParser
	black    qcOpenSpan
	freeze   qcOpenSpan
	silence  qcOpenSpan
	blacks   []qcSpan // recent black spans, to tell a black stretch from a freeze
	clip     qcOpenSpan
	clipEnd  float64
	clipN    int
	level    map[string]float64 // astats peak level of the window under way, by source
	loud     QCLoudness
	haveLoud bool
	peakSeen bool
	lastTime float64
}

// NewQCDetector returns a detector for the output of QCFilters(p).
func NewQCDetector(p QCParams) *QCDetector {
	p.applyDefaults()
	return &QCDetector{p: p, level: map[string]float64{}, loud: QCLoudness{Integrated: -70, TruePeak: qcFloorDB}}
}

// Line reads one line of ffmpeg output and returns the issues it
// completes.
func (d *QCDetector) Line(line string) []QCIssue {
	var out []QCIssue
	for _, det := range d.parser.Line(line) {
		if det.Time >= 0 {
			det.Time += d.Offset
		}
		switch det.Key {
		case KeyBlackStart, KeyBlackEnd, KeyFreezeStart, KeyFreezeEnd, KeySilenceStart, KeySilenceEnd:
			det.Value += d.Offset
		}
		if det.Time > d.lastTime {
			d.lastTime = det.Time
		}
		out = append(out, d.detection(det)...)
	}
	return out
}

func (d *QCDetector) detection(det Detection) []QCIssue {
	v := det.Value
	switch det.Key {
	case KeyBlackStart:
		d.start(&d.black, v)
	case KeyBlackEnd:
		// blackdetect's metadata marks every black run, its log only
		// those of the minimum duration
		if s, ok := d.end(&d.black, v); ok && s.end-s.start >= d.p.BlackMinDuration-1e-6 {
			d.blacks = append(d.blacks, s)
			if len(d.blacks) > 16 {
				d.blacks = d.blacks[1:]
			}
			return []QCIssue{qcSpanIssue(QCIssueBlack, s, "black video")}
		}
	case KeyFreezeStart:
		d.start(&d.freeze, v)
	case KeyFreezeEnd:
		if s, ok := d.end(&d.freeze, v); ok && !d.covered(s) {
			return []QCIssue{qcSpanIssue(QCIssueFreeze, s, "frozen video")}
		}
	case KeySilenceStart:
		d.start(&d.silence, v)
	case KeySilenceEnd:
		if s, ok := d.end(&d.silence, v); ok {
			return []QCIssue{qcSpanIssue(QCIssueSilence, s, "silence")}
		}
	case KeyIntegrated:
		d.loud.Integrated, d.haveLoud = v, true
	case KeyLRA:
		d.loud.LRA, d.haveLoud = v, true
	case KeyTruePeak:
		d.haveLoud = true
		db := qcLinearToDB(v)
		if db > d.loud.TruePeak {
			d.loud.TruePeak = db
		}
		if !d.peakSeen && db > *d.p.MaxTruePeak {
			d.peakSeen = true
			t := qcRound3(max(det.Time, 0))
			return []QCIssue{{Type: QCIssueTruePeak, Start: t, End: t, Severity: SeverityWarning,
				Message: fmt.Sprintf("true peak %.1f dBTP is above the maximum %.1f dBTP", db, *d.p.MaxTruePeak)}}
		}
	case KeyPeakLevel:
		d.level[det.Source] = v
	case KeyPeakCount:
		level, ok := d.level[det.Source]
		delete(d.level, det.Source)
		if !ok || det.Time < 0 {
			return nil
		}
		var out []QCIssue
		if level >= *d.p.ClipLevel && v >= float64(d.p.ClipSamples) {
			if d.clip.open && det.Time-d.clipEnd > qcClipGap {
				out = append(out, d.clipIssue())
			}
			if !d.clip.open {
				d.clip = qcOpenSpan{open: true, start: det.Time}
				d.clipN = 0
			}
			d.clipEnd = det.Time + qcWindow
			d.clipN += int(v)
		} else if d.clip.open && det.Time-d.clipEnd > qcClipGap {
			out = append(out, d.clipIssue())
		}
		return out
	}
	return nil
}

func (d *QCDetector) clipIssue() QCIssue {
	d.clip.open = false
	is := qcSpanIssue(QCIssueClipping, qcSpan{d.clip.start, d.clipEnd}, "audio clipping")
	is.Message = fmt.Sprintf("audio clipping: %d samples at full scale", d.clipN)
	return is
}

// start opens s at t unless it is open.
func (d *QCDetector) start(s *qcOpenSpan, t float64) {
	if !s.open {
		*s = qcOpenSpan{open: true, start: t}
	}
}

// end closes s at t; an end without a start (the second report of a
// span) is ignored.
func (d *QCDetector) end(s *qcOpenSpan, t float64) (qcSpan, bool) {
	if !s.open {
		return qcSpan{}, false
	}
	s.open = false
	if t < s.start {
		return qcSpan{}, false
	}
	return qcSpan{s.start, t}, true
}

// covered says whether black video covers most of s: black frames are
// also frozen, and a black stretch is reported as black only.
func (d *QCDetector) covered(s qcSpan) bool {
	if s.end <= s.start {
		return false
	}
	black := 0.0
	spans := d.blacks
	if d.black.open {
		spans = append(slices.Clone(spans), qcSpan{d.black.start, math.Inf(1)})
	}
	for _, b := range spans {
		black += max(0, min(s.end, b.end)-max(s.start, b.start))
	}
	return black >= 0.8*(s.end-s.start)
}

// Finish closes the spans still open at end (seconds; the input's
// duration, or the last time seen when 0) and, when the audio was
// measured, judges its integrated loudness.
func (d *QCDetector) Finish(end float64) []QCIssue {
	if end <= 0 {
		end = d.lastTime
	}
	var out []QCIssue
	if s, ok := d.end(&d.black, max(end, d.black.start)); ok && s.end-s.start >= d.p.BlackMinDuration {
		d.blacks = append(d.blacks, s)
		out = append(out, qcSpanIssue(QCIssueBlack, s, "black video"))
	}
	if s, ok := d.end(&d.freeze, max(end, d.freeze.start)); ok && !d.covered(s) {
		out = append(out, qcSpanIssue(QCIssueFreeze, s, "frozen video"))
	}
	if s, ok := d.end(&d.silence, max(end, d.silence.start)); ok {
		out = append(out, qcSpanIssue(QCIssueSilence, s, "silence"))
	}
	if d.clip.open {
		out = append(out, d.clipIssue())
	}
	if d.haveLoud {
		lo, hi := d.p.TargetLUFS-d.p.ToleranceLU, d.p.TargetLUFS+d.p.ToleranceLU
		if i := d.loud.Integrated; i < lo || i > hi {
			out = append(out, QCIssue{Type: QCIssueLoudness, Start: 0, End: qcRound3(end), Duration: qcRound3(end), Severity: SeverityWarning,
				Message: fmt.Sprintf("integrated loudness %.1f LUFS is outside %.1f..%.1f LUFS", i, lo, hi)})
		}
	}
	return out
}

// Loudness returns the loudness measured so far (the integrated loudness
// and range of what was heard, the highest true peak) and whether any
// audio was measured.
func (d *QCDetector) Loudness() (QCLoudness, bool) { return d.loud, d.haveLoud }

func qcSpanIssue(typ string, s qcSpan, what string) QCIssue {
	return QCIssue{Type: typ, Start: qcRound3(s.start), End: qcRound3(s.end), Duration: qcRound3(s.end - s.start),
		Severity: SeverityWarning, Message: fmt.Sprintf("%s from %s to %s (%.2fs)", what, qcClock(s.start), qcClock(s.end), s.end-s.start)}
}

func qcLinearToDB(v float64) float64 {
	if v <= 0 {
		return qcFloorDB
	}
	return max(qcFloorDB, 20*math.Log10(v))
}

func qcRound3(v float64) float64 { return math.Round(v*1000) / 1000 }

// qcClock writes seconds as [h:]mm:ss.cc.
func qcClock(sec float64) string {
	if sec < 0 || math.IsNaN(sec) || math.IsInf(sec, 0) {
		sec = 0
	}
	cs := int64(math.Round(sec * 100))
	h, m, s, c := cs/360000, cs/6000%60, cs/100%60, cs%100
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d.%02d", h, m, s, c)
	}
	return fmt.Sprintf("%02d:%02d.%02d", m, s, c)
}

// QC returns the runner of qc tasks (TaskQC): technical quality control
// of the input in one ffmpeg run (black frames, frozen video, silence,
// loudness and true peak against a target, clipping, missing tracks). It
// writes qc.json (Kind "report") and puts the same summary in that
// output's Data.
func QC() Runner { return qcRunner{} }

type qcRunner struct{}

// CheckParams decodes and checks params as Run does.
func (qcRunner) CheckParams(params json.RawMessage) error {
	_, err := decodeQCParams(params)
	return err
}

func decodeQCParams(raw json.RawMessage) (QCParams, error) {
	var p QCParams
	if err := DecodeParams(raw, &p); err != nil {
		return p, err
	}
	p.applyDefaults()
	return p, p.validate()
}

func (qcRunner) Run(ctx context.Context, env Env, in Media, raw json.RawMessage) ([]Output, error) {
	log := env.logger()
	env.Progress = env.progress()
	p, err := decodeQCParams(raw)
	if err != nil {
		return nil, err
	}
	if in.Video == nil && in.Audio == nil {
		return nil, fmt.Errorf("%w: the input has neither video nor audio", ErrBadInput)
	}
	dur := in.Duration.Seconds()
	report := QCReport{Duration: qcRound3(dur), Params: p, Issues: []QCIssue{}}
	whole := func(typ, msg string) QCIssue {
		return QCIssue{Type: typ, Start: 0, End: qcRound3(dur), Duration: qcRound3(dur), Severity: SeverityError, Message: msg}
	}
	if in.Video == nil && *p.RequireVideo {
		report.Issues = append(report.Issues, whole(QCIssueMissingVideo, "the input has no video track"))
	}
	if in.Audio == nil && *p.RequireAudio {
		report.Issues = append(report.Issues, whole(QCIssueMissingAudio, "the input has no audio track"))
	}

	tmp, err := os.MkdirTemp(env.OutDir, ".qc-")
	if err != nil {
		return nil, fmt.Errorf("qc: %w", err)
	}
	defer os.RemoveAll(tmp)
	vf, af := QCFilters(p)
	vLog, aLog := filepath.Join(tmp, "video.txt"), filepath.Join(tmp, "audio.txt")
	var graph []string
	var maps []string
	if in.Video != nil {
		graph = append(graph, "[0:v:0]"+vf+":file="+qualityFilterPath(vLog)+"[vq]")
		maps = append(maps, "-map", "[vq]")
	}
	if in.Audio != nil {
		graph = append(graph, "[0:a:0]"+af+":file="+qualityFilterPath(aLog)+"[aq]")
		maps = append(maps, "-map", "[aq]")
	}
	args := append([]string{"-i", in.Path, "-filter_complex", strings.Join(graph, ";")}, maps...)
	args = append(args, "-f", "null", "-")
	log.Debug("qc: running ffmpeg", "graph", strings.Join(graph, ";"))
	if err := RunFFmpeg(ctx, env, in.Duration, args...); err != nil {
		return nil, fmt.Errorf("qc: %w", err)
	}

	det := NewQCDetector(p)
	for _, path := range []string{vLog, aLog} {
		found, err := qcFeed(det, path)
		if err != nil {
			return nil, fmt.Errorf("qc: %w", err)
		}
		report.Issues = append(report.Issues, found...)
	}
	report.Issues = append(report.Issues, det.Finish(dur)...)
	for i := range report.Issues {
		qcClassify(&report.Issues[i], dur)
	}
	slices.SortStableFunc(report.Issues, func(a, b QCIssue) int {
		if a.Start != b.Start {
			if a.Start < b.Start {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Type, b.Type)
	})
	if l, ok := det.Loudness(); ok && in.Audio != nil {
		l = QCLoudness{Integrated: math.Round(l.Integrated*10) / 10, TruePeak: math.Round(l.TruePeak*10) / 10, LRA: math.Round(l.LRA*10) / 10}
		report.Loudness = &l
	}
	report.Passed = !slices.ContainsFunc(report.Issues, func(is QCIssue) bool { return is.Severity != SeverityInfo })

	body, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("qc: %w", err)
	}
	if err := os.WriteFile(filepath.Join(env.OutDir, QCReportFile), append(body, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("qc: %w", err)
	}
	env.Progress(1)
	counts := map[string]int{}
	for _, is := range report.Issues {
		counts[is.Severity]++
	}
	log.Info("qc: done", "passed", report.Passed, "issues", len(report.Issues))
	data := map[string]any{
		"passed":   report.Passed,
		"issues":   report.Issues,
		"loudness": report.Loudness,
		"counts":   counts,
	}
	return []Output{{Kind: "report", Path: QCReportFile, MIME: "application/json", Size: int64(len(body) + 1), Data: data}}, nil
}

// qcFeed reads a metadata print file into det; a file ffmpeg did not
// write (no such stream) is skipped.
func qcFeed(det *QCDetector, path string) ([]QCIssue, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []QCIssue
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), maxDetectLine)
	for sc.Scan() {
		out = append(out, det.Line(sc.Text())...)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return out, nil
}

// qcClassify sets a span issue's severity from where it sits in the
// input: one that covers at least half the input is an error, a black or
// silent lead-in or tail is information only.
func qcClassify(is *QCIssue, dur float64) {
	switch is.Type {
	case QCIssueBlack, QCIssueFreeze, QCIssueSilence:
	default:
		return
	}
	if dur <= 0 {
		return
	}
	switch {
	case is.Duration >= dur/2:
		is.Severity = SeverityError
	case is.Type != QCIssueFreeze && (is.Start <= 0.5 || is.End >= dur-0.5):
		is.Severity = SeverityInfo
		is.Message += " at the " + map[bool]string{true: "start", false: "end"}[is.Start <= 0.5]
	}
}
