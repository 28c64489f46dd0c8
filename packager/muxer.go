package packager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mps-dev/mps/stream"
)

// part is one CMAF chunk of one track. A segment is the concatenation of its
// parts, so both are served from the same bytes.
type part struct {
	data        []byte
	start       int64 // decode time of the first sample, in track ticks
	duration    int64 // in track ticks
	samples     int
	independent bool
}

// trackSegment is one track's share of a segment.
type trackSegment struct {
	parts []*part
}

func (ts *trackSegment) start() int64 {
	if len(ts.parts) == 0 {
		return 0
	}
	return ts.parts[0].start
}

func (ts *trackSegment) duration() int64 {
	var d int64
	for _, p := range ts.parts {
		d += p.duration
	}
	return d
}

func (ts *trackSegment) size() int {
	n := 0
	for _, p := range ts.parts {
		n += len(p.data)
	}
	return n
}

// segment is a group of aligned track segments sharing one media sequence
// number. Segments start on a keyframe of the stream's first video track.
type segment struct {
	msn           uint64
	period        *period
	discontinuity bool
	dateTime      time.Time
	start         time.Duration // media time, continuous across sessions
	complete      bool
	tracks        []*trackSegment
}

// period is one publishing session: its tracks and init segments. A
// reconnect starts a new period (an HLS discontinuity, a DASH Period).
type period struct {
	id     int
	offset time.Duration // media time at which the session's timestamps start
	tracks []*trackMuxer
}

// muxer packages one hub stream.
type muxer struct {
	name   string
	prefix string // unique per muxer, so a restarted stream never reuses a URL
	cfg    Config
	log    *slog.Logger
	stream *stream.Stream

	mu        sync.RWMutex
	changed   chan struct{} // closed and replaced on every update
	period    *period
	segments  []*segment // oldest first; the last may be in progress
	nextMSN   uint64
	discSeq   int // discontinuities dropped off the front of the window
	ast       time.Time
	partStart time.Duration
	ended     bool
	endedAt   time.Time
	playlists []*mediaPlaylist // per track of the current period, rebuilt on update
	nextDisc  bool
	waitKey   bool
	// periodCount numbers periods; a reader attached again after being
	// dropped restarts the same session as a new period.
	periodCount int
}

func newMuxer(s *stream.Stream, cfg Config, log *slog.Logger) *muxer {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return &muxer{
		name:    s.Name(),
		prefix:  hex.EncodeToString(b),
		cfg:     cfg,
		log:     log.With("stream", s.Name()),
		stream:  s,
		changed: make(chan struct{}),
	}
}

// run reads the stream until it ends. If the hub drops the packager for
// falling behind, it attaches again: players see a discontinuity.
func (m *muxer) run(ctx context.Context, r *stream.Reader) {
	defer func() { r.Close() }()
	for {
		it, err := r.Read(ctx)
		if errors.Is(err, stream.ErrSlowReader) {
			m.log.Warn("packager fell behind; starting again from the next keyframe", "error", err)
			if r, err = m.stream.NewReader("packager", ""); err == nil {
				continue
			}
		}
		if err != nil {
			if !errors.Is(err, stream.ErrStreamEnded) && !errors.Is(err, context.Canceled) {
				m.log.Warn("packager stopped reading", "error", err)
			}
			m.finish()
			return
		}
		m.mu.Lock()
		if it.Session != nil {
			err = m.startPeriod(it.Session)
		} else {
			err = m.write(it.AU)
		}
		m.mu.Unlock()
		if err != nil {
			m.log.Error("packager", "error", err)
		}
	}
}

// notifyLocked wakes blocked requests. Called with mu held for writing.
func (m *muxer) notifyLocked() {
	m.playlists = m.renderMediaPlaylists()
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *muxer) startPeriod(s *stream.Session) error {
	offset := time.Duration(0)
	if m.period != nil {
		m.closeSegment(true)
		for _, tm := range m.period.tracks {
			offset = max(offset, tm.end())
		}
		if !m.ast.IsZero() {
			// Keep media time in step with the wall clock across the gap,
			// so DASH players compute the live edge right.
			offset = max(offset, time.Since(m.ast))
		}
		m.nextDisc = true
	}
	m.periodCount++
	p := &period{id: m.periodCount, offset: offset}
	for _, t := range s.Tracks {
		tm, err := newTrackMuxer(t)
		if err != nil {
			return err
		}
		p.tracks = append(p.tracks, tm)
	}
	m.period = p
	m.waitKey = true
	m.notifyLocked()
	return nil
}

