package livecaptions

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/mps-dev/mps/captions"
	"github.com/mps-dev/mps/ffpipe"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/stream"
)

// queueChunks bounds the chunks waiting for recognition: when the engine
// is slower than the audio, the oldest are dropped.
const queueChunks = 8

// captioner captions one stream.
type captioner struct {
	m      *Manager
	st     *stream.Stream
	opts   Options
	engine speech.Engine
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	sessions map[int]*sessionCues
	first    int // the first session seen; earlier ones have no captions
	last     int // the newest session seen
	state    string
	err      string
	count    int
	received time.Duration // newest audio time received, in the newest session
	started  time.Time
}

// sessionCues are the captions of one publishing session.
type sessionCues struct {
	cues []captions.Cue
	// from is where its captions start (the first audio read);
	// processed is how far recognition got; both in session time.
	from, processed time.Duration
	// served is the end of the newest span answered as final: later cues
	// must not start before it, or players would miss them.
	served time.Duration
	ended  bool
}

func newCaptioner(m *Manager, st *stream.Stream, o Options, engine speech.Engine) *captioner {
	ctx, cancel := context.WithCancel(m.ctx)
	return &captioner{m: m, st: st, opts: o, engine: engine, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log: m.log.With("stream", st.Name(), "engine", o.Engine), sessions: map[int]*sessionCues{}, first: -1, last: -1,
		state: "waiting", started: time.Now()}
}

func (c *captioner) stop() {
	c.cancel()
	<-c.done
}

func (c *captioner) info() Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := Info{Options: c.opts, State: c.state, Error: c.err, Cues: c.count, Started: c.started}
	if sc := c.sessions[c.last]; sc != nil && c.received > sc.processed {
		in.Lag = (c.received - sc.processed).Seconds()
	}
	return in
}

// cues returns the cues of session that overlap [from, to), and whether
// the span is final.
func (c *captioner) cues(session int, from, to time.Duration) ([]captions.Cue, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := c.sessions[session]
	if sc == nil {
		// A session before captions started has none; a newer one is not
		// read yet.
		return nil, c.first >= 0 && session < c.first
	}
	if to <= sc.from {
		return nil, true
	}
	final := sc.ended || sc.processed >= to
	var out []captions.Cue
	for _, q := range sc.cues {
		if q.Start < to && q.End > from {
			out = append(out, q)
		}
	}
	if final {
		sc.served = max(sc.served, to)
	}
	return out, final
}

// run reads the stream until it ends or the captioner is stopped.
func (c *captioner) run() {
	defer close(c.done)
	r, err := c.st.NewReader(ReaderKind, "")
	if err != nil {
		c.log.Info("live captions ended", "reason", err.Error())
		return
	}
	defer func() { r.Close() }()
	var p *pipeline
	defer func() {
		if p != nil {
			p.finish()
		}
	}()
	for {
		it, err := r.Read(c.ctx)
		if errors.Is(err, stream.ErrSlowReader) {
			c.log.Warn("live captions fell behind the stream; reading on from its next keyframe")
			if r, err = c.st.NewReader(ReaderKind, ""); err == nil {
				continue
			}
		}
		if err != nil {
			if c.ctx.Err() == nil && !errors.Is(err, stream.ErrStreamEnded) {
				c.log.Warn("live captions stopped reading", "error", err.Error())
			}
			return
		}
		if it.Session != nil {
			if p != nil {
				p.finish()
				p = nil
			}
			p = c.startSession(it.Session)
			continue
		}
		if p != nil && it.AU.Track == p.track {
			p.write(it.AU)
		}
	}
}

// startSession starts the pipeline of a new session, or returns nil when
// it has no audio.
func (c *captioner) startSession(s *stream.Session) *pipeline {
	var audio *stream.Track
	for _, t := range s.Tracks {
		if !t.IsVideo() {
			audio = t
			break
		}
	}
	c.mu.Lock()
	if c.first < 0 {
		c.first = s.ID
	}
	c.last = s.ID
	c.received = 0
	sc := &sessionCues{from: -1}
	c.sessions[s.ID] = sc
	// Keep the sessions a playlist window may still show.
	if len(c.sessions) > 4 {
		ids := make([]int, 0, len(c.sessions))
		for id := range c.sessions {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		for _, id := range ids[:len(ids)-4] {
			delete(c.sessions, id)
		}
	}
	c.mu.Unlock()
	if audio == nil {
		c.setState("waiting", "the stream has no audio")
		c.endSession(sc)
		return nil
	}
	p, err := c.newPipeline(s, audio, sc)
	if err != nil {
		c.log.Warn("live captions: cannot decode the audio", "error", err.Error())
		c.setState("failed", err.Error())
		c.endSession(sc)
		return nil
	}
	c.setState("running", "")
	return p
}

func (c *captioner) setState(state, err string) {
	c.mu.Lock()
	c.state, c.err = state, err
	c.mu.Unlock()
}

func (c *captioner) endSession(sc *sessionCues) {
	c.mu.Lock()
	sc.ended = true
	c.mu.Unlock()
}

// pipeline decodes one session's audio with an ffmpeg child and
// recognises it chunk by chunk.
type pipeline struct {
	c      *captioner
	sc     *sessionCues
	track  *stream.Track
	child  *ffpipe.Child
	chunks chan chunk
	base   time.Duration // session time of the first PCM sample
	based  bool
	wg     sync.WaitGroup
	once   sync.Once
}

// decoderArgs make ffmpeg turn MPEG-TS audio into 16 kHz mono s16le, with
// gaps filled so that sample counts keep time.
func decoderArgs() []string {
	args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, ffpipe.InputArgs...)
	return append(args, "-vn", "-af", "aresample=async=1:first_pts=0", "-ar", "16000", "-ac", "1", "-f", "s16le", "pipe:1")
}

