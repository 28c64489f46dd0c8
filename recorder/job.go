package recorder

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/stream"
)

// job records one hub stream (the source or one rendition) into a
// sequence of archives.
type job struct {
	sr        *streamRecording
	st        *stream.Stream
	rendition string
	format    string
	cancel    context.CancelFunc
	done      chan struct{}

	mu      sync.Mutex
	cur     *entry // the archive being written
	lastErr string

	// Owned by run.
	arch        *archive
	session     *stream.Session
	anchor      time.Time // wall-clock time of session media time 0
	anchorFixed bool
	retryAt     time.Time
	failing     bool
	started     bool
	files       int
	bytes       int64
	duration    time.Duration
	lastPath    string
	lastID      string
	seen        int   // archive flushes already published
	published   int64 // archive size already counted in the stats
}

func (j *job) stop() {
	j.cancel()
	<-j.done
}

func (j *job) current() (*Recording, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur == nil {
		return nil, j.lastErr
	}
	rec := j.sr.r.cat.snapshot(j.cur)
	return &rec, j.lastErr
}

func (j *job) run(ctx context.Context, rd *stream.Reader) {
	r := j.sr.r
	log := r.log.With("stream", j.st.Name(), "rendition", j.rendition)
	defer close(j.done)
	defer func() { rd.Close() }()
	defer j.finishAll()
	for {
		readCtx, cancel := context.WithTimeout(ctx, r.cfg.FragmentDuration)
		it, err := rd.Read(readCtx)
		cancel()
		if err != nil {
			switch {
			case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
				// A stalled publisher: write what is complete.
				if j.arch != nil {
					j.check(j.arch.flush(), log)
				}
				continue
			case errors.Is(err, stream.ErrSlowReader):
				log.Warn("recorder fell behind; the archive continues in a new file", "error", err)
				j.closeArchive(0, false, nil)
				if rd, err = j.st.NewReader("recorder", ""); err != nil {
					return
				}
				continue
			}
			return
		}
		if it.Session != nil {
			j.closeArchive(0, false, nil)
			j.session, j.anchor, j.anchorFixed = it.Session, time.Time{}, false
			continue
		}
		j.write(it.AU, log)
	}
}

// write puts one access unit into the current archive, opening one at a
// keyframe when there is none, and rolling over when it is long enough.
func (j *job) write(au *stream.AccessUnit, log interface {
	Warn(string, ...any)
	Info(string, ...any)
}) {
	r := j.sr.r
	if j.session == nil {
		return
	}
	now := time.Now()
	// A frame is never received before it was captured, so the earliest
	// "now - DTS" is the best estimate of when the session's media time 0
	// was. Ingest may hand over its first seconds in a burst, so the
	// estimate is refined while the session's first archive is written
	// (moving that archive's start), then fixed, so that the archives of a
	// session follow each other exactly.
	if est := now.Add(-au.DTS); !j.anchorFixed && (j.anchor.IsZero() || est.Before(j.anchor)) {
		j.anchor = est
		if j.arch != nil {
			j.arch.anchor = est
			j.arch.rec.Start = est.Add(j.arch.base)
		}
	}
	starts := !hasVideo(j.session.Tracks) || (au.Track.IsVideo() && au.Key && au.Track == firstVideo(j.session.Tracks))
	if j.arch != nil && starts && au.DTS-j.arch.base >= r.cfg.Rollover {
		j.closeArchive(au.DTS, true, nil)
	}
	if j.arch == nil {
		if !starts || now.Before(j.retryAt) {
			return
		}
		if err := j.openArchive(au.DTS); err != nil {
			j.fail(err, log)
			return
		}
	}
	j.check(j.arch.write(au.Track.Index, au), log)
}

// check handles a write error: the archive ends as failed, and writing
// pauses for RetryInterval before a new archive is tried.
func (j *job) check(err error, log interface{ Warn(string, ...any) }) {
	if err == nil {
		j.publish()
		return
	}
	j.closeArchive(0, false, err)
	j.fail(err, log)
}

// relative takes the recordings folder out of an error's text: the API and
// events show paths relative to it.
func (r *Recorder) relative(err error) string {
	return strings.ReplaceAll(err.Error(), filepath.Clean(r.cfg.Dir)+string(filepath.Separator), "")
}

func (j *job) fail(err error, log interface{ Warn(string, ...any) }) {
	r := j.sr.r
	j.retryAt = time.Now().Add(r.cfg.RetryInterval)
	j.mu.Lock()
	j.lastErr = r.relative(err)
	j.mu.Unlock()
	if j.failing {
		return
	}
	j.failing = true
	r.stats.failures.Add(1)
	log.Warn("recording stopped on an error; it resumes by itself", "error", err, "retry", r.cfg.RetryInterval)
	r.emit(events.RecordingFailed, j.st.Name(), map[string]any{"rendition": j.rendition, "path": j.lastPath, "error": r.relative(err)})
}

