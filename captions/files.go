package captions

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// maxHours bounds the hours of a timestamp, far past any media, so that
// times never overflow a time.Duration.
const maxHours = 100000

// WriteVTT writes cues as a WebVTT file: "WEBVTT", then each cue's
// "00:00:01.000 --> 00:00:03.500" line and text. Times are rounded to
// milliseconds; '&', '<' and '>' in the text are escaped and empty lines
// dropped. A cue with a negative start or ending before it starts is an
// error.
func WriteVTT(w io.Writer, cues []Cue) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("WEBVTT\n")
	for i, c := range cues {
		if err := checkCue(i, c); err != nil {
			return fmt.Errorf("write vtt: %w", err)
		}
		fmt.Fprintf(bw, "\n%s --> %s\n", formatTime(c.Start, '.'), formatTime(c.End, '.'))
		for _, l := range textLines(c.Text) {
			bw.WriteString(vttEscape(l))
			bw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write vtt: %w", err)
	}
	return nil
}

// WriteSRT writes cues as a SubRip file: numbered from 1, with
// "00:00:01,000 --> 00:00:03,500" lines. Times are rounded to
// milliseconds and empty lines of the text dropped. A cue with a
// negative start or ending before it starts is an error.
func WriteSRT(w io.Writer, cues []Cue) error {
	bw := bufio.NewWriter(w)
	for i, c := range cues {
		if err := checkCue(i, c); err != nil {
			return fmt.Errorf("write srt: %w", err)
		}
		if i > 0 {
			bw.WriteByte('\n')
		}
		fmt.Fprintf(bw, "%d\n%s --> %s\n", i+1, formatTime(c.Start, ','), formatTime(c.End, ','))
		for _, l := range textLines(c.Text) {
			bw.WriteString(l)
			bw.WriteByte('\n')
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write srt: %w", err)
	}
	return nil
}

func checkCue(i int, c Cue) error {
	if c.Start < 0 {
		return fmt.Errorf("cue %d: negative start %v", i+1, c.Start)
	}
	if c.End < c.Start {
		return fmt.Errorf("cue %d: ends at %v, before its start %v", i+1, c.End, c.Start)
	}
	if c.End.Round(time.Millisecond) >= maxHours*time.Hour {
		return fmt.Errorf("cue %d: end %v is too late", i+1, c.End)
	}
	return nil
}

// textLines splits cue text into its non-blank lines, trimmed.
func textLines(text string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(text), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

var vttEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func vttEscape(s string) string { return vttEscaper.Replace(s) }

// formatTime writes hh:mm:ss.mmm (sep between seconds and milliseconds).
func formatTime(d time.Duration, sep byte) string {
	ms := d.Round(time.Millisecond).Milliseconds()
	h := ms / 3600000
	m := ms / 60000 % 60
	s := ms / 1000 % 60
	return fmt.Sprintf("%02d:%02d:%02d%c%03d", h, m, s, sep, ms%1000)
}

// ParseError is a malformed caption file: the line and what is wrong.
type ParseError struct {
	Format string // "vtt" or "srt"
	Line   int    // 1-based
	Msg    string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s line %d: %s", e.Format, e.Line, e.Msg)
}

// ErrMalformed is wrapped by every *ParseError.
var ErrMalformed = errors.New("malformed caption file")

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// line is one line of input with its number.
type line struct {
	n    int
	text string
}

// readLines reads r as lines: a leading BOM dropped, CRLF and CR ends
// taken as line ends, trailing spaces trimmed.
func readLines(r io.Reader) ([]line, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	s := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(b))
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "\n")
	lines := make([]line, len(parts))
	for i, p := range parts {
		lines[i] = line{n: i + 1, text: strings.TrimRight(p, " \t\f\v\u00a0")}
	}
	return lines, nil
}

