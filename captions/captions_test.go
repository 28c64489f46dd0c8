package captions

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mps-dev/mps/speech"
)

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// checkCues checks what every cue list must satisfy: time order, no
// overlap, positive durations, whole milliseconds, line limits.
func checkCues(t *testing.T, cues []Cue, o Options) {
	t.Helper()
	o = o.withDefaults()
	for i, c := range cues {
		if c.End <= c.Start {
			t.Errorf("cue %d %v..%v: not a positive duration", i, c.Start, c.End)
		}
		if c.Start%time.Millisecond != 0 || c.End%time.Millisecond != 0 {
			t.Errorf("cue %d %v..%v: not whole milliseconds", i, c.Start, c.End)
		}
		if i > 0 && c.Start < cues[i-1].End {
			t.Errorf("cue %d starts at %v, before cue %d ends (%v)", i, c.Start, i-1, cues[i-1].End)
		}
		lines := strings.Split(c.Text, "\n")
		if len(lines) > o.MaxLines {
			t.Errorf("cue %d has %d lines: %q", i, len(lines), c.Text)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > o.MaxLineChars {
				t.Errorf("cue %d line %q has %d characters, more than %d", i, l, n, o.MaxLineChars)
			}
			if l == "" || l != strings.TrimSpace(l) {
				t.Errorf("cue %d has an empty or untrimmed line: %q", i, c.Text)
			}
		}
	}
}

// words returns the words of all cues, in order.
func cueWords(cues []Cue) []string {
	var w []string
	for _, c := range cues {
		w = append(w, strings.Fields(c.Text)...)
	}
	return w
}

func TestFromTranscriptShortSegments(t *testing.T) {
	tr := &speech.Transcript{Segments: []speech.Segment{
		{Start: sec(0.5), End: sec(2), Text: " Hello world."},
		{Start: sec(2.5), End: sec(2.8), Text: "Yes."}, // short: extended up to the next cue
		{Start: sec(3.0), End: sec(3.2), Text: "No."},  // short: extended by MinDuration
		{Start: sec(10), End: sec(12), Text: "   "},    // empty: no cue
	}}
	cues := FromTranscript(tr, Options{})
	want := []Cue{
		{Start: sec(0.5), End: sec(2), Text: "Hello world."},
		{Start: sec(2.5), End: sec(3.0), Text: "Yes."},
		{Start: sec(3.0), End: sec(4.0), Text: "No."},
	}
	if len(cues) != len(want) {
		t.Fatalf("got %d cues %+v, want %+v", len(cues), cues, want)
	}
	for i := range want {
		if cues[i] != want[i] {
			t.Errorf("cue %d = %+v, want %+v", i, cues[i], want[i])
		}
	}
	checkCues(t, cues, Options{})
}

func TestFromTranscriptNil(t *testing.T) {
	if c := FromTranscript(nil, Options{}); len(c) != 0 {
		t.Errorf("nil transcript gave %v", c)
	}
	if c := FromTranscript(&speech.Transcript{}, Options{}); len(c) != 0 {
		t.Errorf("empty transcript gave %v", c)
	}
}

func TestLineBreakingBalanced(t *testing.T) {
	text := "the quick brown fox jumps over the lazy dog and runs far away"
	tr := &speech.Transcript{Segments: []speech.Segment{{Start: 0, End: sec(4), Text: text}}}
	cues := FromTranscript(tr, Options{})
	if len(cues) != 1 {
		t.Fatalf("got %d cues, want 1: %+v", len(cues), cues)
	}
	lines := strings.Split(cues[0].Text, "\n")
	if len(lines) != 2 {
		t.Fatalf("got lines %q, want 2", lines)
	}
	// Balanced: "the quick brown fox jumps over the" (34) / "lazy dog and runs far away" (26)
	// would be greedy; a balanced break is within a word of the middle.
	d := len(lines[0]) - len(lines[1])
	if d < -8 || d > 8 {
		t.Errorf("unbalanced lines %q (%d and %d characters)", lines, len(lines[0]), len(lines[1]))
	}
	if strings.Join(lines, " ") != text {
		t.Errorf("lines %q lost words of %q", lines, text)
	}
	// A short text stays on one line.
	cues = FromTranscript(&speech.Transcript{Segments: []speech.Segment{{End: sec(2), Text: "Hello there, general"}}}, Options{})
	if len(cues) != 1 || cues[0].Text != "Hello there, general" {
		t.Errorf("short text: %+v", cues)
	}
}

