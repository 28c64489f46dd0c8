package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h265writer"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testts"
	"github.com/mps-dev/mps/test/testutil"
)

// makeIVFVideo encodes seconds of a 30 fps test pattern as VP9 or AV1
// frames (IVF from ffmpeg).
func makeIVFVideo(t testing.TB, codec string, seconds, width, height int) [][]byte {
	t.Helper()
	enc := map[string][]string{
		"vp9": {"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"},
		"av1": {"-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-row-mt", "1"},
	}[codec]
	args := append([]string{"-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=30", width, height),
		"-t", strconv.Itoa(seconds)}, enc...)
	args = append(args, "-g", "30", "-b:v", "400k", "-f", "ivf", "-")
	out, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("encode %s: %v", codec, err)
	}
	_, w, h, _, fr, err := parseIVF(out)
	if err != nil || w != width || h != height || len(fr) != seconds*30 {
		t.Fatalf("%s IVF: %v %dx%d %d frames", codec, err, w, h, len(fr))
	}
	frames := make([][]byte, len(fr))
	for i, f := range fr {
		frames[i] = f.data
	}
	return frames
}

// countFrames decodes a file with ffmpeg and returns the frames decoded.
func countFrames(t testing.TB, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
	if err != nil {
		t.Fatalf("ffprobe %s: %q", path, out)
	}
	return n
}

// writeHubIVF writes a hub VP9 or AV1 track's access units as IVF.
func writeHubIVF(t testing.TB, path, fourcc string, w, h int, aus []*stream.AccessUnit) {
	t.Helper()
	hdr := ivfHeader(w, h, 90000)
	copy(hdr[8:], fourcc)
	b := hdr
	for _, au := range aus {
		payload := au.Payload
		if fourcc == "AV01" {
			payload = append([]byte{0x12, 0x00}, payload...) // a temporal delimiter begins each unit
		}
		b = appendIVFFrame(b, payload, uint64(stream.Ticks(au.PTS, 90000)))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// playInto plays name over WHEP from a pion client whose only video codec
// is mime, and writes the received video with w until the test ends.
// It returns the count of audio packets received so far, as a function.
func playInto(t *testing.T, f *fixture, name, mime, fmtp string, w interface{ WriteRTP(*rtp.Packet) error }) func() int {
	t.Helper()
	pc := newCodecClientPC(t, mime, fmtp)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	audio := 0
	var wg sync.WaitGroup
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				mu.Lock()
				if tr.Kind() == webrtc.RTPCodecTypeAudio {
					audio++
				} else {
					w.WriteRTP(pkt)
				}
				mu.Unlock()
			}
		}()
	})
	answer, _, err := f.srv.Play(context.Background(), name, "127.0.0.1:40001", makeOffer(t, pc))
	if err != nil {
		t.Fatal(err)
	}
	setAnswer(t, pc, answer)
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return audio
	}
}