// blocks groups lines into runs of non-blank lines.
func blocks(lines []line) [][]line {
	var out [][]line
	var cur []line
	for _, l := range lines {
		if strings.TrimSpace(l.text) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, l)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// ParseVTT reads a WebVTT file. It needs the WEBVTT header, skips the
// header's other lines and NOTE, STYLE and REGION blocks, and takes cue
// identifiers and cue settings (which it ignores). Times must be
// [hh:]mm:ss.mmm, cues in the order of their start times, and no cue may
// end before it starts. Cue text loses its tags (<i>, <v Name>, <00:01.000>)
// and has its character references (&amp;, &lt;, &gt;, &nbsp;, &lrm;,
// &rlm;) decoded; its lines are trimmed and blank ones dropped.
// A malformed file is a *ParseError naming the line.
func ParseVTT(r io.Reader) ([]Cue, error) {
	lines, err := readLines(r)
	if err != nil {
		return nil, fmt.Errorf("read vtt: %w", err)
	}
	perr := func(n int, format string, a ...any) error {
		return &ParseError{Format: "vtt", Line: n, Msg: fmt.Sprintf(format, a...)}
	}
	if len(lines) == 0 {
		return nil, perr(1, "empty file, no WEBVTT header")
	}
	if h := lines[0].text; h != "WEBVTT" && !strings.HasPrefix(h, "WEBVTT ") && !strings.HasPrefix(h, "WEBVTT\t") {
		return nil, perr(1, "no WEBVTT header (the file starts with %q)", clip(h))
	}
	// The header runs to the first blank line (or the first timing line).
	i := 1
	for i < len(lines) && strings.TrimSpace(lines[i].text) != "" && !strings.Contains(lines[i].text, "-->") {
		i++
	}
	cues := []Cue{}
	for _, blk := range blocks(lines[i:]) {
		first := strings.TrimSpace(blk[0].text)
		if !strings.Contains(blk[0].text, "-->") && (isKeyword(first, "NOTE") || isKeyword(first, "STYLE") || isKeyword(first, "REGION")) {
			continue
		}
		k := 0
		if !strings.Contains(blk[0].text, "-->") {
			// A cue identifier.
			if len(blk) < 2 || !strings.Contains(blk[1].text, "-->") {
				n := blk[0].n
				if len(blk) > 1 {
					n = blk[1].n
				}
				return nil, perr(n, "expected a cue timing line \"00:00:01.000 --> 00:00:02.000\" after %q", clip(first))
			}
			k = 1
		}
		for k < len(blk) {
			tl := blk[k]
			start, end, err := parseTiming(tl.text, false)
			if err != nil {
				return nil, perr(tl.n, "%v", err)
			}
			if n := len(cues); n > 0 && start < cues[n-1].Start {
				return nil, perr(tl.n, "cue starts at %s, before the previous cue (%s)", formatTime(start, '.'), formatTime(cues[n-1].Start, '.'))
			}
			k++
			var text []string
			for k < len(blk) && !strings.Contains(blk[k].text, "-->") {
				if l := strings.TrimSpace(vttText(blk[k].text)); l != "" {
					text = append(text, l)
				}
				k++
			}
			cues = append(cues, Cue{Start: start, End: end, Text: strings.Join(text, "\n")})
		}
	}
	return cues, nil
}

// isKeyword reports whether s is kw alone or followed by a space or tab.
func isKeyword(s, kw string) bool {
	return s == kw || strings.HasPrefix(s, kw+" ") || strings.HasPrefix(s, kw+"\t")
}

// clip shortens s for an error message.
func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return s
}

// vttText removes the tags of a line of cue text and decodes its
// character references.
func vttText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			if j := strings.IndexByte(s[i:], '>'); j >= 0 {
				i += j + 1
				continue
			}
		case '&':
			if j := strings.IndexByte(s[i:], ';'); j > 0 {
				if r, ok := vttEntities[s[i+1:i+j]]; ok {
					b.WriteString(r)
					i += j + 1
					continue
				}
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

var vttEntities = map[string]string{
	"amp": "&", "lt": "<", "gt": ">", "nbsp": "\u00a0", "lrm": "\u200e", "rlm": "\u200f",
}

// ParseSRT reads a SubRip file: blocks of an optional index line, a
// "00:00:01,000 --> 00:00:02,000" timing line (a '.' instead of the ','
// and 1 to 3 fraction digits are taken; anything after the end time is
// ignored) and text lines, separated by blank lines. Cues must be in the
// order of their start times and none may end before it starts. Cue text
// loses its tags (<i>, <font color=...>); its lines are trimmed and blank
// ones dropped. A malformed file is a *ParseError naming the line.
func ParseSRT(r io.Reader) ([]Cue, error) {
	lines, err := readLines(r)
	if err != nil {
		return nil, fmt.Errorf("read srt: %w", err)
	}
	perr := func(n int, format string, a ...any) error {
		return &ParseError{Format: "srt", Line: n, Msg: fmt.Sprintf(format, a...)}
	}
	cues := []Cue{}
	for _, blk := range blocks(lines) {
		k := 0
		if !strings.Contains(blk[0].text, "-->") {
			id := strings.TrimSpace(blk[0].text)
			if _, err := strconv.ParseUint(id, 10, 64); err != nil {
				return nil, perr(blk[0].n, "expected a cue number or a timing line, got %q", clip(id))
			}
			if len(blk) < 2 {
				return nil, perr(blk[0].n, "cue %s has no timing line", id)
			}
			k = 1
		}
		tl := blk[k]
		start, end, err := parseTiming(tl.text, true)
		if err != nil {
			return nil, perr(tl.n, "%v", err)
		}
		if n := len(cues); n > 0 && start < cues[n-1].Start {
			return nil, perr(tl.n, "cue starts at %s, before the previous cue (%s)", formatTime(start, ','), formatTime(cues[n-1].Start, ','))
		}
		var text []string
		for _, l := range blk[k+1:] {
			if t := strings.TrimSpace(stripTags(l.text)); t != "" {
				text = append(text, t)
			}
		}
		cues = append(cues, Cue{Start: start, End: end, Text: strings.Join(text, "\n")})
	}
	return cues, nil
}

// stripTags removes <...> tags until none is left.
func stripTags(s string) string {
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return s
		}
		// Remove the innermost tag that ends at the first '>'.
		k := strings.LastIndexByte(s[:i+j], '<')
		s = s[:k] + s[i+j+1:]
	}
}

