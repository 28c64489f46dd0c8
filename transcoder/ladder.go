package transcoder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mps-dev/mps/stream"
)

// killGrace is how long a child gets to exit after SIGTERM before SIGKILL.
const killGrace = 2 * time.Second

// stallTimeout is how long a write to the child's input may block before
// the child is taken for hung and killed (a variable for tests). Meanwhile
// the hub drops the ladder's reader, never the source's publisher.
var stallTimeout = 20 * time.Second

// readResult tells why a ladder stopped reading its source.
type readResult int

const (
	resEnded       readResult = iota + 1 // the source ended for good
	resCanceled                          // the ladder was stopped
	resDropped                           // the hub dropped the reader: attach again
	resChildExited                       // the child is gone: restart it after a delay
)

// ladder runs one template on one source stream. Its goroutine reads the
// source, feeds the child, and supervises it; the child's pipes are read by
// goroutines of their own, which end with the child.
type ladder struct {
	m      *Manager
	name   string
	src    *stream.Stream
	tpl    *Template
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// Owned by the run goroutine.
	session  *stream.Session
	plan     *plan
	child    *child
	input    *tsInput
	outs     map[string]*rungOut
	delay    time.Duration // the next restart delay
	startErr error         // why the last child could not start
	badUnits int

	mu         sync.Mutex
	state      State
	restarts   int
	lastErr    string
	progress   Progress
	curPlan    *plan
	pid        int
	gen        int // child generation, so a late report of an old child is ignored
	readCancel context.CancelFunc
}

func newLadder(m *Manager, src *stream.Stream, tpl *Template) *ladder {
	ctx, cancel := context.WithCancel(context.Background())
	lo, _ := m.backoff()
	return &ladder{
		m:      m,
		name:   src.Name(),
		src:    src,
		tpl:    tpl,
		log:    m.logger().With("stream", src.Name(), "template", tpl.Name),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		outs:   make(map[string]*rungOut),
		delay:  lo,
		state:  StateStarting,
	}
}

// stop ends the ladder and waits until its child and goroutines are gone.
func (l *ladder) stop() {
	l.cancel()
	<-l.done
}

func (l *ladder) run() {
	defer l.finish()
	for {
		r, err := l.src.NewReader("transcoder", "")
		if err != nil {
			l.log.Info("ladder stopped: source ended")
			return
		}
		res := l.read(r)
		r.Close()
		switch res {
		case resEnded:
			l.log.Info("ladder stopped: source ended")
			return
		case resCanceled:
			return
		case resDropped:
			l.log.Warn("transcoder fell behind the source and was dropped; attaching again from the next keyframe")
		case resChildExited:
			if l.ctx.Err() != nil {
				return
			}
			delay := l.reap()
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return
			case <-l.src.Ended():
				t.Stop()
				l.log.Info("ladder stopped: source ended")
				return
			}
		}
	}
}

// read feeds the child from r until something needs the run loop.
func (l *ladder) read(r *stream.Reader) readResult {
	var rctx context.Context
	newReadContext := func() {
		var rcancel context.CancelFunc
		rctx, rcancel = context.WithCancel(l.ctx)
		l.mu.Lock()
		if l.readCancel != nil {
			l.readCancel()
		}
		l.readCancel = rcancel
		l.mu.Unlock()
	}
	newReadContext()
	defer func() {
		l.mu.Lock()
		l.readCancel()
		l.readCancel = nil
		l.mu.Unlock()
	}()
	for {
		if l.child != nil && l.child.hasExited() {
			return resChildExited
		}
		it, err := r.Read(rctx)
		if err != nil {
			switch {
			case l.ctx.Err() != nil:
				return resCanceled
			case rctx.Err() != nil:
				if l.child != nil && l.child.hasExited() {
					return resChildExited
				}
				// Woken by a child that was being stopped anyway: the
				// item is still queued.
				newReadContext()
				continue
			case errors.Is(err, stream.ErrSlowReader):
				return resDropped
			default:
				return resEnded
			}
		}
		if it.Session != nil {
			l.onSession(it.Session)
			continue
		}
		if res := l.onUnit(it.AU); res != 0 {
			if l.ctx.Err() != nil {
				return resCanceled
			}
			return res
		}
	}
}

// wakeReader makes a blocked read return, after the child exited.
func (l *ladder) wakeReader() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readCancel != nil {
		l.readCancel()
	}
}

func (l *ladder) planOptions() planOptions {
	return planOptions{
		thumbnails: l.m.Thumbnails != nil,
		thumbEvery: l.m.ThumbnailInterval,
		ffmpeg:     l.m.ffmpeg(),
	}
}

