// Package liveqc watches live streams for technical problems (black or
// frozen video, silence, clipping, true peaks over the limit, a missing
// track) with the same ffmpeg filters and detector as the VOD qc task,
// and publishes each problem as a qc.alert event as it is found.
package liveqc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/ffpipe"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/vod"
)

// ReaderKind is the reader kind of QC monitors in the stream info.
const ReaderKind = "qc"

// Errors of Start and Stop.
var (
	ErrNoStream = errors.New("no such stream")
	ErrNotRun   = errors.New("stream has no live qc")
	ErrClosed   = errors.New("live qc closed")
)

// Config configures a Manager.
type Config struct {
	Hub *stream.Hub
	// Events receives the alerts. Required.
	Events events.Sink
	// FFmpeg runs the filters (default "ffmpeg").
	FFmpeg string
	Logger *slog.Logger
}

// Manager runs the live QC of hub streams.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	monitors map[string]*monitor
	closed   bool
}

// New returns a Manager; Close stops every monitor.
func New(cfg Config) *Manager {
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: log, ctx: ctx, cancel: cancel, monitors: map[string]*monitor{}}
}

// Start watches stream name with params until Stop or until the stream
// ends; starting a watched stream again restarts it with the new params.
func (m *Manager) Start(name string, params vod.QCParams) error {
	st, err := m.cfg.Hub.Get(name)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNoStream, name)
	}
	ctx, cancel := context.WithCancel(m.ctx)
	mon := &monitor{m: m, st: st, params: params, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log: m.log.With("stream", name)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		cancel()
		return ErrClosed
	}
	old := m.monitors[name]
	m.monitors[name] = mon
	m.wg.Add(1)
	m.mu.Unlock()
	if old != nil {
		old.stop()
	}
	go func() {
		defer m.wg.Done()
		mon.run()
		m.mu.Lock()
		if m.monitors[name] == mon {
			delete(m.monitors, name)
		}
		m.mu.Unlock()
	}()
	m.log.Info("live qc started", "stream", name)
	return nil
}

// Stop ends the QC of name.
func (m *Manager) Stop(name string) error {
	m.mu.Lock()
	mon := m.monitors[name]
	delete(m.monitors, name)
	m.mu.Unlock()
	if mon == nil {
		return fmt.Errorf("%w: %s", ErrNotRun, name)
	}
	mon.stop()
	return nil
}

// Running reports whether name is watched.
func (m *Manager) Running(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.monitors[name] != nil
}

// Close stops every monitor and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*monitor, 0, len(m.monitors))
	for _, mon := range m.monitors {
		all = append(all, mon)
	}
	m.mu.Unlock()
	m.cancel()
	for _, mon := range all {
		mon.stop()
	}
	m.wg.Wait()
}