func TestBreakLines(t *testing.T) {
	for _, tc := range []struct {
		words    string
		max, n   int
		want     []string
		fitsInto bool
	}{
		{"aaa bbb ccc", 7, 2, []string{"aaa", "bbb ccc"}, true},
		{"aaa bbb ccc ddd", 7, 2, []string{"aaa bbb", "ccc ddd"}, true},
		{"aaa bbb ccc ddd eee", 7, 2, []string{"aaa", "bbb ccc", "ddd eee"}, false},
		{"one", 10, 1, []string{"one"}, true},
		{"a b c d e f g h", 15, 2, []string{"a b c d e f g h"}, true},
	} {
		got, ok := breakLines(strings.Fields(tc.words), tc.max, tc.n)
		if ok != tc.fitsInto || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("breakLines(%q, %d, %d) = %q %v, want %q %v", tc.words, tc.max, tc.n, got, ok, tc.want, tc.fitsInto)
		}
	}
}

func TestLongSegmentSplitProportionally(t *testing.T) {
	// 40 words over 20 s, no word times: more than two lines of 42 and
	// more than 6 s, so several cues with times proportional to the text.
	var ws []string
	for i := range 40 {
		ws = append(ws, []string{"alpha", "beta", "gamma", "delta"}[i%4])
	}
	text := strings.Join(ws, " ")
	tr := &speech.Transcript{Segments: []speech.Segment{{Start: sec(10), End: sec(30), Text: text}}}
	cues := FromTranscript(tr, Options{})
	checkCues(t, cues, Options{})
	if len(cues) < 4 {
		t.Fatalf("got %d cues, want at least 4 (20 s at most 6 s each): %+v", len(cues), cues)
	}
	if got := strings.Join(cueWords(cues), " "); got != text {
		t.Errorf("words changed:\n got %q\nwant %q", got, text)
	}
	if cues[0].Start != sec(10) || cues[len(cues)-1].End != sec(30) {
		t.Errorf("cues span %v..%v, want 10s..30s", cues[0].Start, cues[len(cues)-1].End)
	}
	for i, c := range cues {
		if c.End-c.Start > DefaultMaxDuration {
			t.Errorf("cue %d lasts %v, more than %v", i, c.End-c.Start, DefaultMaxDuration)
		}
		if i > 0 && c.Start != cues[i-1].End {
			t.Errorf("cue %d starts at %v, not where cue %d ends (%v): proportional cues are contiguous", i, c.Start, i-1, cues[i-1].End)
		}
		// Proportional: a cue's share of the time is its share of the text.
		chars := float64(len(c.Text) + 1)
		share := float64(c.End-c.Start) / float64(20*time.Second)
		if d := share - chars/float64(len(text)+1); d > 0.02 || d < -0.02 {
			t.Errorf("cue %d %q has %.3f of the time for %.3f of the text", i, c.Text, share, chars/float64(len(text)+1))
		}
	}
	// Cues are even: the shortest has at least half the words of the longest.
	minW, maxW := 1000, 0
	for _, c := range cues {
		n := len(strings.Fields(c.Text))
		minW, maxW = min(minW, n), max(maxW, n)
	}
	if minW*2 < maxW {
		t.Errorf("uneven cues: %d to %d words", minW, maxW)
	}
}

