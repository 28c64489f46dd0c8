// Package captions turns transcripts into caption cues and reads and
// writes them as WebVTT and SubRip (SRT) files.
package captions

import (
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mps-dev/mps/speech"
)

// Cue is one caption on screen.
type Cue struct {
	Start, End time.Duration
	// Text is the cue's lines joined by "\n".
	Text string
}

// Options shape cues. A zero field takes its default.
type Options struct {
	// MaxLineChars is the longest line, in characters; default 42.
	MaxLineChars int
	// MaxLines is the most lines a cue shows; default 2.
	MaxLines int
	// MaxDuration is the longest a cue stays on screen; default 6 s.
	MaxDuration time.Duration
	// MinDuration is the shortest a cue stays on screen: shorter cues
	// are extended, never into the next cue; default 1 s, negative for
	// none.
	MinDuration time.Duration
	// MaxGap is the longest pause inside a cue: a longer pause between
	// two words starts a new cue (it needs word times); default 0.8 s.
	MaxGap time.Duration
}

// Defaults of Options.
const (
	DefaultMaxLineChars = 42
	DefaultMaxLines     = 2
	DefaultMaxDuration  = 6 * time.Second
	DefaultMinDuration  = time.Second
	DefaultMaxGap       = 800 * time.Millisecond
)

func (o Options) withDefaults() Options {
	if o.MaxLineChars <= 0 {
		o.MaxLineChars = DefaultMaxLineChars
	}
	if o.MaxLines <= 0 {
		o.MaxLines = DefaultMaxLines
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = DefaultMaxDuration
	}
	switch {
	case o.MinDuration == 0:
		o.MinDuration = DefaultMinDuration
	case o.MinDuration < 0:
		o.MinDuration = 0
	}
	if o.MaxGap <= 0 {
		o.MaxGap = DefaultMaxGap
	}
	return o
}

// token is one word of a cue with its times.
type token struct {
	start, end time.Duration
	text       string
}

// FromTranscript makes cues from a transcript: one cue per phrase (a
// segment, split where it would exceed the line limits or MaxDuration,
// and at pauses longer than MaxGap; splitting at word times when the
// segment has them, else proportionally by characters). Lines are broken
// at word boundaries and balanced; a word longer than a line is cut.
// Cues are in time order, never overlap, and their times are whole
// milliseconds.
func FromTranscript(t *speech.Transcript, o Options) []Cue {
	if t == nil {
		return nil
	}
	o = o.withDefaults()
	var cues []Cue
	for _, seg := range t.Segments {
		toks := segmentTokens(seg, o.MaxLineChars)
		for _, run := range splitAtGaps(toks, o.MaxGap) {
			for _, chunk := range chunkTokens(run, o) {
				lines, _ := breakLines(tokenTexts(chunk), o.MaxLineChars, o.MaxLines)
				cues = append(cues, Cue{
					Start: chunk[0].start,
					End:   chunk[len(chunk)-1].end,
					Text:  strings.Join(lines, "\n"),
				})
			}
		}
	}
	return fixTimes(cues, o.MinDuration)
}

// segmentTokens returns a segment's words with times: its Words when
// they are usable, else its text's words with times proportional to
// their characters. Words longer than maxChars are cut in pieces.
func segmentTokens(seg speech.Segment, maxChars int) []token {
	var toks []token
	if wordsUsable(seg) {
		for _, w := range seg.Words {
			for _, f := range strings.Fields(w.Text) {
				toks = append(toks, token{start: w.Start, end: max(w.End, w.Start), text: f})
			}
		}
	} else {
		words := strings.Fields(seg.Text)
		total := 0
		for _, w := range words {
			total += utf8.RuneCountInString(w) + 1
		}
		span := max(seg.End-seg.Start, 0)
		at := func(chars int) time.Duration {
			if total == 0 {
				return seg.Start
			}
			return seg.Start + time.Duration(float64(span)*float64(chars)/float64(total))
		}
		pos := 0
		for _, w := range words {
			n := utf8.RuneCountInString(w) + 1
			toks = append(toks, token{start: at(pos), end: at(pos + n), text: w})
			pos += n
		}
	}
	// Cut words longer than a line, with times proportional to the
	// pieces' lengths.
	var out []token
	for _, tk := range toks {
		r := []rune(tk.text)
		if len(r) <= maxChars {
			out = append(out, tk)
			continue
		}
		span := tk.end - tk.start
		for i := 0; i < len(r); i += maxChars {
			j := min(i+maxChars, len(r))
			out = append(out, token{
				start: tk.start + time.Duration(float64(span)*float64(i)/float64(len(r))),
				end:   tk.start + time.Duration(float64(span)*float64(j)/float64(len(r))),
				text:  string(r[i:j]),
			})
		}
	}
	return out
}

// wordsUsable reports whether a segment's word times can be used: some
// words with text, in time order.
func wordsUsable(seg speech.Segment) bool {
	n := 0
	var last time.Duration = math.MinInt64
	for _, w := range seg.Words {
		if strings.TrimSpace(w.Text) == "" {
			continue
		}
		if w.Start < last {
			return false
		}
		last = w.Start
		n++
	}
	return n > 0
}

