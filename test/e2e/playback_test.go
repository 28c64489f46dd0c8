package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// checkDecode asserts that ffmpeg decoded about dur of 30 fps video at
// 640x360 (when wantVideo) and of audio (when wantAudio), without errors.
func checkDecode(t *testing.T, what string, res decodeResult, dur time.Duration, wantVideo, wantAudio bool) {
	t.Helper()
	t.Logf("%s: decoded %d video frames (%s), %d audio frames (%.2f s)", what, res.VideoFrames, res.VideoSize, res.AudioFrames, res.AudioSeconds)
	if res.Err != nil {
		t.Errorf("%s: ffmpeg failed: %v\n%s", what, res.Err, testutil.Tail(res.Stderr, 30))
	}
	if lines := errorLines(res.Stderr); len(lines) > 0 {
		t.Errorf("%s: ffmpeg reported %d error lines:\n%s", what, len(lines), testutil.Tail(strings.Join(lines, "\n"), 30))
	}
	secs := dur.Seconds()
	if wantVideo {
		// 30 fps for dur, with a margin for where reading starts and ends.
		if min := int(secs * 30 * 2 / 3); res.VideoFrames < min {
			t.Errorf("%s: decoded %d video frames in %v, want >= %d", what, res.VideoFrames, dur, min)
		}
		if res.VideoSize != "640x360" {
			t.Errorf("%s: decoded video size %q, want 640x360", what, res.VideoSize)
		}
	} else if res.VideoFrames > 0 {
		t.Errorf("%s: decoded %d video frames from a stream without video", what, res.VideoFrames)
	}
	if wantAudio {
		if min := secs * 2 / 3; res.AudioSeconds < min {
			t.Errorf("%s: decoded %.2f s of audio in %v, want >= %.1f s", what, res.AudioSeconds, dur, min)
		}
	} else if res.AudioFrames > 0 {
		t.Errorf("%s: decoded %d audio frames from a stream without audio", what, res.AudioFrames)
	}
}

// checkProbe asserts the codecs and picture size ffprobe sees.
func checkProbe(t *testing.T, what string, p *probeResult, videoCodec string, w, h int, audioCodec string) {
	t.Helper()
	v, a := p.ByType("video"), p.ByType("audio")
	t.Logf("%s: ffprobe sees format %s, %d video and %d audio streams", what, p.Format.FormatName, len(v), len(a))
	if videoCodec == "" {
		if len(v) > 0 {
			t.Errorf("%s: ffprobe sees video %+v in a stream published without video", what, v)
		}
	} else {
		if len(v) != 1 {
			t.Errorf("%s: ffprobe sees %d video streams, want 1: %+v", what, len(v), p.Streams)
		} else {
			if v[0].CodecName != videoCodec {
				t.Errorf("%s: video codec %q, want %q", what, v[0].CodecName, videoCodec)
			}
			if v[0].Width != w || v[0].Height != h {
				t.Errorf("%s: video size %dx%d, want %dx%d", what, v[0].Width, v[0].Height, w, h)
			}
		}
	}
	if audioCodec == "" {
		if len(a) > 0 {
			t.Errorf("%s: ffprobe sees audio %+v in a stream published without audio", what, a)
		}
	} else {
		if len(a) != 1 {
			t.Errorf("%s: ffprobe sees %d audio streams, want 1: %+v", what, len(a), p.Streams)
		} else {
			if a[0].CodecName != audioCodec {
				t.Errorf("%s: audio codec %q, want %q", what, a[0].CodecName, audioCodec)
			}
			if a[0].SampleRate != "48000" {
				t.Errorf("%s: audio sample rate %q, want 48000", what, a[0].SampleRate)
			}
		}
	}
}

// TestPlaybackHLSAndDASH publishes H.264 + AAC over RTMP with ffmpeg, with
// the shipped defaults (2 s segments), and plays the HLS and the DASH
// output with ffmpeg for 10 s each.
func TestPlaybackHLSAndDASH(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: "log:\n  level: debug\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const name = "live/play"
	pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 90 * time.Second})
	waitForPlaylist(t, s, name, 2)

	const dur = 10 * time.Second
	t.Run("HLS", func(t *testing.T) {
		checkProbe(t, "HLS", ffprobe(t, s.HLSURL(name)), "h264", 640, 360, "aac")
		checkDecode(t, "HLS", ffmpegDecode(t, s.HLSURL(name), dur), dur, true, true)
	})
	t.Run("DASH", func(t *testing.T) {
		code, mpd := httpGet(t, s.DASHURL(name))
		if code != 200 {
			t.Fatalf("GET %s: %d\n%s", s.DASHURL(name), code, mpd)
		}
		if !strings.Contains(mpd, `type="dynamic"`) {
			t.Errorf("live MPD is not type=\"dynamic\":\n%s", mpd)
		}
		checkProbe(t, "DASH", ffprobe(t, s.DASHURL(name)), "h264", 640, 360, "aac")
		checkDecode(t, "DASH", ffmpegDecode(t, s.DASHURL(name), dur), dur, true, true)
	})
	if !pub.Running() {
		t.Errorf("the publisher exited during playback: %v\n%s", pub.err, testutil.Tail(pub.Stderr.String(), 20))
	}
}

// TestAudioOnlyAndVideoOnly publishes a stream without video and one
// without audio; each plays over HLS with only the tracks it has.
func TestAudioOnlyAndVideoOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: fastConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ffmpegPublish(t, ctx, s.RTMPURL("live/audio"), pubOptions{NoVideo: true, Duration: 60 * time.Second})
	ffmpegPublish(t, ctx, s.RTMPURL("live/video"), pubOptions{NoAudio: true, Duration: 60 * time.Second})
	waitForPlaylist(t, s, "live/audio", 2)
	waitForPlaylist(t, s, "live/video", 2)

	const dur = 6 * time.Second
	t.Run("AudioOnly", func(t *testing.T) {
		checkProbe(t, "audio-only HLS", ffprobe(t, s.HLSURL("live/audio")), "", 0, 0, "aac")
		checkDecode(t, "audio-only HLS", ffmpegDecode(t, s.HLSURL("live/audio"), dur), dur, false, true)
	})
	t.Run("VideoOnly", func(t *testing.T) {
		checkProbe(t, "video-only HLS", ffprobe(t, s.HLSURL("live/video")), "h264", 640, 360, "")
		checkDecode(t, "video-only HLS", ffmpegDecode(t, s.HLSURL("live/video"), dur), dur, true, false)
	})
	t.Run("AudioOnlyDASH", func(t *testing.T) {
		checkProbe(t, "audio-only DASH", ffprobe(t, s.DASHURL("live/audio")), "", 0, 0, "aac")
	})
	t.Run("VideoOnlyDASH", func(t *testing.T) {
		checkProbe(t, "video-only DASH", ffprobe(t, s.DASHURL("live/video")), "h264", 640, 360, "")
	})
}
