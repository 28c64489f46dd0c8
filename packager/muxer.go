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
	lines []byte // its media playlist lines once complete; see segmentLines
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
	cc            int // discontinuity sequence number of the segment
	dateTime      time.Time
	start         time.Duration // media time, continuous across sessions
	complete      bool
	tracks        []*trackSegment
}

// period is one publishing session: its tracks and init segments. A
// reconnect starts a new period (an HLS discontinuity, a DASH Period).
type period struct {
	id      int
	session int           // the hub session it packages (Session.ID)
	offset  time.Duration // media time at which the session's timestamps start
	tracks  []*trackMuxer
	// src is, for a rendition, the source stream's period whose timeline
	// this one shares; nil otherwise.
	src *period

	// Set when the period's first segment opens. mediaStart is the media
	// time of its first sample on the driving track; presStart is where the
	// period starts on the DASH presentation timeline, which has no gaps:
	// each period starts where the previous one's media ended.
	opened     bool
	mediaStart time.Duration
	presStart  time.Duration
	mediaEnd   time.Duration // end of its newest complete segment
}

// presEnd is where the period's complete media ends on the DASH timeline.
func (p *period) presEnd() time.Duration {
	return p.presStart + p.mediaEnd - p.mediaStart
}

// timeline is what renditions of a stream read to line up with it. Its lock
// is a leaf: nothing else is locked while it is held.
type timeline struct {
	mu     sync.Mutex
	period *period
	ast    time.Time
	head   time.Duration // media time of the newest sample of the driving track
	cuts   []cut         // recent segment starts, oldest first
}

// cut is the start of one segment of a source stream.
type cut struct {
	period *period
	start  time.Duration
	msn    uint64
	cc     int
}

const keepCuts = 64