// TestWHIPPassesVP9AndAV1Through publishes VP9 and AV1 over WHIP: the
// hub gets the codec as it is (no transcoder is configured), the units
// decode, and a WHEP player that takes the same codec decodes what it gets.
func TestWHIPPassesVP9AndAV1Through(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	for _, tc := range []struct {
		codec, mime, fmtp, fourcc string
	}{
		{"vp9", webrtc.MimeTypeVP9, "profile-id=0", "VP90"},
		{"av1", webrtc.MimeTypeAV1, "", "AV01"},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			frames := makeIVFVideo(t, tc.codec, 2, 320, 240)
			f := newFixture(t, keyPolicy())
			name := "live/" + tc.codec
			publishFrames(t, f, name, tc.mime, tc.fmtp, frames)
			st := waitLive(t, f.hub, name, 8*time.Second)

			var got bytes.Buffer
			var gotMu sync.Mutex
			iw, err := ivfwriter.NewWith(writerFunc(func(p []byte) (int, error) {
				gotMu.Lock()
				defer gotMu.Unlock()
				return got.Write(p)
			}), ivfwriter.WithCodec(tc.mime), ivfwriter.WithWidthAndHeight(320, 240))
			if err != nil {
				t.Fatal(err)
			}
			audio := playInto(t, f, name, tc.mime, tc.fmtp, iw)

			sess, aus := readFor(t, st, 3*time.Second)
			if sess == nil {
				t.Fatal("no session")
			}
			var video []*stream.AccessUnit
			for _, au := range aus {
				if au.Track.IsVideo() {
					video = append(video, au)
				}
			}
			vt := video[0].Track
			if vt.CodecName() != tc.codec {
				t.Fatalf("hub video codec %s, want %s", vt.CodecName(), tc.codec)
			}
			if w, h := vt.Resolution(); w != 320 || h != 240 {
				t.Fatalf("hub video %dx%d, want 320x240", w, h)
			}
			if c := trackCodecs(sess.Tracks); len(c) != 2 || c[1] != "opus" {
				t.Fatalf("tracks %v, want %s and opus", c, tc.codec)
			}
			// The reader starts at a keyframe: every unit it got decodes.
			dir := t.TempDir()
			hubFile := filepath.Join(dir, "hub.ivf")
			writeHubIVF(t, hubFile, tc.fourcc, 320, 240, video)
			if n := countFrames(t, hubFile); n < 60 || n != len(video) {
				t.Fatalf("hub units: %d of %d decoded (want >= 60, all)", n, len(video))
			}

			gotMu.Lock()
			iw.Close()
			whep := append([]byte(nil), got.Bytes()...)
			gotMu.Unlock()
			whepFile := filepath.Join(dir, "whep.ivf")
			if err := os.WriteFile(whepFile, whep, 0o644); err != nil {
				t.Fatal(err)
			}
			if n := countFrames(t, whepFile); n < 45 {
				t.Fatalf("WHEP player decoded %d %s frames in 3 s, want >= 45", n, tc.codec)
			}
			if a := audio(); a < 50 {
				t.Fatalf("WHEP player got %d Opus packets, want >= 50", a)
			}
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestWHEPPlaysH265 plays an H.265 + AAC stream (as SRT from a hardware
// encoder brings) to a WHEP player that takes H.265: the video arrives as
// it is and decodes, and the audio arrives as Opus.
func TestWHEPPlaysH265(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	ts, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "5",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=30:bframes=0",
		"-c:a", "aac", "-f", "mpegts", "-").Output()
	if err != nil {
		t.Fatalf("encode h265: %v", err)
	}
	f := newFixture(t, keyPolicy())
	testts.Publish(t, f.hub, "live/hevc", ts)
	waitLive(t, f.hub, "live/hevc", 5*time.Second)

	var got bytes.Buffer
	var mu sync.Mutex
	hw := h265writer.NewWith(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return got.Write(p)
	}))
	audio := playInto(t, f, "live/hevc", webrtc.MimeTypeH265, "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST", hw)
	time.Sleep(3 * time.Second)
	mu.Lock()
	b := append([]byte(nil), got.Bytes()...)
	mu.Unlock()
	path := filepath.Join(t.TempDir(), "whep.h265")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := countFrames(t, path); n < 45 {
		t.Fatalf("WHEP player decoded %d H.265 frames in 3 s, want >= 45", n)
	}
	if a := audio(); a < 50 {
		t.Fatalf("WHEP player got %d Opus packets made from AAC, want >= 50", a)
	}
}

// TestWHEPRefusesCodecThePlayerLacks checks the 415 that names both sides
// when a player cannot receive the stream's video codec.
func TestWHEPRefusesCodecThePlayerLacks(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	f := newFixture(t, keyPolicy())
	publishFrames(t, f, "live/av1only", webrtc.MimeTypeAV1, "", makeIVFVideo(t, "av1", 1, 320, 240))
	waitLive(t, f.hub, "live/av1only", 8*time.Second)
	pc := newCodecClientPC(t, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.srv.Play(context.Background(), "live/av1only", "127.0.0.1:40002", makeOffer(t, pc))
	var se *StatusError
	if !errors.As(err, &se) || se.HTTPStatus() != http.StatusUnsupportedMediaType {
		t.Fatalf("err = %v, want a 415", err)
	}
	if !strings.Contains(err.Error(), "AV1 video") || !strings.Contains(err.Error(), "H264") {
		t.Fatalf("error %q should name the stream's codec and the player's", err)
	}
}
