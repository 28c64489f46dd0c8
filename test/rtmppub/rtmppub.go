// Package rtmppub publishes test video over Enhanced RTMP, in the codecs
// that ffmpeg 5.1 cannot send over RTMP itself: H.265, AV1 and VP9.
//
// ffmpeg encodes its testsrc2 source into a raw elementary stream on
// stdout (Annex-B H.265, AV1 OBUs, or VP9 in IVF); this package splits it
// into access units and sends them with gortmplib's Client and Writer at the
// frame rate, paced in real time, as an encoder would.
package rtmppub

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/bluenviron/gortmplib"
)

// Codec is a video codec this package can publish.
type Codec string

// Codecs.
const (
	H265 Codec = "h265"
	AV1  Codec = "av1"
	VP9  Codec = "vp9"
)

// Options describes what to publish.
type Options struct {
	// URL is the target, such as rtmp://127.0.0.1:1935/live/cam1?key=SECRET.
	URL   string
	Codec Codec
	// Duration of media to send; it takes as long in real time.
	Duration time.Duration
	// Width, Height and FPS of the test picture. Defaults 640x360 at 30 fps.
	Width, Height, FPS int
	// FFmpeg is the ffmpeg binary. Default "ffmpeg" from PATH.
	FFmpeg string
}

// PublishH265 publishes duration of H.265 testsrc2 video to url.
func PublishH265(ctx context.Context, url string, duration time.Duration, width, height, fps int) error {
	return Publish(ctx, Options{URL: url, Codec: H265, Duration: duration, Width: width, Height: height, FPS: fps})
}

// PublishAV1 publishes duration of AV1 testsrc2 video to url.
func PublishAV1(ctx context.Context, url string, duration time.Duration, width, height, fps int) error {
	return Publish(ctx, Options{URL: url, Codec: AV1, Duration: duration, Width: width, Height: height, FPS: fps})
}

// PublishVP9 publishes duration of VP9 testsrc2 video to url.
func PublishVP9(ctx context.Context, url string, duration time.Duration, width, height, fps int) error {
	return Publish(ctx, Options{URL: url, Codec: VP9, Duration: duration, Width: width, Height: height, FPS: fps})
}

// unitSource yields access units (or temporal units, or frames) in
// decode order, one per frame.
type unitSource interface {
	// Next returns the next unit's parts (NAL units, OBUs, or a single
	// frame), or io.EOF at the end.
	Next() ([][]byte, error)
}

// sender writes units of one codec.
type sender interface {
	// Track is the track to announce, built from the first unit.
	Track(first [][]byte) (*gortmplib.Track, error)
	Write(w *gortmplib.Writer, t *gortmplib.Track, pts time.Duration, unit [][]byte) error
}

// Publish encodes and publishes test video as described by o. It returns
// when the whole duration was sent, on the first error, or when ctx ends.
func Publish(ctx context.Context, o Options) error {
	if o.Width <= 0 {
		o.Width = 640
	}
	if o.Height <= 0 {
		o.Height = 360
	}
	if o.FPS <= 0 {
		o.FPS = 30
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.Duration <= 0 {
		return errors.New("rtmppub: Duration must be positive")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return fmt.Errorf("rtmppub: %w", err)
	}
	var (
		format  string
		encoder []string
		snd     sender
	)
	fps := strconv.Itoa(o.FPS)
	switch o.Codec {
	case H265:
		format = "hevc"
		encoder = []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
			"bframes=0:keyint=" + fps + ":min-keyint=" + fps + ":scenecut=0:repeat-headers=1:log-level=error"}
		snd = h265Sender{}
	case AV1:
		format = "obu"
		encoder = []string{"-c:v", "libsvtav1", "-preset", "12", "-g", fps}
		snd = av1Sender{}
	case VP9:
		format = "ivf"
		encoder = []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
			"-lag-in-frames", "0", "-g", fps, "-b:v", "1M"}
		snd = vp9Sender{}
	default:
		return fmt.Errorf("rtmppub: unsupported codec %q", o.Codec)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", o.Width, o.Height, o.FPS),
		"-t", strconv.FormatFloat(o.Duration.Seconds(), 'f', 3, 64), "-pix_fmt", "yuv420p"}
	args = append(args, encoder...)
	args = append(args, "-f", format, "-")
	cmd := exec.CommandContext(ctx, o.FFmpeg, args...)
	cmd.Env = append(os.Environ(), "SVT_LOG=1") // SVT-AV1 logs on its own otherwise
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("rtmppub: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rtmppub: start ffmpeg: %w", err)
	}

	var src unitSource
	br := bufio.NewReaderSize(stdout, 1<<16)
	switch o.Codec {
	case H265:
		src = newH265Splitter(br)
	case AV1:
		src = newOBUSplitter(br)
	case VP9:
		src = newIVFReader(br)
	}

	err = send(ctx, u, o.FPS, src, snd)
	if err != nil {
		// Stop ffmpeg; its stderr is safe to read once Wait returns.
		cancel()
		_ = cmd.Wait()
		if msg := bytes.TrimSpace(stderr.Bytes()); len(msg) > 0 {
			return fmt.Errorf("rtmppub %s: %w (ffmpeg: %s)", o.Codec, err, msg)
		}
		return fmt.Errorf("rtmppub %s: %w", o.Codec, err)
	}
	// Every unit was sent: ffmpeg closed its output and is exiting.
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("rtmppub %s: ffmpeg: %w: %s", o.Codec, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// send publishes every unit of src, one per frame at fps, in real time.
func send(ctx context.Context, u *url.URL, fps int, src unitSource, snd sender) error {
	first, err := src.Next()
	if err != nil {
		return fmt.Errorf("reading the encoder: %w", err)
	}
	track, err := snd.Track(first)
	if err != nil {
		return err
	}

	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(ctx); err != nil {
		return fmt.Errorf("connect %s: %w", u.Redacted(), err)
	}
	defer c.Close()
	// Close the connection when ctx ends, so that a blocked write returns.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()

	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track}}
	if err := c.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if err := w.Initialize(); err != nil {
		return fmt.Errorf("announce track: %w", err)
	}

	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	unit := first
	for i := 0; ; i++ {
		pts := time.Duration(i) * time.Second / time.Duration(fps)
		timer.Reset(time.Until(start.Add(pts)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if err := c.NetConn().SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		if err := snd.Write(w, track, pts, unit); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write frame %d: %w", i, err)
		}
		unit, err = src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the encoder: %w", err)
		}
	}
}
