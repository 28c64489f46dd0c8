package vod

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Detection is one value that one of ffmpeg's detection filters
// (blackdetect, freezedetect, silencedetect, scdet, ebur128, astats)
// reported, either as frame metadata printed by the metadata/ametadata
// filter's print mode or as the filter's own log line.
type Detection struct {
	// Source is the log context the line came from without its address
	// ("Parsed_metadata_3", "blackdetect"), or "" for a line without one
	// (a metadata print file).
	Source string
	// Key is the metadata key, whatever form the line had:
	// "lavfi.black_start", "lavfi.freezedetect.freeze_end",
	// "lavfi.silence_duration", "lavfi.scd.score", "lavfi.r128.M",
	// "lavfi.r128.true_peak" (linear), "lavfi.astats.Overall.Peak_count"...
	Key string
	// Value is the key's value. Values that are not finite numbers are
	// never reported.
	Value float64
	// Time is the time in seconds of the frame that carried the value
	// (metadata print's pts_time, ebur128's t:), or -1 when the line does
	// not say (the interval filters' log lines, whose values are times).
	Time float64
}

// Metadata keys the detectors use.
const (
	KeyBlackStart      = "lavfi.black_start"
	KeyBlackEnd        = "lavfi.black_end"
	KeyBlackDuration   = "lavfi.black_duration"
	KeyFreezeStart     = "lavfi.freezedetect.freeze_start"
	KeyFreezeEnd       = "lavfi.freezedetect.freeze_end"
	KeyFreezeDuration  = "lavfi.freezedetect.freeze_duration"
	KeySilenceStart    = "lavfi.silence_start"
	KeySilenceEnd      = "lavfi.silence_end"
	KeySilenceDuration = "lavfi.silence_duration"
	KeySceneScore      = "lavfi.scd.score"
	KeySceneTime       = "lavfi.scd.time"
	KeyMomentary       = "lavfi.r128.M"
	KeyShortTerm       = "lavfi.r128.S"
	KeyIntegrated      = "lavfi.r128.I"
	KeyLRA             = "lavfi.r128.LRA"
	KeyTruePeak        = "lavfi.r128.true_peak"
	KeyPeakLevel       = "lavfi.astats.Overall.Peak_level"
	KeyPeakCount       = "lavfi.astats.Overall.Peak_count"
)

// maxDetectLine is the longest line the parsers look at.
const maxDetectLine = 1 << 16

// DetectParser turns ffmpeg output lines into detections. It keeps, per
// log context, the time of the frame whose metadata print is under way,
// so it reads a metadata print file, or ffmpeg's stderr with several
// metadata printers interleaved. Its zero value is ready to use; it is
// not safe for concurrent use.
type DetectParser struct {
	times map[string]float64
}

// Line parses one line (with or without its trailing newline) and returns
// what it reports; lines of no detection filter give nil.
func (p *DetectParser) Line(line string) []Detection {
	if len(line) > maxDetectLine {
		return nil
	}
	line = strings.TrimSpace(line)
	source := ""
	if strings.HasPrefix(line, "[") {
		i := strings.Index(line, "] ")
		if i < 0 {
			return nil
		}
		source = line[1:i]
		if at := strings.Index(source, " @ "); at >= 0 {
			source = source[:at]
		}
		line = strings.TrimSpace(line[i+2:])
	}
	switch {
	case strings.HasPrefix(line, "frame:"):
		// metadata print's frame header:
		// "frame:250  pts:128000  pts_time:10"
		if t, ok := detectFieldAfter(line, "pts_time:"); ok {
			if p.times == nil {
				p.times = map[string]float64{}
			}
			p.times[source] = t
		}
		return nil
	case strings.HasPrefix(line, "lavfi."):
		return p.lavfiLine(source, line)
	case strings.HasPrefix(line, "black_start:"):
		// blackdetect: "black_start:10 black_end:12.04 black_duration:2.04"
		var out []Detection
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, ":")
			if !ok {
				continue
			}
			if x, ok := detectFinite(v); ok && (k == "black_start" || k == "black_end" || k == "black_duration") {
				out = append(out, Detection{Source: source, Key: "lavfi." + k, Value: x, Time: -1})
			}
		}
		return out
	case strings.HasPrefix(line, "silence_start:"), strings.HasPrefix(line, "silence_end:"):
		// silencedetect: "silence_start: 20.0108",
		// "silence_end: 23.0185 | silence_duration: 3.00775"
		var out []Detection
		for _, part := range strings.Split(line, "|") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			if x, ok := detectFinite(strings.TrimSpace(v)); ok && (k == "silence_start" || k == "silence_end" || k == "silence_duration") {
				out = append(out, Detection{Source: source, Key: "lavfi." + k, Value: x, Time: -1})
			}
		}
		return out
	case strings.HasPrefix(line, "t:") && strings.Contains(line, "M:"):
		return p.ebur128Line(source, line)
	}
	return nil
}