// monitor watches one stream.
type monitor struct {
	m      *Manager
	st     *stream.Stream
	params vod.QCParams
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (mon *monitor) stop() {
	mon.cancel()
	<-mon.done
}

func (mon *monitor) run() {
	defer close(mon.done)
	r, err := mon.st.NewReader(ReaderKind, "")
	if err != nil {
		return
	}
	defer func() { r.Close() }()
	var w *watch
	defer func() {
		if w != nil {
			w.finish()
		}
	}()
	for {
		it, err := r.Read(mon.ctx)
		if errors.Is(err, stream.ErrSlowReader) {
			mon.log.Warn("live qc fell behind the stream; reading on from its next keyframe")
			if r, err = mon.st.NewReader(ReaderKind, ""); err == nil {
				continue
			}
		}
		if err != nil {
			return
		}
		if it.Session != nil {
			if w != nil {
				w.finish()
			}
			w = mon.watchSession(it.Session)
			continue
		}
		if w != nil {
			w.write(it.AU)
		}
	}
}

// alert publishes one issue, with its times in the session's time.
func (mon *monitor) alert(session int, is vod.QCIssue) {
	data := map[string]any{"type": is.Type, "severity": is.Severity, "message": is.Message, "session": session,
		"start": is.Start, "end": is.End, "duration": is.Duration}
	mon.m.cfg.Events.Publish(events.Event{Type: events.QCAlert, Stream: mon.st.Name(), Data: data})
}

// watch is the ffmpeg run over one publishing session.
type watch struct {
	mon     *monitor
	session int
	child   *ffpipe.Child
	det     *vod.QCDetector
	base    time.Duration // session time of ffmpeg's time 0
	based   bool
	last    time.Duration
	mu      sync.Mutex // guards det, base
	read    sync.WaitGroup
	once    sync.Once
}

// watchSession reports a missing track at once and starts the filters on
// the tracks there are.
func (mon *monitor) watchSession(s *stream.Session) *watch {
	var video, audio *stream.Track
	for _, t := range s.Tracks {
		switch {
		case t.IsVideo() && video == nil:
			video = t
		case !t.IsVideo() && audio == nil:
			audio = t
		}
	}
	p := mon.params
	if video == nil && (p.RequireVideo == nil || *p.RequireVideo) {
		mon.alert(s.ID, vod.QCIssue{Type: vod.QCIssueMissingVideo, Severity: vod.SeverityError, Message: "the stream has no video track"})
	}
	if audio == nil && (p.RequireAudio == nil || *p.RequireAudio) {
		mon.alert(s.ID, vod.QCIssue{Type: vod.QCIssueMissingAudio, Severity: vod.SeverityError, Message: "the stream has no audio track"})
	}
	vf, af := vod.QCFilters(p)
	args := append([]string{"-hide_banner", "-nostats", "-loglevel", "info", "-nostdin"}, ffpipe.InputArgs...)
	var tracks []*stream.Track
	if video != nil {
		tracks = append(tracks, video)
		args = append(args, "-map", "0:v:0", "-vf", vf)
	}
	if audio != nil {
		tracks = append(tracks, audio)
		args = append(args, "-map", "0:a:0", "-af", af)
	}
	if len(tracks) == 0 {
		return nil
	}
	args = append(args, "-f", "null", "-")
	child, err := ffpipe.Start(mon.m.cfg.FFmpeg, args, tracks)
	if err != nil {
		mon.log.Warn("live qc cannot start", "error", err.Error())
		return nil
	}
	w := &watch{mon: mon, session: s.ID, child: child, det: vod.NewQCDetector(p)}
	w.read.Add(2)
	go func() {
		defer w.read.Done()
		sc := bufio.NewScanner(child.Stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			w.line(sc.Text())
		}
	}()
	go func() {
		defer w.read.Done()
		buf := make([]byte, 4096)
		for {
			if _, err := child.Stdout.Read(buf); err != nil {
				return
			}
		}
	}()
	return w
}

func (w *watch) write(au *stream.AccessUnit) {
	if !w.child.Supported(au.Track) {
		return
	}
	w.mu.Lock()
	if !w.based {
		w.base, w.based = au.DTS, true
		w.det.Offset = au.DTS.Seconds()
	}
	w.last = max(w.last, au.PTS)
	w.mu.Unlock()
	w.child.Write(au)
}

func (w *watch) line(l string) {
	w.mu.Lock()
	issues := w.det.Line(l)
	w.mu.Unlock()
	for _, is := range issues {
		w.mon.alert(w.session, is)
	}
}

// finish ends the ffmpeg run and reports the spans still open (but not
// the integrated loudness of a live stream, which has no end to judge).
func (w *watch) finish() {
	w.once.Do(func() {
		if w.mon.ctx.Err() != nil {
			w.child.Kill()
		}
		w.child.CloseInput()
		w.child.Wait(10 * time.Second)
		w.read.Wait()
		w.mu.Lock()
		issues := w.det.Finish(w.last.Seconds())
		w.mu.Unlock()
		for _, is := range issues {
			if is.Type != vod.QCIssueLoudness {
				w.mon.alert(w.session, is)
			}
		}
	})
}