func (c *captioner) newPipeline(s *stream.Session, audio *stream.Track, sc *sessionCues) (*pipeline, error) {
	child, err := ffpipe.Start(c.m.cfg.FFmpeg, decoderArgs(), []*stream.Track{audio})
	if err != nil {
		return nil, fmt.Errorf("%s audio: %w", audio.CodecName(), err)
	}
	p := &pipeline{c: c, sc: sc, track: audio, child: child, chunks: make(chan chunk, queueChunks)}
	p.wg.Add(3)
	go p.read()
	go p.logErrors()
	go p.recognise()
	return p, nil
}

// logErrors logs what the decoder says (it only speaks of errors).
func (p *pipeline) logErrors() {
	defer p.wg.Done()
	sc := bufio.NewScanner(p.child.Stderr)
	for sc.Scan() {
		if p.c.ctx.Err() == nil {
			p.c.log.Warn("live captions decoder", "error", sc.Text())
		}
	}
}

// write hands one audio access unit to the decoder. It never blocks: when
// the decoder falls behind, the unit is dropped.
func (p *pipeline) write(au *stream.AccessUnit) {
	if !p.based {
		p.base, p.based = au.PTS, true
		p.c.mu.Lock()
		p.sc.from, p.sc.processed, p.sc.served = au.PTS, au.PTS, au.PTS
		p.c.mu.Unlock()
	}
	p.c.mu.Lock()
	p.c.received = max(p.c.received, au.PTS)
	p.c.mu.Unlock()
	p.child.Write(au)
}

// read cuts the decoder's PCM into chunks until it ends.
func (p *pipeline) read() {
	defer p.wg.Done()
	defer close(p.chunks)
	ch := newChunker(p.c.m.cfg.MaxChunk)
	buf := make([]byte, 32<<10)
	for {
		n, err := p.child.Stdout.Read(buf)
		for _, k := range ch.write(buf[:n]) {
			p.queue(k)
		}
		if err != nil {
			break
		}
	}
	if k, ok := ch.flush(); ok && p.c.ctx.Err() == nil {
		p.queue(k)
	}
}

// queue hands a chunk to recognition, dropping the oldest waiting one
// when recognition falls behind.
func (p *pipeline) queue(k chunk) {
	for {
		select {
		case p.chunks <- k:
			return
		default:
		}
		select {
		case old := <-p.chunks:
			p.c.log.Warn("live captions fall behind: audio skipped", "seconds", old.Duration().Seconds())
			p.done(old, nil)
		default:
		}
	}
}

// recognise runs the engine on each chunk.
func (p *pipeline) recognise() {
	defer p.wg.Done()
	for k := range p.chunks {
		if p.c.ctx.Err() != nil {
			continue
		}
		if !k.Speech {
			p.done(k, nil)
			continue
		}
		t, err := p.transcribe(k)
		if err != nil {
			if p.c.ctx.Err() == nil {
				p.c.log.Warn("live captions: recognition failed", "error", err.Error())
				p.c.setState("failed", err.Error())
			}
			p.done(k, nil)
			continue
		}
		p.c.setState("running", "")
		p.done(k, captions.FromTranscript(t, captions.Options{}))
	}
}

func (p *pipeline) transcribe(k chunk) (*speech.Transcript, error) {
	f, err := os.CreateTemp(p.c.m.cfg.TempDir, "mps-captions-*.wav")
	if err != nil {
		return nil, fmt.Errorf("live captions: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(wavHeader(len(k.PCM)), k.PCM...))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("live captions: %w", err)
	}
	return p.c.engine.Transcribe(p.c.ctx, f.Name(), nil)
}

// done records a chunk's cues (times from the chunk's start) and moves
// recognition past it.
func (p *pipeline) done(k chunk, cues []captions.Cue) {
	start := p.base + samplesToDuration(k.Start)
	end := start + k.Duration()
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := p.sc
	for _, q := range cues {
		q.Start += start
		q.End += start
		if q.Start < sc.served {
			// That span was served as final: show the cue from the next one.
			q.Start = sc.served
		}
		if q.End <= q.Start {
			continue
		}
		sc.cues = append(sc.cues, q)
		c.count++
	}
	sc.processed = max(sc.processed, end)
	// Drop cues too old for any playlist.
	keepFrom := sc.processed - c.m.cfg.Keep
	i := 0
	for i < len(sc.cues) && sc.cues[i].End < keepFrom {
		i++
	}
	sc.cues = sc.cues[i:]
}

// finish ends the session: the decoder gets end of input and what is left
// is recognised (at once, when the captioner is stopping).
func (p *pipeline) finish() {
	p.once.Do(func() {
		if p.c.ctx.Err() != nil {
			p.child.Kill()
		}
		p.child.CloseInput()
		p.child.Wait(10 * time.Second)
		p.wg.Wait()
		if n := p.child.Dropped; n > 0 {
			p.c.log.Warn("live captions decoder fell behind: audio dropped", "units", n)
		}
		p.c.endSession(p.sc)
	})
}
