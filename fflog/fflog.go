// Package fflog keeps the end of an ffmpeg child's log and finds the line
// that says best what went wrong, for error messages.
package fflog

import (
	"bytes"
	"strings"
	"sync"
)

// keepLines is how many lines a Tail keeps.
const keepLines = 20

// maxPartial bounds an unfinished line.
const maxPartial = 4096

// Tail is an io.Writer that keeps the last non-empty lines written to it.
// It is safe for concurrent use.
type Tail struct {
	mu    sync.Mutex
	lines []string
	part  []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(t.part[:i])); line != "" {
			t.lines = append(t.lines, line)
			if len(t.lines) > keepLines {
				t.lines = t.lines[1:]
			}
		}
		t.part = t.part[i+1:]
	}
	if len(t.part) > maxPartial {
		t.part = t.part[:0]
	}
	return len(p), nil
}

// Lines returns every kept line, the unfinished one included.
func (t *Tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string{}, t.lines...)
	if s := strings.TrimSpace(string(t.part)); s != "" {
		lines = append(lines, s)
	}
	return lines
}

// errorWords mark the lines of ffmpeg's log that tell a failure.
var errorWords = []string{"error", "invalid", "no such", "not found", "does not contain", "unable", "matches no streams"}

// LastError is ffmpeg's most telling line: the last that looks like an
// error, else the last one ("" when nothing was written).
func (t *Tail) LastError() string {
	lines := t.Lines()
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.ToLower(lines[i])
		for _, w := range errorWords {
			if strings.Contains(l, w) {
				return lines[i]
			}
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

// Find returns the last kept line that contains s, or "".
func (t *Tail) Find(s string) string {
	lines := t.Lines()
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

// Contains reports whether a kept line contains s.
func (t *Tail) Contains(s string) bool { return t.Find(s) != "" }
