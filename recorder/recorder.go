// Package recorder writes live streams to crash-safe fragmented MP4 (or
// HLS) archives, rolls them over, repairs the ones a crash left open,
// applies retention, and reads them back for playback and export.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/stream"
)

// Ladders tells which streams are renditions of which (a
// *transcoder.Manager).
type Ladders interface {
	SourceOf(rendition string) (source string, ok bool)
}

// Retention bounds what the recordings folder keeps.
type Retention struct {
	// MaxAge deletes archives that ended longer ago; 0 keeps them.
	MaxAge time.Duration
	// MaxSize bounds the bytes kept per stream (or per application with
	// PerApplication), deleting the oldest archives first; 0 is no limit.
	MaxSize        int64
	PerApplication bool
	// Interval is how often retention runs (default 1 min).
	Interval time.Duration
}

// Config configures a Recorder. Zero values pick the defaults.
type Config struct {
	Hub *stream.Hub
	// Dir is the recordings folder (required).
	Dir string
	// PathTemplate names archives below Dir (see ParsePathTemplate);
	// default "{name}/{date}/{time}-{rendition}-{seq}".
	PathTemplate string
	// Format is FormatFMP4 (default) or FormatHLS.
	Format string
	// FragmentDuration bounds how long samples wait before they are
	// written (default and maximum 1 s).
	FragmentDuration time.Duration
	// Rollover starts a new archive after this much media, at the next
	// keyframe (default 1 h).
	Rollover time.Duration
	// Finalize also writes a faststart MP4 of each cleanly ended archive.
	Finalize  bool
	Retention Retention
	// Rule says whether a new stream records from its first frame, and
	// with which options. Nil records nothing by itself.
	Rule func(name string) (Options, bool)
	// Ladders finds the source of rendition streams; nil means no
	// renditions are recorded.
	Ladders Ladders
	// Events receives the recording events; nil drops them.
	Events events.Sink
	// RetryInterval is how long writing pauses after an error, such as a
	// full disk, before a new archive is tried (default 2 s).
	RetryInterval time.Duration
	// SegmentDuration is the segment length of playback (default 2 s).
	SegmentDuration time.Duration
	// Mirror, when set, is given every recording file that is complete
	// and will not change again (an HLS segment, a closed archive), or
	// that was replaced whole (a playlist, a metadata file), with its path
	// relative to Dir in slash form, so that it can be copied elsewhere
	// (S3). An error fails the recording as a full disk does.
	Mirror func(path, rel string) error
	Logger *slog.Logger
}

// DefaultPathTemplate is the archive path template when none is set.
const DefaultPathTemplate = "{name}/{date}/{time}-{rendition}-{seq}"

func (c *Config) setDefaults() error {
	if c.Hub == nil {
		return errors.New("recorder: Config.Hub is required")
	}
	if c.Dir == "" {
		return errors.New("recorder: Config.Dir is required")
	}
	if c.PathTemplate == "" {
		c.PathTemplate = DefaultPathTemplate
	}
	if err := ParsePathTemplate(c.PathTemplate); err != nil {
		return fmt.Errorf("recorder: path template %q: %w", c.PathTemplate, err)
	}
	switch c.Format {
	case "":
		c.Format = FormatFMP4
	case FormatFMP4, FormatHLS:
	default:
		return fmt.Errorf("recorder: unknown format %q (fmp4 or hls)", c.Format)
	}
	if c.FragmentDuration <= 0 || c.FragmentDuration > time.Second {
		c.FragmentDuration = time.Second
	}
	if c.Rollover <= 0 {
		c.Rollover = time.Hour
	}
	if c.Retention.Interval <= 0 {
		c.Retention.Interval = time.Minute
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 2 * time.Second
	}
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Recorder records hub streams. It is safe for concurrent use.
type Recorder struct {
	cfg    Config
	log    *slog.Logger
	cat    *catalog
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	index  *indexCache
	stats  counters

	mu      sync.Mutex
	streams map[string]*streamRecording // by source stream name
	closed  bool
}

// New starts a recorder on cfg.Hub: it reads the recordings folder,
// repairs archives a crash left open, and records new streams that a rule
// selects.
func New(cfg Config) (*Recorder, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		// Not fatal: each recording reports its own error and retries.
		cfg.Logger.Warn("recordings folder cannot be made; recordings will fail until it can", "dir", cfg.Dir, "error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{
		cfg:     cfg,
		log:     cfg.Logger,
		cat:     newCatalog(cfg.Dir),
		ctx:     ctx,
		cancel:  cancel,
		index:   newIndexCache(16),
		streams: make(map[string]*streamRecording),
	}
	unfinished, problems := r.cat.scan()
	for _, err := range problems {
		r.log.Warn("recordings folder", "error", err)
	}
	for _, e := range unfinished {
		r.repair(e)
	}
	cfg.Hub.OnStreamCreated(r.onStream)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.retentionLoop(ctx)
	}()
	return r, nil
}

