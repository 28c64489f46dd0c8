package fflog

import (
	"fmt"
	"strings"
	"testing"
)

func TestTailKeepsTheTellingLine(t *testing.T) {
	var tl Tail
	fmt.Fprint(&tl, "Input #0, lavfi\n  Stream #0:0: Video\n[in @ 0x1] Invalid data found when processing input\nConversion ")
	fmt.Fprint(&tl, "failed!\n")
	if got := tl.LastError(); got != "[in @ 0x1] Invalid data found when processing input" {
		t.Errorf("LastError = %q", got)
	}
	var quiet Tail
	fmt.Fprint(&quiet, "a\nb\nlast line without newline")
	if got := quiet.LastError(); got != "last line without newline" {
		t.Errorf("LastError without errors = %q", got)
	}
	var many Tail
	for i := range 100 {
		fmt.Fprintf(&many, "line %d\n", i)
	}
	if l := many.Lines(); len(l) != keepLines || l[0] != "line 80" || !many.Contains("line 99") || many.Contains("line 5\n") {
		t.Errorf("kept %d lines from %q", len(l), l[0])
	}
	var empty Tail
	if empty.LastError() != "" {
		t.Error("empty tail has an error line")
	}
	var long Tail
	fmt.Fprint(&long, strings.Repeat("x", 10000))
	if l := long.Lines(); len(l) != 0 && len(l[0]) > maxPartial {
		t.Errorf("an endless line kept %d bytes", len(l[0]))
	}
}
