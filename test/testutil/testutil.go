// Package testutil holds the helpers MPS's tests share: log capture, free
// ports, the repository root, and the goroutine leak check.
package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// LogBuffer collects a logger's or a process's output for assertions and
// failure reports. It is safe for concurrent writes.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines returns the non-empty lines that contain every one of subs.
func (b *LogBuffer) Lines(subs ...string) []string {
	var out []string
	for line := range strings.SplitSeq(b.String(), "\n") {
		if line != "" && containsAll(line, subs) {
			out = append(out, line)
		}
	}
	return out
}

// LinesWithAny returns the lines that contain at least one of subs.
func (b *LogBuffer) LinesWithAny(subs ...string) []string {
	var out []string
	for line := range strings.SplitSeq(b.String(), "\n") {
		for _, s := range subs {
			if strings.Contains(line, s) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// Tail returns the last n lines of s, saying how many came before.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RepoRoot returns the folder holding go.mod, searching up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RequireTools fails the test when a command is missing. The tools are part
// of the test machine (the Makefile installs them), so their absence is a
// failure, not a skip.
func RequireTools(tb testing.TB, tools ...string) {
	tb.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("%s is not installed (make test installs it): %v", tool, err)
		}
	}
}

// RunWithLeakCheck runs the tests of m and then fails the run when a
// goroutine whose stack mentions one of pkgs is still alive. It waits a
// little for goroutines that are on their way out. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/stream.")) }
func RunWithLeakCheck(m *testing.M, pkgs ...string) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	if leaked := leakedGoroutines(pkgs, 3*time.Second); leaked != "" {
		fmt.Fprintf(os.Stderr, "goroutines leaked:\n%s\n", leaked)
		return 1
	}
	return 0
}

func leakedGoroutines(pkgs []string, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "RunWithLeakCheck") || strings.Contains(g, "leakedGoroutines") {
				continue
			}
			for _, p := range pkgs {
				if strings.Contains(g, p) {
					leaked = append(leaked, g)
					break
				}
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SplitAnnexB splits a whole H.264 or H.265 Annex-B byte stream, such as
// ffmpeg writes with -f h264, into its NAL units. (mediacommon's AnnexB
// reads one access unit and refuses a whole stream's worth of units.)
func SplitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+3 <= len(b); {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 {
		out = append(out, b[start:])
	}
	return out
}