// onSession handles the start of a source session. A new session (a
// reconnect, new codec parameters) gets a new plan and a new child; the
// same session again means the reader was attached again.
func (l *ladder) onSession(s *stream.Session) {
	if s == l.session {
		if l.input != nil {
			l.input.resume()
		}
		return
	}
	l.stopChild()
	l.session = s
	for _, ro := range l.outs {
		ro.endSession(errSourceNewSession)
	}
	p, err := makePlan(l.name, s, l.tpl, l.planOptions())
	if err != nil {
		l.plan = nil
		for name, ro := range l.outs {
			ro.endSession(nil)
			delete(l.outs, name)
		}
		l.log.Error("ladder cannot transcode this session; waiting for the next one", "session", s.ID, "error", err)
		l.mu.Lock()
		l.state, l.lastErr, l.curPlan = StateFailed, err.Error(), nil
		l.mu.Unlock()
		return
	}
	planned := make(map[string]bool)
	for _, r := range p.transcoded() {
		planned[r.stream] = true
		ro := l.outs[r.stream]
		if ro == nil {
			ro = &rungOut{hub: l.m.Hub, name: r.stream, log: l.log}
			l.outs[r.stream] = ro
		}
		r.out = ro
	}
	for name, ro := range l.outs {
		if !planned[name] {
			ro.endSession(nil)
			delete(l.outs, name)
		}
	}
	l.plan = p
	l.log.Info("ladder planned", "session", s.ID, "source_size", fmt.Sprintf("%dx%d", p.srcWidth, p.srcHeight),
		"rungs", p.streamNames())
	l.mu.Lock()
	l.curPlan = p
	l.state = StateStarting
	if !p.needsChild() {
		l.state = StateRunning
	}
	l.mu.Unlock()
}

// onUnit feeds one access unit to the child, starting the child on the
// first video keyframe. It returns non-zero when the run loop must act.
func (l *ladder) onUnit(au *stream.AccessUnit) readResult {
	if l.plan == nil || !l.plan.needsChild() {
		return 0
	}
	if l.child == nil {
		if au.Track != l.plan.video || !au.Key {
			return 0
		}
		if err := l.startChild(au); err != nil {
			l.startErr = err
			return resChildExited
		}
	}
	err := l.input.write(au)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errBadUnit):
		l.badUnits++
		if l.badUnits <= 5 {
			l.log.Warn("transcoder skipped an access unit", "error", err)
		}
		return 0
	default:
		// The child stopped reading: it is gone or going.
		return resChildExited
	}
}

// startChild starts ffmpeg for the current plan; au is the keyframe the
// child starts with.
func (l *ladder) startChild(au *stream.AccessUnit) error {
	p := l.plan
	args := buildArgs(p, au.PTS)
	l.log.Debug("starting ffmpeg", "args", args)
	c, err := startChild(l.m.ffmpeg(), args, p.layout(), l.wakeReader)
	if err != nil {
		return err
	}
	sw := &stallWriter{w: c.stdin}
	in, err := newTSInput(sw, p.video, p.audio)
	if err != nil {
		c.stopping.Store(true)
		c.terminate()
		c.release()
		return err
	}
	l.mu.Lock()
	l.gen++
	gen := l.gen
	l.pid = c.pid
	l.state = StateStarting
	l.progress = Progress{}
	l.mu.Unlock()

	ref := toTicks(au.DTS)
	for _, r := range p.transcoded() {
		ro, pipe := r.out, c.outs[r.pipe]
		ro.attach(func() { l.markRunning(gen) })
		c.goFunc(func() {
			var err error
			if r.fmp4() {
				// The fMP4 output starts its timeline at 0 on the rung's
				// first frame: that is the keyframe the child starts with.
				err = demuxFMP4Rung(pipe, ro, firstOutTicks(r, toTicks(au.PTS)))
			} else {
				err = demuxRung(pipe, ro, ref, l.log)
			}
			if err != nil {
				l.log.Error("transcoder rendition output", "error", err)
				l.setLastErr(err.Error())
			}
		})
	}
	if c.thumb != nil {
		sink := l.m.Thumbnails
		c.goFunc(func() {
			_ = readThumbnails(c.thumb, func(img []byte) { sink.Put(l.name, img) })
		})
	}
	c.goFunc(func() {
		_ = ReadProgress(c.progress, func(pr Progress) {
			l.mu.Lock()
			if l.gen == gen {
				l.progress = pr
			}
			l.mu.Unlock()
		})
	})
	c.goFunc(func() { c.stderrLog.read(c.stderr, l.log.With("pid", c.pid)) })
	// Stop (or Close) kills the child even while the run goroutine is
	// blocked writing to it; so does a child that stopped reading.
	c.goFunc(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-l.ctx.Done():
				c.stopping.Store(true)
				c.terminate()
				return
			case <-c.exited:
				return
			case <-tick.C:
				if d := sw.stalledFor(); d > stallTimeout && !c.stalled.Swap(true) {
					l.log.Error("ffmpeg stopped reading its input; killing it", "pid", c.pid, "blocked", d.Round(time.Second))
					_ = syscall.Kill(-c.pid, syscall.SIGKILL)
				}
			}
		}
	})
	l.child, l.input = c, in
	if len(p.transcoded()) == 0 {
		l.markRunning(gen)
	}
	l.log.Info("ffmpeg started", "pid", c.pid, "session", l.session.ID, "first_pts", au.PTS)
	return nil
}

