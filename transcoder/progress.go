package transcoder

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Progress is the latest report of a ladder's FFmpeg child, from its
// -progress output. Frame, DropFrames and DupFrames count from the start of
// the current child; they restart from zero when it is restarted.
type Progress struct {
	// Frame is the number of frames encoded (of the first output).
	Frame int64 `json:"frame"`
	// FPS is the encoding rate in frames per second.
	FPS float64 `json:"fps"`
	// Speed is the encoding rate as a multiple of real time over the last
	// seconds; below 1 the ladder cannot keep up with a live source.
	Speed      float64 `json:"speed"`
	DropFrames int64   `json:"drop_frames"`
	DupFrames  int64   `json:"dup_frames"`
	// Updated is when the report arrived; zero before the first one.
	Updated time.Time `json:"updated,omitzero"`

	// outTime is the media time of the output, for the speed.
	outTime time.Duration
}

// speedSmoothing weighs a new speed sample against the running value.
// ffmpeg's own speed is an average since the child started (and, with
// -copyts, counts from the source's first timestamp), so a ladder that
// keeps up shows well under 1x for minutes; the speed is measured between
// reports instead.
const speedSmoothing = 0.3

// measureSpeed sets cur.Speed from the media time the output advanced
// since prev, over the wall time between them.
func measureSpeed(prev, cur *Progress) {
	if prev.Updated.IsZero() || prev.outTime <= 0 || cur.outTime <= prev.outTime {
		return
	}
	wall := cur.Updated.Sub(prev.Updated)
	if wall < 100*time.Millisecond {
		return
	}
	sample := float64(cur.outTime-prev.outTime) / float64(wall)
	if prev.Speed <= 0 {
		cur.Speed = sample
		return
	}
	cur.Speed = prev.Speed + speedSmoothing*(sample-prev.Speed)
}

// maxProgressLine bounds a line of -progress output; longer ones are
// skipped.
const maxProgressLine = 4096

// ReadProgress parses ffmpeg's -progress output from r and calls fn with
// each complete report (a block of key=value lines ending in progress=...).
// It returns when r ends. Malformed lines and values are ignored.
func ReadProgress(r io.Reader, fn func(Progress)) error {
	br := bufio.NewReaderSize(r, maxProgressLine)
	var cur, last Progress
	skipping := false
	for {
		line, isPrefix, err := br.ReadLine()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if skipping || isPrefix {
			// The tail (or a part) of an over-long line.
			skipping = isPrefix
			continue
		}
		if parseProgressLine(&cur, line) {
			cur.Updated = time.Now()
			measureSpeed(&last, &cur)
			last = cur
			fn(cur)
		}
	}
}

// parseProgressLine applies one key=value line to p and reports whether it
// ended a report.
func parseProgressLine(p *Progress, line []byte) (done bool) {
	k, v, ok := bytes.Cut(line, []byte{'='})
	if !ok {
		return false
	}
	key := string(bytes.TrimSpace(k))
	val := strings.TrimSpace(string(v))
	switch key {
	case "frame":
		if n, ok := parseCount(val); ok {
			p.Frame = n
		}
	case "fps":
		if f, ok := parseRate(val); ok {
			p.FPS = f
		}
	case "speed":
		if f, ok := parseRate(strings.TrimSuffix(val, "x")); ok {
			p.Speed = f
		} else if val == "N/A" {
			p.Speed = 0
		}
	case "out_time_us":
		if n, ok := parseCount(val); ok {
			p.outTime = time.Duration(n) * time.Microsecond
		}
	case "drop_frames":
		if n, ok := parseCount(val); ok {
			p.DropFrames = n
		}
	case "dup_frames":
		if n, ok := parseCount(val); ok {
			p.DupFrames = n
		}
	case "progress":
		return true
	}
	return false
}

func parseCount(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

func parseRate(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, false
	}
	return f, true
}

// OutTime is the media time the output has reached, for progress against
// a known input duration.
func (p Progress) OutTime() time.Duration { return p.outTime }
