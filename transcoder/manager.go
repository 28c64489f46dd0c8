package transcoder

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/stream"
)

// Errors that callers match with errors.Is.
var (
	// ErrNoStream: the source stream is not live in the hub.
	ErrNoStream = errors.New("no such live stream")
	// ErrNoLadder: the stream has no ladder running.
	ErrNoLadder = errors.New("no ladder running for the stream")
	// ErrUnsupportedSource: the source cannot be transcoded (AV1 or VP9
	// video, which cannot be fed to ffmpeg over MPEG-TS, or no video).
	ErrUnsupportedSource = errors.New("source cannot be transcoded")
	// ErrInvalidTemplate: the template cannot be run as given.
	ErrInvalidTemplate = errors.New("invalid ladder template")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("transcoder manager closed")
)

// State is the state of a ladder.
type State string

// Ladder states.
const (
	// StateStarting: waiting for a keyframe, or for the child's first
	// output, in the current source session.
	StateStarting State = "starting"
	// StateRunning: the child is producing the rungs.
	StateRunning State = "running"
	// StateRestarting: the child exited unexpectedly and is restarted after
	// a backoff delay; the source keeps serving meanwhile.
	StateRestarting State = "restarting"
	// StateFailed: the current source session cannot be transcoded (see
	// LastError); the ladder tries again with the next session.
	StateFailed State = "failed"
)

// LadderInfo describes a running ladder.
type LadderInfo struct {
	Source   string `json:"source"`
	Template string `json:"template"`
	State    State  `json:"state"`
	// Restarts counts the child's unexpected exits.
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
	// Rungs are the streams the ladder makes, best first (as Variants).
	Rungs []string `json:"rungs"`
	// PID of the running FFmpeg child, 0 when none.
	PID      int      `json:"pid,omitempty"`
	Progress Progress `json:"progress"`
}

// Manager runs the live ladders: one FFmpeg child per transcoded stream,
// fed from the hub, its renditions published back into the hub as
// "{source}/{rung}". Set the fields, then call Start; the zero values pick
// the defaults. A Manager must not be copied after first use.
type Manager struct {
	Hub *stream.Hub
	// FFmpeg is the ffmpeg binary (default "ffmpeg", looked up in PATH).
	FFmpeg string
	// Thumbnails, when set, receives a JPEG of each transcoded stream every
	// ThumbnailInterval (default 5 s), made from the ladder's decode.
	Thumbnails        ThumbnailSink
	ThumbnailInterval time.Duration
	Logger            *slog.Logger
	// RestartBackoffMin and RestartBackoffMax bound the delay before a
	// crashed child is restarted (defaults 0.5 s and 10 s). The delay
	// doubles after each crash, and is reset once a child ran for 30 s.
	RestartBackoffMin time.Duration
	RestartBackoffMax time.Duration

	opMu    sync.Mutex // serialises Start, Stop and Close
	mu      sync.Mutex
	ladders map[string]*ladder
	closed  bool
	wg      sync.WaitGroup
}

// backoffReset is how long a child must run for the restart delay to go
// back to its minimum.
const backoffReset = 30 * time.Second

func (m *Manager) logger() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func (m *Manager) ffmpeg() string {
	if m.FFmpeg != "" {
		return m.FFmpeg
	}
	return "ffmpeg"
}

func (m *Manager) backoff() (lo, hi time.Duration) {
	lo, hi = m.RestartBackoffMin, m.RestartBackoffMax
	if lo <= 0 {
		lo = 500 * time.Millisecond
	}
	if hi <= 0 {
		hi = 10 * time.Second
	}
	return lo, max(lo, hi)
}