// muxer packages one hub stream.
type muxer struct {
	name   string
	prefix string // unique per muxer, so a restarted stream never reuses a URL
	cfg    Config
	log    *slog.Logger
	stream *stream.Stream
	// sourceOf returns the muxer of the stream this one is a rendition of,
	// or nil. Set when the packager has ladders.
	sourceOf func() *muxer
	tl       timeline

	mu        sync.RWMutex
	changed   chan struct{} // closed and replaced on every update
	period    *period
	segments  []*segment // oldest first; the last may be in progress
	nextMSN   uint64
	cc        int // discontinuity sequence number of the newest segment
	ast       time.Time
	partStart time.Duration
	ended     bool
	endedAt   time.Time
	playlists []*mediaPlaylist // per track of the current period, rebuilt on update
	nextDisc  bool
	waitKey   bool
	// preKey holds the audio that arrived while waiting for the first
	// keyframe of a period, so that audio starts no later than video.
	preKey []*stream.AccessUnit
	// src is the source muxer the current period lines up with, if any;
	// waitSince is when (in media time) the first keyframe of the period was
	// seen, while a rendition waits for one that starts a source segment.
	src       *muxer
	waitSince time.Duration
	waitSeen  bool
	// presEnd is where the media of the previous periods ends on the DASH
	// timeline; presValid says there was any.
	presEnd   time.Duration
	presValid bool
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
	if prev := m.period; prev != nil {
		m.closeSegment(true)
		for _, tm := range prev.tracks {
			offset = max(offset, tm.end())
		}
		if !m.ast.IsZero() {
			// Keep media time in step with the wall clock across the gap,
			// so that EXT-X-PROGRAM-DATE-TIME stays true.
			offset = max(offset, time.Since(m.ast))
		}
		if prev.opened {
			// DASH periods are contiguous: the next one starts where this
			// one's media ends, whatever the time spent reconnecting. Its
			// presentationTimeOffset then maps that start to its first
			// sample, so a player meets no gap at the boundary.
			m.presEnd, m.presValid = prev.presEnd(), true
		}
		m.nextDisc = true
	}
	m.periodCount++
	p := &period{id: m.periodCount, session: s.ID, offset: offset}
	for _, t := range s.Tracks {
		tm, err := newTrackMuxer(t)
		if err != nil {
			return err
		}
		p.tracks = append(p.tracks, tm)
	}
	m.period = p
	m.waitKey = true
	m.waitSeen = false
	m.src = nil
	clear(m.preKey)
	m.preKey = m.preKey[:0]
	m.tl.mu.Lock()
	m.tl.period = p
	m.tl.mu.Unlock()
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

// link lines a rendition's new period up with its source: the same media
// time offset and availability start, so that timestamps, segment starts
// and program date times are the same as the source's. It does nothing for
// a stream that is no rendition, or when the source has no timeline yet.
func (m *muxer) link(p *period) {
	if m.sourceOf == nil {
		return
	}
	src := m.sourceOf()
	if src == nil || src == m {
		return
	}
	src.tl.mu.Lock()
	sp, ast := src.tl.period, src.tl.ast
	src.tl.mu.Unlock()
	if sp == nil || ast.IsZero() || !m.ast.IsZero() && !m.ast.Equal(ast) {
		return
	}
	p.offset, p.src = sp.offset, sp
	m.ast, m.src = ast, src
}

// cutTolerance is how far apart a rendition's keyframe and a source
// segment start may be and still be the same instant (timestamps that went
// through an encoder may be rounded).
const cutTolerance = 2 * time.Millisecond

// sourceCut looks at the source's segment starts for a rendition keyframe
// at t in a segment that started at from (from < 0: none yet). It returns
// the source's segment that starts at t, if any; passed says the source has
// already packaged t, so its decision there is final; missed says the
// source started a segment after from and before t.
func (m *muxer) sourceCut(t, from time.Duration) (c cut, found, passed, missed bool) {
	if m.src == nil || m.period.src == nil {
		return cut{}, false, false, false
	}
	tl := &m.src.tl
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.period != m.period.src {
		return cut{}, false, false, false
	}
	passed = tl.head >= t
	for i := len(tl.cuts) - 1; i >= 0; i-- {
		sc := tl.cuts[i]
		if sc.period != m.period.src || sc.start <= from-cutTolerance {
			break
		}
		switch {
		case abs(int64(sc.start-t)) < int64(cutTolerance):
			c, found = sc, true
		case sc.start < t && from >= 0 && sc.start > from+cutTolerance:
			missed = true
		}
	}
	return c, found, passed || found, missed
}

func (m *muxer) write(au *stream.AccessUnit) error {
	p := m.period
	if p == nil || au.Track.Index >= len(p.tracks) || p.tracks[au.Track.Index].track != au.Track {
		return nil
	}
	isDriver := au.Track.Index == p.driver()
	if m.waitKey {
		if !isDriver {
			if au.Track.IsVideo() {
				return nil
			}
			if len(m.preKey) == 64 {
				m.preKey[0] = nil
				m.preKey = m.preKey[1:]
			}
			m.preKey = append(m.preKey, au)
			return nil
		}
		if !au.Key {
			return nil
		}
		if !m.waitSeen {
			m.link(p)
		}
		t := au.DTS + p.offset
		if !m.waitSeen {
			m.waitSeen, m.waitSince = true, t
		}
		// A rendition starts on a keyframe that starts a source segment,
		// unless it waited long for one in vain.
		if _, found, passed, _ := m.sourceCut(t, -1); passed && !found && t-m.waitSince < 3*m.cfg.SegmentDuration {
			return nil
		}
		m.waitKey = false
		if m.ast.IsZero() {
			m.ast = time.Now().Add(-t)
		}
		m.tl.mu.Lock()
		m.tl.ast = m.ast
		m.tl.mu.Unlock()
		m.pushPreKey(au)
	}
	t := au.DTS + p.offset
	tm := p.tracks[au.Track.Index]
	if !tm.push(au, p.offset) {
		return nil
	}
	if !isDriver {
		return nil
	}
	// Renditions read head to tell that the source has decided where t
	// goes: publish it only once that is done.
	defer m.setHead(t)
	cur := m.current()
	if cur == nil {
		c, found, _, _ := m.sourceCut(t, -1)
		m.openSegment(t, c, found)
		return nil
	}
	if au.Key && t > cur.start {
		cutHere := t-cur.start >= m.cfg.SegmentDuration
		c, found, passed, missed := m.sourceCut(t, cur.start)
		if passed {
			// Cut where the source cut, so that renditions line up; on
			// our own only after a source cut we had no keyframe for.
			cutHere = found || missed && cutHere || t-cur.start >= 3*m.cfg.SegmentDuration
		}
		if cutHere {
			if err := m.cutParts(cur); err != nil {
				return err
			}
			m.closeSegment(false)
			m.openSegment(t, c, found)
			return nil
		}
	}
	if t-m.partStart >= m.cfg.PartDuration {
		if err := m.cutParts(cur); err != nil {
			return err
		}
		m.partStart = t
		m.notifyLocked()
	}
	return nil
}

func (m *muxer) setHead(t time.Duration) {
	m.tl.mu.Lock()
	m.tl.head = t
	m.tl.mu.Unlock()
}

// pushPreKey starts the other tracks with the audio held while waiting for
// key: the last frame that began before it, and every one after.
func (m *muxer) pushPreKey(key *stream.AccessUnit) {
	p := m.period
	from := make(map[*stream.Track]int, 2)
	for i, au := range m.preKey {
		if _, ok := from[au.Track]; !ok || au.DTS <= key.DTS {
			from[au.Track] = i
		}
	}
	for i, au := range m.preKey {
		if i >= from[au.Track] && au.Track.Index < len(p.tracks) && p.tracks[au.Track.Index].track == au.Track {
			p.tracks[au.Track.Index].push(au, p.offset)
		}
	}
	clear(m.preKey)
	m.preKey = m.preKey[:0]
}

// current returns the segment in progress, if any.
func (m *muxer) current() *segment {
	if n := len(m.segments); n > 0 && !m.segments[n-1].complete {
		return m.segments[n-1]
	}
	return nil
}

// openSegment starts a segment at media time t. For a rendition, src is the
// source's segment that starts at the same time (when found): the first
// segment takes its number, and discontinuity sequence numbers follow the
// source's.
func (m *muxer) openSegment(t time.Duration, src cut, found bool) {
	p := m.period
	if !p.opened {
		p.opened, p.mediaStart, p.mediaEnd = true, t, t
		p.presStart = t
		if m.presValid {
			p.presStart = m.presEnd
		}
	}
	first := len(m.segments) == 0 && m.nextMSN == 0
	if found && first {
		m.nextMSN = src.msn
	}
	cc := m.cc
	if m.nextDisc {
		cc++
	}
	if found && (first || m.nextDisc) {
		cc = max(cc, src.cc)
	}
	m.cc = cc
	seg := &segment{
		msn:           m.nextMSN,
		period:        p,
		discontinuity: m.nextDisc,
		cc:            cc,
		dateTime:      m.ast.Add(t),
		start:         t,
		tracks:        make([]*trackSegment, len(p.tracks)),
	}
	for i := range seg.tracks {
		seg.tracks[i] = &trackSegment{}
	}
	m.nextMSN++
	m.nextDisc = false
	m.partStart = t
	m.segments = append(m.segments, seg)
	m.trimSegments()
	m.tl.mu.Lock()
	if len(m.tl.cuts) == keepCuts {
		copy(m.tl.cuts, m.tl.cuts[1:])
		m.tl.cuts = m.tl.cuts[:keepCuts-1]
	}
	m.tl.cuts = append(m.tl.cuts, cut{period: p, start: t, msn: seg.msn, cc: cc})
	m.tl.mu.Unlock()
}

// keepUnlisted is how many segments before the playlist window stay
// available, for players that loaded an older playlist.
const keepUnlisted = 2

// trimSegments forgets the segments no playlist lists any more.
func (m *muxer) trimSegments() {
	drop := m.firstListed() - keepUnlisted
	if drop <= 0 {
		return
	}
	clear(m.segments[:drop])
	m.segments = m.segments[drop:]
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
	cur.period.mediaEnd = max(cur.period.mediaEnd, cur.start+cur.duration())
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