func (l *ladder) markRunning(gen int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen == gen && l.state == StateStarting {
		l.state = StateRunning
	}
}

func (l *ladder) setLastErr(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = s
}

// stopChild stops the child on purpose and waits for it and its goroutines.
func (l *ladder) stopChild() {
	c := l.child
	if c == nil {
		return
	}
	c.stopping.Store(true)
	c.terminate()
	c.release()
	l.child, l.input = nil, nil
	l.mu.Lock()
	l.pid = 0
	l.mu.Unlock()
	l.log.Info("ffmpeg stopped", "pid", c.pid)
}

// reap collects a child that exited (or could not start) unexpectedly and
// returns how long to wait before the next one.
func (l *ladder) reap() time.Duration {
	var reason string
	var ran time.Duration
	if c := l.child; c != nil {
		c.terminate() // in case it only stopped reading
		c.release()
		ran = time.Since(c.started)
		reason = c.exitReason()
		l.child, l.input = nil, nil
	} else {
		reason = fmt.Sprintf("ffmpeg could not start: %v", l.startErr)
		l.startErr = nil
	}
	lo, hi := l.m.backoff()
	if ran >= backoffReset {
		l.delay = lo
	}
	delay := l.delay
	l.delay = min(2*l.delay, hi)
	l.mu.Lock()
	l.restarts++
	l.state = StateRestarting
	l.lastErr = reason
	l.pid = 0
	l.mu.Unlock()
	l.log.Warn("ffmpeg exited unexpectedly; restarting", "error", reason, "delay", delay)
	return delay
}

func (l *ladder) finish() {
	l.cancel()
	l.stopChild()
	for name, ro := range l.outs {
		ro.endSession(nil)
		delete(l.outs, name)
	}
	l.m.remove(l)
	close(l.done)
}

func (l *ladder) info() LadderInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LadderInfo{
		Source:    l.name,
		Template:  l.tpl.Name,
		State:     l.state,
		Restarts:  l.restarts,
		LastError: l.lastErr,
		Rungs:     l.variantsLocked(),
		PID:       l.pid,
		Progress:  l.progress,
	}
}

func (l *ladder) variants() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.variantsLocked()
}

// isRendition tells whether name is one of the ladder's transcoded rung
// streams: in the current plan, or in the template while there is none.
func (l *ladder) isRendition(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.curPlan; p != nil {
		return slices.ContainsFunc(p.rungs, func(r *plannedRung) bool { return !r.Passthrough && r.stream == name })
	}
	return slices.ContainsFunc(l.tpl.Rungs, func(r Rung) bool { return !r.Passthrough && l.name+"/"+r.Name == name })
}

// variantsLocked lists the passthrough rungs and the transcoded rungs that
// have published, best first.
func (l *ladder) variantsLocked() []string {
	var out []string
	if p := l.curPlan; p != nil {
		for _, r := range p.rungs {
			switch {
			case r.Passthrough:
				out = append(out, l.name)
			case r.out != nil && r.out.made.Load():
				out = append(out, r.stream)
			}
		}
		return out
	}
	for _, r := range l.tpl.Rungs {
		if r.Passthrough {
			out = append(out, l.name)
		}
	}
	return out
}

// streamNames lists the planned streams, for the log.
func (p *plan) streamNames() []string {
	out := make([]string, 0, len(p.rungs))
	for _, r := range p.rungs {
		if r.width > 0 {
			out = append(out, fmt.Sprintf("%s %dx%d", r.stream, r.width, r.height))
		} else {
			out = append(out, r.stream)
		}
	}
	return out
}

// child is one ffmpeg process and the parent's ends of its pipes.
type child struct {
	cmd       *exec.Cmd
	pid       int
	started   time.Time
	stdin     *os.File
	outs      []*os.File // rung outputs, by plannedRung.pipe
	thumb     *os.File
	progress  *os.File
	stderr    *os.File
	exited    chan struct{}
	waitErr   error // set before exited is closed
	stopping  atomic.Bool
	stalled   atomic.Bool // killed for not reading its input
	termOnce  sync.Once
	wg        sync.WaitGroup
	stderrLog lineLogger
}