// Start runs tpl on the live stream name, replacing the ladder it runs, if
// any (the old child is stopped first; the rung streams continue as new
// sessions). The template gets its defaults (Template.WithDefaults); Start
// does not Validate it against the ffmpeg's capabilities: do that first.
// It fails with ErrNoStream when the stream is not live,
// ErrUnsupportedSource when its current session cannot be transcoded, and
// ErrInvalidTemplate for a template the runtime cannot run. A rendition cannot get a ladder of its own
// (ErrUnsupportedSource). The ladder stops by itself when the stream ends.
func (m *Manager) Start(name string, tpl *Template) error {
	if err := checkTemplate(name, tpl); err != nil {
		return fmt.Errorf("ladder %s: %w", name, err)
	}
	if m.Hub == nil {
		return errors.New("transcoder: Manager.Hub is nil")
	}
	if source, ok := m.SourceOf(name); ok {
		return fmt.Errorf("ladder %s: %w: it is a rendition of %s", name, ErrUnsupportedSource, source)
	}
	src, err := m.Hub.Get(name)
	if err != nil {
		return fmt.Errorf("ladder %s: %w (%w)", name, ErrNoStream, err)
	}
	if src.State() == stream.StateEnded {
		return fmt.Errorf("ladder %s: %w", name, ErrNoStream)
	}
	// A copy with every default filled in: the caller's template may change
	// afterwards without affecting the ladder.
	d := tpl.WithDefaults()
	tpl = &d
	if s := src.Session(); s != nil {
		if _, err := makePlan(name, s, tpl, planOptions{}); err != nil {
			return fmt.Errorf("ladder %s: %w", name, err)
		}
	}

	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	old := m.ladders[name]
	m.mu.Unlock()
	if old != nil {
		old.stop()
	}

	l := newLadder(m, src, tpl)
	m.mu.Lock()
	if m.ladders == nil {
		m.ladders = make(map[string]*ladder)
	}
	m.ladders[name] = l
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		l.run()
	}()
	m.logger().Info("ladder started", "stream", name, "template", tpl.Name, "replaced", old != nil)
	return nil
}

// Stop stops the ladder of name and waits until its child is gone. The
// rung streams end after the hub's grace period. It returns ErrNoLadder
// when none runs.
func (m *Manager) Stop(name string) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	l := m.ladders[name]
	m.mu.Unlock()
	if l == nil {
		return fmt.Errorf("ladder %s: %w", name, ErrNoLadder)
	}
	l.stop()
	m.logger().Info("ladder stopped", "stream", name)
	return nil
}

// Info describes the ladder of name.
func (m *Manager) Info(name string) (LadderInfo, bool) {
	l := m.get(name)
	if l == nil {
		return LadderInfo{}, false
	}
	return l.info(), true
}

// List describes every ladder, ordered by source name. It suits a metrics
// collector: Progress and Restarts per source.
func (m *Manager) List() []LadderInfo {
	m.mu.Lock()
	ls := make([]*ladder, 0, len(m.ladders))
	for _, l := range m.ladders {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	out := make([]LadderInfo, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}

// Progress returns the latest progress report of the ladder of name.
func (m *Manager) Progress(name string) (Progress, bool) {
	l := m.get(name)
	if l == nil {
		return Progress{}, false
	}
	return l.info().Progress, true
}

// Variants lists the streams a player can switch between for name, best
// first: the rung streams being made, with name itself where a rung is a
// passthrough. It is nil when name has no ladder.
func (m *Manager) Variants(name string) []string {
	l := m.get(name)
	if l == nil {
		return nil
	}
	return l.variants()
}

// SourceOf tells whether rendition is a rung stream of a running ladder,
// and of which source.
func (m *Manager) SourceOf(rendition string) (string, bool) {
	i := strings.LastIndexByte(rendition, '/')
	if i <= 0 {
		return "", false
	}
	source, rung := rendition[:i], rendition[i+1:]
	l := m.get(source)
	if l == nil {
		return "", false
	}
	if l.isRendition(source + "/" + rung) {
		return source, true
	}
	return "", false
}

// MakesThumbnails reports whether a ladder's child is making the thumbnails
// of name right now (Thumbnails is set and the child runs). A keyframe
// thumbnailer can skip such streams, and rung streams (see SourceOf).
func (m *Manager) MakesThumbnails(name string) bool {
	l := m.get(name)
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.curPlan != nil && l.curPlan.thumbnails && l.pid != 0
}

// Close stops every ladder, waits for their children to be gone, and
// refuses new ones.
func (m *Manager) Close() {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	m.closed = true
	ls := make([]*ladder, 0, len(m.ladders))
	for _, l := range m.ladders {
		ls = append(ls, l)
	}
	m.mu.Unlock()
	for _, l := range ls {
		l.cancel()
	}
	for _, l := range ls {
		<-l.done
	}
	m.wg.Wait()
}

func (m *Manager) get(name string) *ladder {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ladders[name]
}

// remove forgets l once it has stopped.
func (m *Manager) remove(l *ladder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ladders[l.name] == l {
		delete(m.ladders, l.name)
	}
}
