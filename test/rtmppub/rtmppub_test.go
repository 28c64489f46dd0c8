package rtmppub

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/rtmp"
	"github.com/mps-dev/mps/stream"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
}

// encode runs ffmpeg on one second of 320x240 testsrc2 at 30 fps.
func encode(t *testing.T, format string, encoder ...string) []byte {
	t.Helper()
	needFFmpeg(t)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "1", "-pix_fmt", "yuv420p"}
	args = append(args, encoder...)
	args = append(args, "-f", format, "-")
	cmd := exec.Command("ffmpeg", args...)
	cmd.Env = append(cmd.Environ(), "SVT_LOG=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	return out
}

func readAll(t *testing.T, src unitSource) [][][]byte {
	t.Helper()
	var units [][][]byte
	for {
		u, err := src.Next()
		if errors.Is(err, io.EOF) {
			return units
		}
		if err != nil {
			t.Fatalf("after %d units: %v", len(units), err)
		}
		units = append(units, u)
	}
}

func TestNALScannerMatchesAnnexB(t *testing.T) {
	raw := encode(t, "hevc", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error")
	var want h264.AnnexB
	if err := want.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	// One byte per Read: start codes straddle every read boundary.
	for name, r := range map[string]io.Reader{"whole": bytes.NewReader(raw), "one byte": iotest.OneByteReader(bytes.NewReader(raw))} {
		sc := newNALScanner(r)
		var got [][]byte
		for {
			n, err := sc.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, n)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d NAL units, want %d", name, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: NAL unit %d differs", name, i)
			}
		}
	}
}

func TestH265SplitterOneAccessUnitPerFrame(t *testing.T) {
	raw := encode(t, "hevc", "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "bframes=0:keyint=10:min-keyint=10:scenecut=0:repeat-headers=1:log-level=error")
	aus := readAll(t, newH265Splitter(bufio.NewReader(bytes.NewReader(raw))))
	if len(aus) != 30 {
		t.Fatalf("%d access units for 30 frames", len(aus))
	}
	keys := 0
	for i, au := range aus {
		pictures := 0
		for _, n := range au {
			if typ := h265.NALUType((n[0] >> 1) & 0x3f); typ < 32 && n[2]&0x80 != 0 {
				pictures++
			}
		}
		if pictures != 1 {
			t.Fatalf("access unit %d holds %d pictures", i, pictures)
		}
		if h265.IsRandomAccess(au) {
			keys++
		}
	}
	if keys != 3 || !h265.IsRandomAccess(aus[0]) {
		t.Fatalf("%d keyframes (first: %v), want 3 with keyint=10", keys, h265.IsRandomAccess(aus[0]))
	}
	if _, err := (h265Sender{}).Track(aus[0]); err != nil {
		t.Fatal(err)
	}
}

func TestOBUSplitterOneTemporalUnitPerFrame(t *testing.T) {
	raw := encode(t, "obu", "-c:v", "libsvtav1", "-preset", "12", "-g", "10")
	tus := readAll(t, newOBUSplitter(bufio.NewReader(bytes.NewReader(raw))))
	if len(tus) != 30 {
		t.Fatalf("%d temporal units for 30 frames", len(tus))
	}
	if !av1.IsRandomAccess2(tus[0]) {
		t.Fatal("first temporal unit has no sequence header")
	}
	for i, tu := range tus {
		if _, err := av1.Bitstream(tu).Marshal(); err != nil {
			t.Fatalf("temporal unit %d: %v", i, err)
		}
		for _, obu := range tu {
			if av1.OBUType((obu[0]>>3)&0xf) == av1.OBUTypeTemporalDelimiter {
				t.Fatalf("temporal unit %d keeps its delimiter", i)
			}
		}
	}
	// A stream cut inside an OBU is an error, not a hang or a panic.
	s := newOBUSplitter(bufio.NewReader(bytes.NewReader(raw[:len(raw)-3])))
	var err error
	for err == nil {
		_, err = s.Next()
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated stream: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestIVFReaderOneFramePerFrame(t *testing.T) {
	raw := encode(t, "ivf", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0", "-g", "10")
	frames := readAll(t, newIVFReader(bytes.NewReader(raw)))
	if len(frames) != 30 {
		t.Fatalf("%d frames, want 30", len(frames))
	}
	if !vp9.IsRandomAccess(frames[0][0]) {
		t.Fatal("first frame is not a keyframe")
	}
	if _, err := newIVFReader(bytes.NewReader(raw[:len(raw)-5])).Next(); err != nil {
		t.Fatal(err) // the first frame is whole
	}
	r := newIVFReader(bytes.NewReader(raw[:len(raw)-5]))
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if errors.Is(err, io.EOF) {
		t.Fatal("truncated last frame not reported")
	}
}

// ingest starts the RTMP ingest server with a hub; it stops at the end of the test.
func ingest(t *testing.T, policy *auth.Policy) (*stream.Hub, *rtmp.Server) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, nil))
	}
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: log})
	srv := &rtmp.Server{Addr: "127.0.0.1:0", Hub: hub, Auth: policy, Logger: log}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		hub.Close()
	})
	return hub, srv
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func rtmpURL(srv *rtmp.Server, path string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s", srv.ListenAddr().(*net.TCPAddr).Port, path)
}

