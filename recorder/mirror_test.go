package recorder

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/events"
)

// copyMirror copies every file it is given to another folder, as an S3
// upload would, and records the order.
type copyMirror struct {
	mu    sync.Mutex
	dst   string
	order []string
	seen  map[string]bool
	early []string // segments a playlist listed before they were mirrored
	fail  error
}

func (m *copyMirror) complete(path, rel string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out := filepath.Join(m.dst, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if strings.HasSuffix(rel, "index.m3u8") {
		for _, line := range strings.Split(string(b), "\n") {
			if seg := filepath.ToSlash(filepath.Join(filepath.Dir(rel), line)); strings.HasSuffix(line, ".m4s") && !m.seen[seg] {
				m.early = append(m.early, seg)
			}
		}
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	m.seen[rel] = true
	m.order = append(m.order, rel)
	return os.WriteFile(out, b, 0o644)
}

// TestMirrorGetsCompleteFiles records an fMP4 stream with rollover and an
// HLS stream: the mirror gets each archive whole when it closes and each
// HLS segment before the playlist that lists it, and the copies are the
// same bytes as the recordings.
func TestMirrorGetsCompleteFiles(t *testing.T) {
	for _, format := range []string{FormatFMP4, FormatHLS} {
		t.Run(format, func(t *testing.T) {
			m := &copyMirror{dst: t.TempDir()}
			e := newEnv(t, 5, Config{Rollover: 2 * time.Second, Format: format, Rule: recordAll, Mirror: m.complete})
			e.publish(t, "live/m", false)
			e.waitEvent(t, events.RecordingFinished, 1)
			if n := len(e.bus.Recent(0, func(ev events.Event) bool { return ev.Type == events.RecordingFileCompleted })); n < 2 {
				t.Fatalf("%d archives, want a rollover", n)
			}
			e.close()
			m.mu.Lock()
			order := append([]string(nil), m.order...)
			m.mu.Unlock()
			// Every file of every archive went to the mirror, with the same bytes.
			err := filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || strings.HasSuffix(p, ".tmp") {
					return err
				}
				rel, _ := filepath.Rel(e.dir, p)
				a, _ := os.ReadFile(p)
				b, rerr := os.ReadFile(filepath.Join(m.dst, rel))
				if rerr != nil || !bytes.Equal(a, b) {
					t.Errorf("%s: the mirror's copy differs or is missing (%v)", rel, rerr)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if format == FormatHLS {
				if len(m.early) > 0 {
					t.Errorf("playlists mirrored before their segments: %v", m.early)
				}
				if !strings.HasSuffix(order[0], "init.mp4") {
					t.Errorf("first file mirrored %s, want the init segment", order[0])
				}
			} else {
				for _, rel := range order {
					if !strings.HasSuffix(rel, ".mp4") && !strings.HasSuffix(rel, ".json") {
						t.Errorf("mirrored %s", rel)
					}
				}
			}
		})
	}
}

// TestMirrorFailureFailsTheRecording makes the mirror fail (a full upload
// spool): the recording reports it as it does a full disk.
func TestMirrorFailureFailsTheRecording(t *testing.T) {
	m := &copyMirror{dst: t.TempDir(), fail: errors.New("spool full")}
	e := newEnv(t, 4, Config{Format: FormatHLS, Rule: recordAll, Mirror: m.complete, RetryInterval: 200 * time.Millisecond})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.publish(t, "live/full", true)
	}()
	defer wg.Wait()
	failed := e.waitEvent(t, events.RecordingFailed, 1)[0]
	if msg, _ := failed.Data["error"].(string); !strings.Contains(msg, "spool full") {
		t.Errorf("failed event %+v", failed)
	}
}