// driver is the track whose frames decide where parts and segments are cut:
// the first video track, or the first track when there is no video.
func (p *period) driver() int {
	for i, tm := range p.tracks {
		if tm.track.IsVideo() {
			return i
		}
	}
	return 0
}

func (m *muxer) write(au *stream.AccessUnit) error {
	p := m.period
	if p == nil || au.Track.Index >= len(p.tracks) || p.tracks[au.Track.Index].track != au.Track {
		return nil
	}
	isDriver := au.Track.Index == p.driver()
	t := au.DTS + p.offset
	if m.waitKey {
		if !isDriver || !au.Key {
			return nil
		}
		m.waitKey = false
		if m.ast.IsZero() {
			m.ast = time.Now().Add(-t)
		}
	}
	tm := p.tracks[au.Track.Index]
	if !tm.push(au, p.offset) {
		return nil
	}
	if !isDriver {
		return nil
	}
	cur := m.current()
	switch {
	case cur == nil:
		m.openSegment(t)
	case au.Key && t-cur.start >= m.cfg.SegmentDuration:
		if err := m.cutParts(cur); err != nil {
			return err
		}
		m.closeSegment(false)
		m.openSegment(t)
	case t-m.partStart >= m.cfg.PartDuration:
		if err := m.cutParts(cur); err != nil {
			return err
		}
		m.partStart = t
		m.notifyLocked()
	}
	return nil
}

// current returns the segment in progress, if any.
func (m *muxer) current() *segment {
	if n := len(m.segments); n > 0 && !m.segments[n-1].complete {
		return m.segments[n-1]
	}
	return nil
}

func (m *muxer) openSegment(t time.Duration) {
	seg := &segment{
		msn:           m.nextMSN,
		period:        m.period,
		discontinuity: m.nextDisc,
		dateTime:      m.ast.Add(t),
		start:         t,
		tracks:        make([]*trackSegment, len(m.period.tracks)),
	}
	for i := range seg.tracks {
		seg.tracks[i] = &trackSegment{}
	}
	m.nextMSN++
	m.nextDisc = false
	m.partStart = t
	m.segments = append(m.segments, seg)
	keep := m.cfg.PlaylistSegments + 3
	for len(m.segments) > keep {
		if m.segments[0].discontinuity {
			m.discSeq++
		}
		m.segments[0] = nil
		m.segments = m.segments[1:]
	}
}

func (m *muxer) cutParts(seg *segment) error {
	for i, tm := range seg.period.tracks {
		pt, err := tm.cutPart()
		if err != nil {
			return err
		}
		if pt != nil {
			seg.tracks[i].parts = append(seg.tracks[i].parts, pt)
		}
	}
	return nil
}

// closeSegment completes the segment in progress. With flush, the held-back
// samples go into it too: the session or the stream has ended.
func (m *muxer) closeSegment(flush bool) {
	cur := m.current()
	if cur == nil {
		return
	}
	if flush {
		for _, tm := range cur.period.tracks {
			tm.flushPending()
		}
	}
	if err := m.cutParts(cur); err != nil {
		m.log.Error("packager", "error", err)
	}
	cur.complete = true
	m.notifyLocked()
}

// finish flushes the last samples and marks the stream ended.
func (m *muxer) finish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeSegment(true)
	m.ended = true
	m.endedAt = time.Now()
	m.notifyLocked()
	m.log.Info("packaging ended", "segments", m.nextMSN)
}

// waitFor blocks until cond holds (checked with mu read-locked), the stream
// ends, or ctx is done. It reports whether cond held.
func (m *muxer) waitFor(ctx context.Context, cond func() bool) bool {
	for {
		m.mu.RLock()
		ok := cond()
		ended := m.ended
		ch := m.changed
		m.mu.RUnlock()
		if ok {
			return true
		}
		if ended {
			return false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}