// Close stops every recording (closing its archive cleanly) and waits.
func (r *Recorder) Close() {
	r.mu.Lock()
	r.closed = true
	recs := make([]*streamRecording, 0, len(r.streams))
	for _, sr := range r.streams {
		recs = append(recs, sr)
	}
	r.mu.Unlock()
	for _, sr := range recs {
		sr.stop()
	}
	r.cancel()
	r.wg.Wait()
}

func (r *Recorder) emit(typ, streamName string, data map[string]any) {
	if r.cfg.Events != nil {
		r.cfg.Events.Publish(events.Event{Type: typ, Stream: streamName, Data: data})
	}
}

// normalize checks options and fills in the defaults.
func (r *Recorder) normalize(o Options) (Options, error) {
	if o.Format == "" {
		o.Format = r.cfg.Format
	}
	if o.Format != FormatFMP4 && o.Format != FormatHLS {
		return o, fmt.Errorf("%w: unknown format %q (fmp4 or hls)", ErrInvalidOptions, o.Format)
	}
	if len(o.Renditions) == 0 {
		o.Renditions = []string{RenditionSource}
	}
	for _, name := range o.Renditions {
		if name == RenditionsAll && len(o.Renditions) > 1 {
			return o, fmt.Errorf("%w: %q must be the only rendition", ErrInvalidOptions, RenditionsAll)
		}
		if name != RenditionsAll && (strings.Contains(name, "/") || stream.ValidateName(name) != nil) {
			return o, fmt.Errorf("%w: bad rendition name %q", ErrInvalidOptions, name)
		}
	}
	o.Renditions = slices.Clone(o.Renditions)
	return o, nil
}

// onStream starts recording a new hub stream when a rule selects it, or
// when it is a rendition of a recorded stream.
func (r *Recorder) onStream(s *stream.Stream) {
	name := s.Name()
	if l := r.cfg.Ladders; l != nil {
		if src, ok := l.SourceOf(name); ok && src != name {
			r.mu.Lock()
			sr := r.streams[src]
			r.mu.Unlock()
			if sr != nil {
				sr.attachRendition(s, strings.TrimPrefix(name, src+"/"))
			}
			return
		}
	}
	if r.cfg.Rule == nil {
		return
	}
	o, ok := r.cfg.Rule(name)
	if !ok {
		return
	}
	if _, err := r.start(s, o, "rule"); err != nil {
		r.log.Warn("recording not started", "stream", name, "error", err)
	}
}

// StartRecording starts recording the live stream name now. When it
// already records, its renditions are brought in line with o.
func (r *Recorder) StartRecording(name string, o Options) (Status, error) {
	return r.StartRecordingBy(name, o, "api")
}

// StartRecordingBy is StartRecording with the reason it records, shown in
// Status.Trigger ("api", "param", "rule").
func (r *Recorder) StartRecordingBy(name string, o Options, trigger string) (Status, error) {
	s, err := r.cfg.Hub.Get(name)
	if err != nil || s.State() == stream.StateEnded {
		return Status{}, fmt.Errorf("record %s: %w", name, ErrNoStream)
	}
	return r.start(s, o, trigger)
}

func (r *Recorder) start(s *stream.Stream, o Options, trigger string) (Status, error) {
	o, err := r.normalize(o)
	if err != nil {
		return Status{}, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return Status{}, ErrClosed
	}
	sr := r.streams[s.Name()]
	if sr == nil {
		sr = newStreamRecording(r, s, o, trigger)
		r.streams[s.Name()] = sr
	}
	r.mu.Unlock()
	sr.apply(o)
	return sr.status(), nil
}

// StopRecording stops recording name; the archives being written are
// closed cleanly.
func (r *Recorder) StopRecording(name string) (Status, error) {
	r.mu.Lock()
	sr := r.streams[name]
	r.mu.Unlock()
	if sr == nil {
		return Status{}, fmt.Errorf("stop recording %s: %w", name, ErrNotRecording)
	}
	sr.stop()
	st := sr.status()
	st.Recording = false
	return st, nil
}

// Status describes the recording of the live stream name.
func (r *Recorder) Status(name string) (Status, bool) {
	r.mu.Lock()
	sr := r.streams[name]
	r.mu.Unlock()
	if sr == nil {
		return Status{}, false
	}
	return sr.status(), true
}

// forget drops a stream recording that has stopped.
func (r *Recorder) forget(sr *streamRecording) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.streams[sr.name] == sr {
		delete(r.streams, sr.name)
	}
}