func (j *job) openArchive(base time.Duration) error {
	r := j.sr.r
	seq := j.sr.nextSeq(j.rendition)
	rel, err := expandPath(r.cfg.PathTemplate, pathVars{
		Name: j.sr.name, Rendition: j.rendition, Session: j.sr.session, Seq: seq, Time: j.anchor.Add(base),
	})
	if err != nil {
		return err
	}
	a, err := openArchive(archiveSpec{
		root: r.cfg.Dir, rel: rel, format: j.format, stream: j.sr.name, rendition: j.rendition,
		session: j.sr.session, seq: seq, tracks: j.session.Tracks, base: base, anchor: j.anchor,
		fragDur: r.cfg.FragmentDuration, mirror: r.cfg.Mirror,
	})
	if err != nil {
		return err
	}
	j.arch, j.seen, j.published = a, 0, a.rec.Size
	r.stats.writing.Add(1)
	r.stats.bytes.Add(uint64(a.rec.Size))
	e := &entry{rec: a.rec, abs: a.abs, sidecar: a.sidecar, active: a}
	r.cat.add(e)
	j.mu.Lock()
	j.cur = e
	j.lastErr = ""
	j.mu.Unlock()
	j.lastPath, j.lastID = a.rec.Path, a.rec.ID
	data := map[string]any{"id": a.rec.ID, "path": a.rec.Path, "rendition": j.rendition, "seq": seq, "duration": 0.0, "size": a.rec.Size}
	if j.failing {
		j.failing = false
		r.emit(events.RecordingResumed, j.sr.name, data)
	}
	if !j.started {
		j.started = true
		r.emit(events.RecordingStarted, j.sr.name, data)
	}
	return nil
}

// publish copies the archive's metadata where the API reads it.
func (j *job) publish() {
	if j.arch == nil || j.arch.flushes == j.seen {
		return
	}
	j.seen = j.arch.flushes
	if n := j.arch.rec.Size - j.published; n > 0 {
		j.sr.r.stats.bytes.Add(uint64(n))
	}
	j.published = j.arch.rec.Size
	j.mu.Lock()
	e := j.cur
	j.mu.Unlock()
	if e != nil {
		j.sr.r.cat.set(e, j.arch.rec, j.arch)
	}
}

// closeArchive ends the current archive (see archive.finish).
func (j *job) closeArchive(next time.Duration, exact bool, cause error) {
	a := j.arch
	if a == nil {
		return
	}
	j.arch = nil
	j.anchorFixed = true
	r := j.sr.r
	rec := a.finish(next, exact, cause, r.relative)
	r.stats.writing.Add(-1)
	if n := rec.Size - j.published; n > 0 {
		r.stats.bytes.Add(uint64(n))
	}
	j.mu.Lock()
	e := j.cur
	j.cur = nil
	j.mu.Unlock()
	if e != nil {
		r.cat.set(e, rec, nil)
	}
	if rec.Duration == 0 && rec.State == StateComplete {
		// Nothing but a header: not worth keeping.
		r.cat.remove(rec.ID)
		removeArchiveFiles(a.abs, a.sidecar)
		return
	}
	r.stats.archives.Add(1)
	j.files++
	j.bytes += rec.Size
	j.duration += time.Duration(rec.Duration * float64(time.Second))
	r.emit(events.RecordingFileCompleted, j.sr.name, map[string]any{
		"id": rec.ID, "path": rec.Path, "rendition": j.rendition, "duration": rec.Duration, "size": rec.Size, "state": rec.State,
	})
	if r.cfg.Finalize && rec.State == StateComplete && e != nil {
		r.finalizeLater(e)
	}
}

// finishAll closes the archive and reports the end of the job.
func (j *job) finishAll() {
	j.closeArchive(0, false, nil)
	if !j.started {
		return
	}
	j.sr.r.emit(events.RecordingFinished, j.sr.name, map[string]any{
		"rendition": j.rendition, "id": j.lastID, "path": j.lastPath, "files": j.files,
		"duration": j.duration.Seconds(), "size": j.bytes,
	})
}

func hasVideo(tracks []*stream.Track) bool { return firstVideo(tracks) != nil }

func firstVideo(tracks []*stream.Track) *stream.Track {
	for _, t := range tracks {
		if t.IsVideo() {
			return t
		}
	}
	return nil
}