// splitAtGaps splits tokens where the pause between two words is longer
// than maxGap.
func splitAtGaps(toks []token, maxGap time.Duration) [][]token {
	var runs [][]token
	start := 0
	for i := 1; i < len(toks); i++ {
		if toks[i].start-toks[i-1].end > maxGap {
			runs = append(runs, toks[start:i])
			start = i
		}
	}
	if start < len(toks) {
		runs = append(runs, toks[start:])
	}
	return runs
}

func tokenTexts(toks []token) []string {
	s := make([]string, len(toks))
	for i, t := range toks {
		s[i] = t.text
	}
	return s
}

// chunkTokens splits a run of words into the fewest cues that fit the
// line limits and MaxDuration, as even in length as possible.
func chunkTokens(toks []token, o Options) [][]token {
	n := len(toks)
	if n == 0 {
		return nil
	}
	type state struct {
		count int
		cost  float64
		from  int
	}
	best := make([]state, n+1)
	for i := 1; i <= n; i++ {
		best[i] = state{count: math.MaxInt, cost: math.Inf(1), from: -1}
	}
	for j := 1; j <= n; j++ {
		chars := -1
		// Walk i backward from j-1: the cue is toks[i:j].
		for i := j - 1; i >= 0; i-- {
			chars += utf8.RuneCountInString(toks[i].text) + 1
			single := i == j-1
			if !single {
				if chars > o.MaxLineChars*o.MaxLines {
					break
				}
				if toks[j-1].end-toks[i].start > o.MaxDuration {
					break
				}
				if _, ok := breakLines(tokenTexts(toks[i:j]), o.MaxLineChars, o.MaxLines); !ok {
					continue
				}
			}
			prev := best[i]
			if prev.count == math.MaxInt {
				continue
			}
			c := state{count: prev.count + 1, cost: prev.cost + float64(chars)*float64(chars), from: i}
			if c.count < best[j].count || c.count == best[j].count && c.cost < best[j].cost {
				best[j] = c
			}
		}
	}
	var chunks [][]token
	for j := n; j > 0; j = best[j].from {
		chunks = append(chunks, toks[best[j].from:j])
	}
	slices.Reverse(chunks)
	return chunks
}

// breakLines breaks words into the fewest lines of at most maxChars
// characters, as even in length as possible. ok is false when they need
// more than maxLines lines; lines then holds them on as few lines as
// the words allow.
func breakLines(words []string, maxChars, maxLines int) (lines []string, ok bool) {
	n := len(words)
	if n == 0 {
		return nil, true
	}
	type state struct {
		count int
		cost  float64
		from  int
	}
	best := make([]state, n+1)
	for i := 1; i <= n; i++ {
		best[i] = state{count: math.MaxInt, from: -1}
	}
	for j := 1; j <= n; j++ {
		chars := -1
		for i := j - 1; i >= 0; i-- {
			chars += utf8.RuneCountInString(words[i]) + 1
			if chars > maxChars && i < j-1 {
				break
			}
			prev := best[i]
			if prev.count == math.MaxInt {
				continue
			}
			c := state{count: prev.count + 1, cost: prev.cost + float64(chars)*float64(chars), from: i}
			// On a tie the last line takes more words (bottom-heavy).
			if c.count < best[j].count || c.count == best[j].count && c.cost <= best[j].cost {
				best[j] = c
			}
		}
	}
	for j := n; j > 0; j = best[j].from {
		lines = append(lines, strings.Join(words[best[j].from:j], " "))
	}
	slices.Reverse(lines)
	return lines, len(lines) <= maxLines
}

// fixTimes rounds cue times to milliseconds, sorts the cues, extends
// short ones to minDur where the next cue allows, and removes overlaps:
// every cue ends up with a positive duration, before the next starts.
func fixTimes(cues []Cue, minDur time.Duration) []Cue {
	minDur = minDur.Round(time.Millisecond)
	for i := range cues {
		c := &cues[i]
		c.Start = max(c.Start.Round(time.Millisecond), 0)
		c.End = c.End.Round(time.Millisecond)
		if c.End <= c.Start {
			c.End = c.Start + max(minDur, time.Millisecond)
		}
	}
	slices.SortStableFunc(cues, func(a, b Cue) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	for i := range cues {
		c := &cues[i]
		if c.End-c.Start >= minDur {
			continue
		}
		want := c.Start + minDur
		if i+1 < len(cues) && want > cues[i+1].Start {
			want = max(c.End, cues[i+1].Start)
		}
		c.End = want
	}
	for i := 1; i < len(cues); i++ {
		prev, c := &cues[i-1], &cues[i]
		if c.Start >= prev.End {
			continue
		}
		if c.Start > prev.Start {
			prev.End = c.Start
			continue
		}
		// Both start together: this one follows the previous.
		d := c.End - c.Start
		c.Start = prev.End
		c.End = max(c.End, c.Start+max(d, time.Millisecond))
	}
	return cues
}