// startChild starts ffmpeg with its pipes. The process is started, and
// waited for, on a goroutine locked to its OS thread for the child's whole
// life: Pdeathsig fires when the thread that started the child exits, so
// the child dies when mps does, and only then. onExit is called when the
// child exits without having been stopped.
func startChild(path string, args []string, lay pipeLayout, onExit func()) (*child, error) {
	var parentEnds, childEnds []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			_ = f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("ffmpeg pipe: %w", err)
		}
		return r, w, nil
	}
	c := &child{exited: make(chan struct{})}
	stdinR, stdinW, err := pipe()
	if err != nil {
		return nil, err
	}
	parentEnds, childEnds = append(parentEnds, stdinW), append(childEnds, stdinR)
	c.stdin = stdinW
	nExtra := lay.progress + 1
	extra := make([]*os.File, nExtra)
	readers := make([]*os.File, nExtra)
	for i := range extra {
		r, w, err := pipe()
		if err != nil {
			closeAll(parentEnds)
			closeAll(childEnds)
			return nil, err
		}
		readers[i], extra[i] = r, w
		parentEnds, childEnds = append(parentEnds, r), append(childEnds, w)
	}
	c.outs = readers[:lay.rungs]
	if lay.thumbnail >= 0 {
		c.thumb = readers[lay.thumbnail]
	}
	c.progress = readers[lay.progress]
	stderrR, stderrW, err := pipe()
	if err != nil {
		closeAll(parentEnds)
		closeAll(childEnds)
		return nil, err
	}
	parentEnds, childEnds = append(parentEnds, stderrR), append(childEnds, stderrW)
	c.stderr = stderrR

	cmd := exec.Command(path, args...)
	cmd.Stdin = stdinR
	cmd.Stderr = stderrW
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = childAttr()
	c.cmd = cmd

	startErr := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, once the
		// child has been waited for.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
		if !c.stopping.Load() && onExit != nil {
			onExit()
		}
	}()
	err = <-startErr
	closeAll(childEnds)
	if err != nil {
		closeAll(parentEnds)
		return nil, err
	}
	c.pid = cmd.Process.Pid
	c.started = time.Now()
	return c, nil
}

func (c *child) goFunc(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// release waits for the goroutines reading the child's pipes (they end at
// EOF, once the child is gone) and closes the parent's ends.
func (c *child) release() {
	c.wg.Wait()
	for _, f := range c.outs {
		_ = f.Close()
	}
	for _, f := range []*os.File{c.thumb, c.progress, c.stderr} {
		if f != nil {
			_ = f.Close()
		}
	}
}

func (c *child) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// terminate closes the child's input, asks it to stop (SIGTERM to its
// process group), kills it after killGrace, and waits until it is reaped.
// The readers of its pipes then see EOF.
func (c *child) terminate() {
	c.termOnce.Do(func() {
		_ = c.stdin.Close()
		if c.hasExited() {
			return
		}
		_ = syscall.Kill(-c.pid, syscall.SIGTERM)
		t := time.NewTimer(killGrace)
		defer t.Stop()
		select {
		case <-c.exited:
		case <-t.C:
			_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		}
	})
	<-c.exited
}

// exitReason describes how the child ended, with its last stderr line.
func (c *child) exitReason() string {
	<-c.exited
	s := fmt.Sprintf("ffmpeg (pid %d) exited after %s", c.pid, time.Since(c.started).Round(time.Millisecond))
	if c.stalled.Load() {
		s = fmt.Sprintf("ffmpeg (pid %d) stopped reading its input for %s and was killed", c.pid, stallTimeout)
	}
	if c.waitErr != nil {
		s += ": " + c.waitErr.Error()
	} else {
		s += " with status 0"
	}
	if last := c.stderrLog.lastLine(); last != "" {
		s += ": " + last
	}
	return s
}

// stallWriter tells how long the write in progress has been blocked.
type stallWriter struct {
	w     *os.File
	since atomic.Int64 // UnixNano when the write in progress began, 0 when none
}

func (s *stallWriter) Write(p []byte) (int, error) {
	s.since.Store(time.Now().UnixNano())
	n, err := s.w.Write(p)
	s.since.Store(0)
	return n, err
}

func (s *stallWriter) stalledFor() time.Duration {
	t := s.since.Load()
	if t == 0 {
		return 0
	}
	return time.Since(time.Unix(0, t))
}
