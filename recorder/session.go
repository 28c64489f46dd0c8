package recorder

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/stream"
)

// streamRecording is the recording session of one live stream: a job per
// recorded rendition, sharing a session id and archive numbering.
type streamRecording struct {
	r       *Recorder
	name    string
	source  *stream.Stream
	trigger string
	session string
	since   time.Time
	stopped chan struct{}
	once    sync.Once

	mu   sync.Mutex
	opts Options
	jobs map[string]*job // by hub stream name
	seq  map[string]int  // last archive number per rendition
}

func newStreamRecording(r *Recorder, s *stream.Stream, o Options, trigger string) *streamRecording {
	sr := &streamRecording{
		r:       r,
		name:    s.Name(),
		source:  s,
		trigger: trigger,
		session: newID(),
		since:   time.Now(),
		stopped: make(chan struct{}),
		opts:    o,
		jobs:    make(map[string]*job),
		seq:     make(map[string]int),
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-s.Ended():
			sr.drain()
		case <-sr.stopped:
		}
	}()
	return sr
}

// selects reports whether the options record rendition.
func (o Options) selects(rendition string) bool {
	for _, n := range o.Renditions {
		if n == RenditionsAll || n == rendition {
			return true
		}
	}
	return false
}

// apply starts and stops jobs so that the recorded renditions match o.
func (sr *streamRecording) apply(o Options) {
	sr.mu.Lock()
	sr.opts = o
	sr.mu.Unlock()
	if o.selects(RenditionSource) {
		sr.ensure(sr.source, RenditionSource)
	}
	if l := sr.r.cfg.Ladders; l != nil {
		for _, s := range sr.r.cfg.Hub.Streams() {
			if src, ok := l.SourceOf(s.Name()); ok && src == sr.name && s.Name() != sr.name {
				sr.attachRendition(s, strings.TrimPrefix(s.Name(), sr.name+"/"))
			}
		}
	}
	sr.mu.Lock()
	var drop []*job
	for name, j := range sr.jobs {
		if !o.selects(j.rendition) {
			drop = append(drop, j)
			delete(sr.jobs, name)
		}
	}
	sr.mu.Unlock()
	for _, j := range drop {
		j.stop()
	}
}

func (sr *streamRecording) attachRendition(s *stream.Stream, rung string) {
	sr.mu.Lock()
	ok := sr.opts.selects(rung)
	sr.mu.Unlock()
	if ok {
		sr.ensure(s, rung)
	}
}

// ensure runs a job on s unless one runs.
func (sr *streamRecording) ensure(s *stream.Stream, rendition string) {
	select {
	case <-sr.stopped:
		return
	default:
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if j, ok := sr.jobs[s.Name()]; ok && j.st == s {
		return
	}
	rd, err := s.NewReader("recorder", "")
	if err != nil {
		sr.r.log.Warn("recording not started", "stream", s.Name(), "error", err)
		return
	}
	ctx, cancel := context.WithCancel(sr.r.ctx)
	j := &job{sr: sr, st: s, rendition: rendition, format: sr.opts.Format, cancel: cancel, done: make(chan struct{})}
	sr.jobs[s.Name()] = j
	sr.r.wg.Add(1)
	go func() {
		defer sr.r.wg.Done()
		j.run(ctx, rd)
	}()
}

func (sr *streamRecording) nextSeq(rendition string) int {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.seq[rendition]++
	return sr.seq[rendition]
}

// drain lets every job write what its stream had queued before it ended,
// then forgets the session.
func (sr *streamRecording) drain() {
	sr.once.Do(func() { close(sr.stopped) })
	sr.mu.Lock()
	jobs := make([]*job, 0, len(sr.jobs))
	for _, j := range sr.jobs {
		jobs = append(jobs, j)
	}
	sr.mu.Unlock()
	for _, j := range jobs {
		select {
		case <-j.done:
		case <-sr.r.ctx.Done():
			j.stop()
		}
	}
	sr.stop()
}

// stop ends every job, closing their archives, and forgets the session.
func (sr *streamRecording) stop() {
	sr.once.Do(func() { close(sr.stopped) })
	sr.mu.Lock()
	jobs := make([]*job, 0, len(sr.jobs))
	for _, j := range sr.jobs {
		jobs = append(jobs, j)
	}
	sr.jobs = map[string]*job{}
	sr.mu.Unlock()
	for _, j := range jobs {
		j.stop()
	}
	sr.r.forget(sr)
}

func (sr *streamRecording) status() Status {
	sr.mu.Lock()
	st := Status{
		Stream:     sr.name,
		Recording:  true,
		Renditions: slices.Clone(sr.opts.Renditions),
		Format:     sr.opts.Format,
		Trigger:    sr.trigger,
		Session:    sr.session,
		Since:      sr.since,
		Current:    []Recording{},
	}
	jobs := make([]*job, 0, len(sr.jobs))
	for _, j := range sr.jobs {
		jobs = append(jobs, j)
	}
	sr.mu.Unlock()
	for _, j := range jobs {
		cur, errText := j.current()
		if cur != nil {
			st.Current = append(st.Current, *cur)
		}
		if errText != "" {
			st.Error = errText
		}
	}
	slices.SortFunc(st.Current, func(a, b Recording) int { return strings.Compare(a.Rendition, b.Rendition) })
	return st
}