// parseTiming reads "start --> end [settings]".
func parseTiming(s string, srt bool) (start, end time.Duration, err error) {
	left, right, ok := strings.Cut(s, "-->")
	if !ok {
		return 0, 0, fmt.Errorf("expected a cue timing line, got %q", clip(s))
	}
	right = strings.TrimLeft(right, " \t")
	endText, _, _ := strings.Cut(strings.ReplaceAll(right, "\t", " "), " ")
	if start, err = parseTime(strings.TrimSpace(left), srt); err != nil {
		return 0, 0, fmt.Errorf("start time: %w", err)
	}
	if end, err = parseTime(endText, srt); err != nil {
		return 0, 0, fmt.Errorf("end time: %w", err)
	}
	if end < start {
		sep := byte('.')
		if srt {
			sep = ','
		}
		return 0, 0, fmt.Errorf("cue ends at %s, before it starts at %s", formatTime(end, sep), formatTime(start, sep))
	}
	return start, end, nil
}

// parseTime reads a timestamp: WebVTT's [hh:]mm:ss.mmm, or SRT's
// hh:mm:ss,mmm (also with '.', and 1 to 3 fraction digits).
func parseTime(s string, srt bool) (time.Duration, error) {
	bad := func(why string) error {
		want := "[hh:]mm:ss.mmm"
		if srt {
			want = "hh:mm:ss,mmm"
		}
		return fmt.Errorf("%q is no %s timestamp: %s", clip(s), want, why)
	}
	sepAt := strings.LastIndexAny(s, ".,")
	if sepAt < 0 {
		return 0, bad("no milliseconds")
	}
	if !srt && s[sepAt] != '.' {
		return 0, bad("milliseconds follow a '.'")
	}
	frac := s[sepAt+1:]
	if srt && (len(frac) < 1 || len(frac) > 3) || !srt && len(frac) != 3 || !digits(frac) {
		return 0, bad("the milliseconds need 3 digits")
	}
	fv, _ := strconv.Atoi(frac)
	for range 3 - len(frac) {
		fv *= 10
	}
	parts := strings.Split(s[:sepAt], ":")
	if len(parts) < 2 || len(parts) > 3 || srt && len(parts) != 3 {
		return 0, bad("wrong number of fields")
	}
	var h int
	if len(parts) == 3 {
		hp := parts[0]
		if !digits(hp) || len(hp) > 6 || !srt && len(hp) < 2 {
			return 0, bad("bad hours")
		}
		h, _ = strconv.Atoi(hp)
		if h >= maxHours {
			return 0, bad("too many hours")
		}
		parts = parts[1:]
	}
	var ms [2]int
	for i, p := range parts {
		if len(p) != 2 && !(srt && len(p) == 1) || !digits(p) {
			return 0, bad("minutes and seconds need 2 digits")
		}
		ms[i], _ = strconv.Atoi(p)
		if ms[i] > 59 {
			return 0, bad("minutes and seconds go up to 59")
		}
	}
	return time.Duration(h)*time.Hour + time.Duration(ms[0])*time.Minute +
		time.Duration(ms[1])*time.Second + time.Duration(fv)*time.Millisecond, nil
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
