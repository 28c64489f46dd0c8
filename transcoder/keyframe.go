package transcoder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/mps-dev/mps/stream"
)

// KeyframeThumbnailer defaults.
const (
	DefaultKeyframeInterval = 5 * time.Second
	DefaultKeyframeWidth    = 320
	// DefaultKeyframeTimeout bounds one keyframe decode.
	DefaultKeyframeTimeout = 10 * time.Second
)

// keyframeReaderKind is how the thumbnailer's hub readers are listed.
const keyframeReaderKind = "thumbnailer"

// KeyframeThumbnailer makes thumbnails of streams that no ladder transcodes.
// It reads every video stream of Hub and, at most once per Interval, hands
// the latest keyframe to a short FFmpeg run that decodes it to a JPEG for
// Sink. Nothing is decoded between keyframes, so a stream costs one decode
// per Interval at most.
//
// A stream's reader never waits for FFmpeg: while a decode runs, further
// keyframes are skipped. When a stream ends, or on Close, its goroutines
// stop and its thumbnail is dropped from Sink if Sink has a
// Forget(name string) method (as Thumbnails has).
type KeyframeThumbnailer struct {
	Hub *stream.Hub
	// FFmpeg is the ffmpeg binary (default "ffmpeg" from PATH).
	FFmpeg string
	// Interval is the least time between two thumbnails of a stream
	// (default 5 s). The first keyframe of a stream is always taken.
	Interval time.Duration
	// Width of the thumbnails in pixels; the height keeps the aspect ratio
	// (default 320).
	Width int
	// Timeout bounds one decode (default 10 s).
	Timeout time.Duration
	Sink    ThumbnailSink
	// Skip, when set, is asked before each decode; it returns true while
	// something else (a ladder) makes the thumbnails of that stream, and
	// for streams that need none (a ladder's renditions).
	Skip   func(name string) bool
	Logger *slog.Logger

	mu      sync.Mutex
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	watched map[*stream.Stream]struct{}
}

// Start watches the hub's streams: those created from now on, and those
// already live. It fails when Hub or Sink is missing, when called twice, or
// after Close.
func (k *KeyframeThumbnailer) Start() error {
	if k.Hub == nil || k.Sink == nil {
		return errors.New("keyframe thumbnailer: Hub and Sink must be set")
	}
	k.mu.Lock()
	if k.started || k.closed {
		k.mu.Unlock()
		return errors.New("keyframe thumbnailer: already started or closed")
	}
	k.started = true
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.watched = make(map[*stream.Stream]struct{})
	k.mu.Unlock()

	k.Hub.OnStreamCreated(k.watch)
	// A stream created between the two lines is seen twice; watch ignores
	// the second time.
	for _, s := range k.Hub.Streams() {
		k.watch(s)
	}
	return nil
}

// Close stops every stream's goroutine and any decode in flight, and waits
// for them. It is safe to call more than once.
func (k *KeyframeThumbnailer) Close() {
	k.mu.Lock()
	k.closed = true
	cancel := k.cancel
	k.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	k.wg.Wait()
}

// watch attaches a reader to s and starts its goroutine. It runs on the
// publisher's goroutine (Hub.OnStreamCreated) and does not block.
func (k *KeyframeThumbnailer) watch(s *stream.Stream) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	if _, ok := k.watched[s]; ok {
		return
	}
	r, err := s.NewReader(keyframeReaderKind, "")
	if err != nil {
		return // the stream already ended
	}
	k.watched[s] = struct{}{}
	k.wg.Add(1)
	go k.run(s, r)
}

