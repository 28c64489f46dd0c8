package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/rtmppub"
	"github.com/mps-dev/mps/test/testutil"
)

// TestEnhancedRTMPCodecs publishes H.265, AV1 and VP9 video over Enhanced
// RTMP (what OBS 30+ sends; ffmpeg 5.1 cannot, so test/rtmppub does) and
// checks that the HLS and DASH output play with the right codec and size.
func TestEnhancedRTMPCodecs(t *testing.T) {
	t.Parallel()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	s := startServer(t, serverOptions{Config: fastConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	for _, tc := range []struct {
		codec     rtmppub.Codec
		probeName string // ffprobe's codec_name
		apiName   string // the API's codec name
		hlsCodecs []string
		w, h      int
	}{
		// H.265 is the one OBS users send most; it gets the full check.
		{codec: rtmppub.H265, probeName: "hevc", apiName: "h265", hlsCodecs: []string{"hvc1.", "hev1."}, w: 640, h: 360},
		{codec: rtmppub.AV1, probeName: "av1", apiName: "av1", hlsCodecs: []string{"av01."}, w: 640, h: 360},
		{codec: rtmppub.VP9, probeName: "vp9", apiName: "vp9", hlsCodecs: []string{"vp09."}, w: 640, h: 360},
	} {
		t.Run(string(tc.codec), func(t *testing.T) {
			name := "live/" + string(tc.codec)
			pctx, pcancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() {
				errc <- rtmppub.Publish(pctx, rtmppub.Options{URL: s.RTMPURL(name), Codec: tc.codec,
					Duration: 60 * time.Second, Width: tc.w, Height: tc.h, FPS: 30})
			}()
			defer func() {
				pcancel()
				select {
				case err := <-errc:
					if err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("rtmppub %s: %v", tc.codec, err)
					}
				case <-time.After(15 * time.Second):
					t.Errorf("rtmppub %s did not stop within 15 s of its context ending", tc.codec)
				}
			}()
			// A publisher that fails at once (refused, or the encoder
			// failed) must not leave us waiting for a playlist.
			waitFor(t, 40*time.Second, "the "+string(tc.codec)+" stream's playlist", func() bool {
				select {
				case err := <-errc:
					errc <- err
					t.Fatalf("rtmppub %s ended early: %v", tc.codec, err)
				default:
				}
				code, body, err := tryGet(ctx, s.HLSURL(name))
				if err != nil || code != 200 {
					return false
				}
				u, err := firstMediaPlaylistURL(s.HLSURL(name), body)
				if err != nil {
					return false
				}
				pl, err := fetchMediaPlaylist(ctx, u)
				return err == nil && len(pl.Segments) >= 2
			})

			_, mv := httpGet(t, s.HLSURL(name))
			found := false
			for _, c := range tc.hlsCodecs {
				found = found || strings.Contains(mv, `CODECS="`+c) || strings.Contains(mv, ","+c)
			}
			if !found {
				t.Errorf("multivariant playlist does not name %v in CODECS:\n%s", tc.hlsCodecs, mv)
			}

			checkProbe(t, string(tc.codec)+" HLS", ffprobe(t, s.HLSURL(name)), tc.probeName, tc.w, tc.h, "")
			const dur = 4 * time.Second
			checkDecodeSize(t, string(tc.codec)+" HLS", ffmpegDecode(t, s.HLSURL(name), dur), dur, tc.w, tc.h)
			if tc.codec == rtmppub.H265 {
				checkProbe(t, "h265 DASH", ffprobe(t, s.DASHURL(name)), tc.probeName, tc.w, tc.h, "")
			}

			st, ok := s.stream(t, name)
			if !ok {
				t.Fatalf("%s is not in the API", name)
			}
			if len(st.Tracks) != 1 || st.Tracks[0].Codec != tc.apiName || st.Tracks[0].Width != tc.w || st.Tracks[0].Height != tc.h {
				t.Errorf("API tracks %+v, want one %s %dx%d track", st.Tracks, tc.apiName, tc.w, tc.h)
			}
		})
	}
}

// checkDecodeSize is checkDecode for video of any size without audio.
func checkDecodeSize(t *testing.T, what string, res decodeResult, dur time.Duration, w, h int) {
	t.Helper()
	t.Logf("%s: decoded %d video frames (%s)", what, res.VideoFrames, res.VideoSize)
	if res.Err != nil {
		t.Errorf("%s: ffmpeg failed: %v\n%s", what, res.Err, testutil.Tail(res.Stderr, 30))
	}
	if lines := errorLines(res.Stderr); len(lines) > 0 {
		t.Errorf("%s: ffmpeg reported %d error lines:\n%s", what, len(lines), testutil.Tail(strings.Join(lines, "\n"), 30))
	}
	if min := int(dur.Seconds() * 30 * 2 / 3); res.VideoFrames < min {
		t.Errorf("%s: decoded %d video frames in %v, want >= %d", what, res.VideoFrames, dur, min)
	}
	if want := fmt.Sprintf("%dx%d", w, h); res.VideoSize != want {
		t.Errorf("%s: decoded video size %q, want %s", what, res.VideoSize, want)
	}
}