func TestLongSegmentSplitAtWordTimes(t *testing.T) {
	// Word times: 0.4 s per word, with a 2 s pause after word 9.
	var words []speech.Word
	var texts []string
	at := sec(1)
	for i := range 30 {
		if i == 10 {
			at += sec(2)
		}
		w := []string{"one", "two", "three", "four", "five"}[i%5]
		words = append(words, speech.Word{Start: at, End: at + sec(0.3), Text: w})
		texts = append(texts, w)
		at += sec(0.4)
	}
	seg := speech.Segment{Start: sec(1), End: words[len(words)-1].End, Text: strings.Join(texts, " "), Words: words}
	cues := FromTranscript(&speech.Transcript{Segments: []speech.Segment{seg}}, Options{})
	checkCues(t, cues, Options{})
	if got := strings.Join(cueWords(cues), " "); got != seg.Text {
		t.Errorf("words changed:\n got %q\nwant %q", got, seg.Text)
	}
	// Every cue starts at the start of a word.
	starts := map[time.Duration]bool{}
	for _, w := range words {
		starts[w.Start] = true
	}
	pauseSplit := false
	for i, c := range cues {
		if !starts[c.Start] {
			t.Errorf("cue %d starts at %v, no word's start", i, c.Start)
		}
		if c.Start == words[10].Start {
			pauseSplit = true
		}
	}
	if !pauseSplit {
		t.Errorf("no cue starts after the 2 s pause (at %v): %+v", words[10].Start, cues)
	}
}

func TestLongWordIsCut(t *testing.T) {
	long := strings.Repeat("x", 100)
	cues := FromTranscript(&speech.Transcript{Segments: []speech.Segment{{End: sec(3), Text: "a " + long + " b"}}}, Options{})
	checkCues(t, cues, Options{})
	if got := strings.ReplaceAll(strings.Join(cueWords(cues), ""), " ", ""); got != "a"+long+"b" {
		t.Errorf("text changed: %q", got)
	}
}

func TestCuesNeverOverlap(t *testing.T) {
	// Overlapping, unordered and zero-length segments.
	tr := &speech.Transcript{Segments: []speech.Segment{
		{Start: sec(5), End: sec(7), Text: "third"},
		{Start: sec(1), End: sec(4), Text: "first"},
		{Start: sec(3), End: sec(3), Text: "second"},
		{Start: sec(5), End: sec(6), Text: "fourth"},
		{Start: sec(6.5), End: sec(6.2), Text: "fifth"},
	}}
	cues := FromTranscript(tr, Options{})
	checkCues(t, cues, Options{})
	if len(cues) != 5 {
		t.Fatalf("got %d cues, want 5: %+v", len(cues), cues)
	}
	if cues[0].Text != "first" || cues[0].End != sec(3) {
		t.Errorf("first cue %+v: want it cut at the second's start", cues[0])
	}
}

func TestMinDurationOption(t *testing.T) {
	tr := &speech.Transcript{Segments: []speech.Segment{{Start: sec(1), End: sec(1.2), Text: "hi"}}}
	if c := FromTranscript(tr, Options{MinDuration: 2 * time.Second}); c[0].End != sec(3) {
		t.Errorf("MinDuration 2s: %+v", c)
	}
	if c := FromTranscript(tr, Options{MinDuration: -1}); c[0].End != sec(1.2) {
		t.Errorf("MinDuration off: %+v", c)
	}
}

func TestOptionsLimits(t *testing.T) {
	text := "one two three four five six seven eight nine ten eleven twelve"
	o := Options{MaxLineChars: 12, MaxLines: 1, MaxDuration: 30 * time.Second}
	cues := FromTranscript(&speech.Transcript{Segments: []speech.Segment{{End: sec(6), Text: text}}}, o)
	checkCues(t, cues, o)
	if strings.Join(cueWords(cues), " ") != text {
		t.Errorf("words changed: %+v", cues)
	}
}

func TestWordErrorRate(t *testing.T) {
	for _, tc := range []struct {
		ref, hyp string
		want     float64
	}{
		{"hello world", "hello world", 0},
		{"Hello, World!", "hello world", 0},
		{"the cat sat on the mat", "the cat sat on mat", 1.0 / 6},
		{"the cat sat", "the dog sat", 1.0 / 3},
		{"a b c d", "a x b c d", 1.0 / 4},
		{"a b", "", 1},
		{"", "", 0},
		{"", "extra", 1},
		{"one", "two three", 2},
	} {
		if got := WordErrorRate(tc.ref, tc.hyp); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("WordErrorRate(%q, %q) = %v, want %v", tc.ref, tc.hyp, got, tc.want)
		}
	}
}