// run reads one stream until it ends or the thumbnailer closes.
func (k *KeyframeThumbnailer) run(s *stream.Stream, r *stream.Reader) {
	name := s.Name()
	ctx, cancel := context.WithCancel(k.ctx)
	var (
		decodes  sync.WaitGroup
		busy     atomic.Bool
		failures atomic.Int64
	)
	defer func() {
		r.Close()
		cancel()
		decodes.Wait()
		// After the last Put: nothing re-adds the thumbnail.
		if f, ok := k.Sink.(interface{ Forget(string) }); ok {
			f.Forget(name)
		}
		k.mu.Lock()
		delete(k.watched, s)
		k.mu.Unlock()
		k.wg.Done()
	}()

	interval := k.Interval
	if interval <= 0 {
		interval = DefaultKeyframeInterval
	}
	var (
		video *stream.Track
		last  time.Time
	)
	for {
		it, err := r.Read(ctx)
		if err != nil {
			if errors.Is(err, stream.ErrSlowReader) && ctx.Err() == nil {
				// Not expected (this loop never waits), but recoverable.
				if nr, nerr := s.NewReader(keyframeReaderKind, ""); nerr == nil {
					k.logger().Warn("thumbnailer reattached", "stream", name, "reason", err.Error())
					r = nr
					continue
				}
			}
			return
		}
		if it.Session != nil {
			video = nil
			for _, t := range it.Session.Tracks {
				if t.IsVideo() {
					video = t
					break
				}
			}
			continue
		}
		au := it.AU
		if au == nil || !au.Key || au.Track != video || video == nil || busy.Load() {
			continue
		}
		if !last.IsZero() && time.Since(last) < interval {
			continue
		}
		if k.Skip != nil && k.Skip(name) {
			continue
		}
		last = time.Now()
		busy.Store(true)
		decodes.Add(1)
		go func(track *stream.Track, au *stream.AccessUnit) {
			defer decodes.Done()
			defer busy.Store(false)
			img, err := k.decode(ctx, track, au)
			if ctx.Err() != nil {
				return // the stream ended: no Put after its Forget
			}
			if err != nil {
				// Warn once per run of failures; they repeat every Interval.
				if failures.Add(1) == 1 {
					k.logger().Warn("thumbnail decode failed", "stream", name, "codec", track.CodecName(), "error", err)
				} else {
					k.logger().Debug("thumbnail decode failed", "stream", name, "codec", track.CodecName(), "error", err)
				}
				return
			}
			if failures.Swap(0) > 0 {
				k.logger().Info("thumbnail decode recovered", "stream", name)
			}
			k.Sink.Put(name, img)
		}(video, au)
	}
}

// decode turns one keyframe into a JPEG with FFmpeg. The keyframe goes in
// as a fragmented MP4 (an init segment with the codec parameters and one
// fragment with the sample), which FFmpeg reads the same way for H.264,
// H.265, AV1 and VP9.
func (k *KeyframeThumbnailer) decode(ctx context.Context, track *stream.Track, au *stream.AccessUnit) ([]byte, error) {
	in, err := keyframeMP4(track, au)
	if err != nil {
		return nil, err
	}
	timeout := k.Timeout
	if timeout <= 0 {
		timeout = DefaultKeyframeTimeout
	}
	width := k.Width
	if width <= 0 {
		width = DefaultKeyframeWidth
	}
	width += width & 1 // 4:2:0 JPEG wants even sizes
	bin := k.FFmpeg
	if bin == "" {
		bin = "ffmpeg"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-hide_banner", "-loglevel", "error", "-threads", "1",
		"-f", "mp4", "-i", "pipe:0", "-map", "0:v:0", "-frames:v", "1",
		"-vf", "scale="+strconv.Itoa(width)+":-2", "-q:v", "4",
		"-f", "image2pipe", "-c:v", "mjpeg", "pipe:1")
	cmd.Stdin = bytes.NewReader(in)
	var stdout bytes.Buffer
	stderr := &limitedBuffer{limit: 2048}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	img := stdout.Bytes()
	if len(img) < 4 || img[0] != 0xff || img[1] != 0xd8 {
		return nil, fmt.Errorf("ffmpeg gave no JPEG (%d bytes): %s", len(img), bytes.TrimSpace(stderr.Bytes()))
	}
	return img, nil
}

// keyframeMP4 wraps one video access unit into a fragmented MP4 that
// FFmpeg can decode on its own.
func keyframeMP4(track *stream.Track, au *stream.AccessUnit) ([]byte, error) {
	timescale := uint32(90000)
	if track.ClockRate > 0 {
		timescale = uint32(track.ClockRate)
	}
	var initBuf, partBuf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: timescale, Codec: track.Codec}}}
	if err := init.Marshal(&initBuf); err != nil {
		return nil, fmt.Errorf("thumbnail init segment (%s): %w", track.CodecName(), err)
	}
	part := fmp4.Part{SequenceNumber: 1, Tracks: []*fmp4.PartTrack{{
		ID:      1,
		Samples: []*fmp4.Sample{{Duration: timescale / 30, Payload: au.Payload}},
	}}}
	if err := part.Marshal(&partBuf); err != nil {
		return nil, fmt.Errorf("thumbnail fragment (%s): %w", track.CodecName(), err)
	}
	return append(initBuf.Bytes(), partBuf.Bytes()...), nil
}

func (k *KeyframeThumbnailer) logger() *slog.Logger {
	if k.Logger != nil {
		return k.Logger
	}
	return slog.Default()
}