// lavfiLine reads "lavfi.key=value" (metadata print), "lavfi.key: value"
// (freezedetect's log) or "lavfi.scd.score: 40.490, lavfi.scd.time: 10"
// (scdet's log).
func (p *DetectParser) lavfiLine(source, line string) []Detection {
	if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(k, " :,") {
		x, ok := detectFinite(v)
		if !ok {
			return nil
		}
		t, known := p.times[source]
		if !known {
			t = -1
		}
		return []Detection{{Source: source, Key: k, Value: x, Time: t}}
	}
	var out []Detection
	for _, part := range strings.Split(line, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !strings.HasPrefix(k, "lavfi.") || strings.ContainsAny(k, " =") {
			continue
		}
		if x, ok := detectFinite(strings.TrimSpace(v)); ok {
			out = append(out, Detection{Source: source, Key: k, Value: x, Time: -1})
		}
	}
	return out
}

// ebur128Line reads ebur128's verbose per-frame line:
// "t: 0.299979   TARGET:-23 LUFS    M:-120.7 S:-120.7     I: -70.0 LUFS
// LRA:   0.0 LU  FTPK: -17.7 dBFS  TPK: -16.1 dBFS" (TPK is in dB; it is
// reported linear, as the metadata has it).
func (p *DetectParser) ebur128Line(source, line string) []Detection {
	f := strings.Fields(strings.ReplaceAll(line, ":", ": "))
	t := -1.0
	var out []Detection
	for i := 0; i < len(f); i++ {
		name, ok := strings.CutSuffix(f[i], ":")
		if !ok {
			continue
		}
		// the values up to the next "name:" or unit
		var vals []float64
		for j := i + 1; j < len(f); j++ {
			x, ok := detectFinite(f[j])
			if !ok {
				break
			}
			vals = append(vals, x)
		}
		if len(vals) == 0 {
			continue
		}
		switch name {
		case "t":
			t = vals[0]
		case "M", "S", "I", "LRA":
			out = append(out, Detection{Source: source, Key: "lavfi.r128." + name, Value: vals[0]})
		case "TPK":
			peak := math.Inf(-1)
			for _, v := range vals {
				peak = max(peak, v)
			}
			if lin := math.Pow(10, peak/20); !math.IsInf(lin, 0) && !math.IsNaN(lin) {
				out = append(out, Detection{Source: source, Key: KeyTruePeak, Value: lin})
			}
		}
	}
	for i := range out {
		out[i].Time = t
	}
	return out
}

// detectFieldAfter reads the number that follows prefix in line.
func detectFieldAfter(line, prefix string) (float64, bool) {
	i := strings.Index(line, prefix)
	if i < 0 {
		return 0, false
	}
	rest := strings.TrimSpace(line[i+len(prefix):])
	if j := strings.IndexAny(rest, " \t"); j >= 0 {
		rest = rest[:j]
	}
	return detectFinite(rest)
}

// detectFinite parses a finite float.
func detectFinite(s string) (float64, bool) {
	x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, false
	}
	return x, true
}

// ReadDetections parses every line of r (a metadata print file or
// ffmpeg's stderr) and calls fn with each detection in order.
func ReadDetections(r io.Reader, fn func(Detection)) error {
	var p DetectParser
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxDetectLine)
	for sc.Scan() {
		for _, d := range p.Line(sc.Text()) {
			fn(d)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read detections: %w", err)
	}
	return nil
}