// Each codec arrives in the hub as its own track type, at the resolution
// the encoder used, with keyframes marked.
func TestPublishToIngest(t *testing.T) {
	needFFmpeg(t)
	for _, tc := range []struct {
		codec Codec
		name  string
		isKey func(payload []byte) bool
	}{
		{H265, "h265", func(p []byte) bool {
			var au h264.AVCC
			return au.Unmarshal(p) == nil && h265.IsRandomAccess(au)
		}},
		{AV1, "av1", func(p []byte) bool {
			var tu av1.Bitstream
			return tu.Unmarshal(p) == nil && av1.IsRandomAccess2(tu)
		}},
		{VP9, "vp9", vp9.IsRandomAccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub, srv := ingest(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				errc <- Publish(ctx, Options{URL: rtmpURL(srv, "live/"+tc.name), Codec: tc.codec,
					Duration: 5 * time.Second, Width: 640, Height: 360, FPS: 30})
			}()

			st := waitLive(t, hub, "live/"+tc.name, errc)
			tracks := st.Session().Tracks
			if len(tracks) != 1 || tracks[0].CodecName() != tc.name {
				t.Fatalf("tracks = %v, want one %s track", tracks, tc.name)
			}
			if w, h := tracks[0].Resolution(); w != 640 || h != 360 {
				t.Fatalf("resolution = %dx%d, want 640x360", w, h)
			}
			if tc.codec == VP9 {
				if c := tracks[0].Codec.(*codecs.VP9); c.BitDepth != 8 || c.ChromaSubsampling != 1 {
					t.Fatalf("VP9 parameters = %+v", c)
				}
			}

			rd, err := st.NewReader("test", "")
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			readCtx, readCancel := context.WithTimeout(ctx, 2*time.Second)
			defer readCancel()
			units, keys := 0, 0
			var last time.Duration
			for {
				it, err := rd.Read(readCtx)
				if err != nil {
					break
				}
				if it.AU == nil {
					continue
				}
				if units == 0 && !it.AU.Key {
					t.Fatal("reader did not start on a keyframe")
				}
				if it.AU.Key != tc.isKey(it.AU.Payload) {
					t.Fatalf("unit %d: Key = %v, payload says %v", units, it.AU.Key, !it.AU.Key)
				}
				if units > 0 && it.AU.DTS <= last {
					t.Fatalf("DTS %v after %v", it.AU.DTS, last)
				}
				last = it.AU.DTS
				units++
				if it.AU.Key {
					keys++
				}
			}
			if units < 20 || keys < 1 {
				t.Fatalf("got %d units and %d keyframes in 2 s", units, keys)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Publish: %v", err)
			}
		})
	}
}

func waitLive(t *testing.T, hub *stream.Hub, name string, errc chan error) *stream.Stream {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if st, err := hub.Get(name); err == nil && st.State() == stream.StateLive {
			return st
		}
		select {
		case err := <-errc:
			t.Fatalf("Publish ended before the stream was live: %v", err)
		case <-deadline:
			t.Fatalf("%s not live", name)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// A refused publish fails with the server's reason.
func TestPublishRefused(t *testing.T) {
	needFFmpeg(t)
	_, srv := ingest(t, &auth.Policy{Apps: []auth.App{{Name: "live", Keys: []string{"right"}}}})
	err := PublishH265(t.Context(), rtmpURL(srv, "live/cam?key=wrong"), 2*time.Second, 320, 240, 30)
	if err == nil || !strings.Contains(err.Error(), "wrong key") {
		t.Fatalf("err = %v, want a wrong key refusal", err)
	}
}

// Cancelling the context stops a publish promptly, ffmpeg included.
func TestPublishCancel(t *testing.T) {
	needFFmpeg(t)
	hub, srv := ingest(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- PublishH265(ctx, rtmpURL(srv, "live/cancel"), time.Minute, 320, 240, 30) }()
	st := waitLive(t, hub, "live/cancel", errc)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Publish did not return after cancel")
	}
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream still live after the publisher stopped")
	}
}
