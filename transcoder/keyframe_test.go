package transcoder

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// kfMedia is video encoded by ffmpeg at test time and split into access
// units in MP4 sample form, as the hub carries them.
type kfMedia struct {
	track *stream.Track
	aus   []*stream.AccessUnit // DTS order, timestamps from 0
}

// kfEncode encodes seconds of 640x360 testsrc2 at fps with the encoder
// arguments given, into fragmented MP4, and reads it back with mediacommon:
// the codec parameters become the track, the samples the access units.
func kfEncode(t *testing.T, seconds float64, fps int, encoder ...string) *kfMedia {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=640x360:rate=%d", fps),
		"-t", fmt.Sprint(seconds), "-pix_fmt", "yuv420p"}
	args = append(args, encoder...)
	args = append(args, "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1")
	cmd := exec.Command("ffmpeg", args...)
	cmd.Env = append(cmd.Environ(), "SVT_LOG=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("encode %v: %v: %s", encoder, err, stderr.Bytes())
	}
	// Top-level boxes: ftyp and moov are the init segment; moof and mdat
	// pairs the fragments; the trailing mfra is left out.
	var head, frags []byte
	for b := out; len(b) >= 8; {
		size := int(binary.BigEndian.Uint32(b))
		if size < 8 || size > len(b) {
			t.Fatalf("bad box size %d", size)
		}
		switch string(b[4:8]) {
		case "ftyp", "moov":
			head = append(head, b[:size]...)
		case "moof", "mdat":
			frags = append(frags, b[:size]...)
		}
		b = b[size:]
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(head)); err != nil || len(init.Tracks) != 1 {
		t.Fatalf("init segment: %v", err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(frags); err != nil {
		t.Fatalf("fragments: %v", err)
	}
	it := init.Tracks[0]
	m := &kfMedia{track: &stream.Track{Codec: it.Codec, ClockRate: int(it.TimeScale)}}
	scale := func(v int64) time.Duration { return time.Duration(v) * time.Second / time.Duration(it.TimeScale) }
	for _, p := range parts {
		for _, pt := range p.Tracks {
			dts := int64(pt.BaseTime)
			for i, s := range pt.Samples {
				// frag_keyframe starts each fragment on a keyframe; ffmpeg
				// flags it with trun's first_sample_flags, which mediacommon
				// does not read.
				m.aus = append(m.aus, &stream.AccessUnit{Track: m.track, DTS: scale(dts),
					PTS: scale(dts + int64(s.PTSOffset)), Key: i == 0 || !s.IsNonSyncSample, Payload: s.Payload})
				dts += int64(s.Duration)
			}
		}
	}
	if len(m.aus) == 0 || !m.aus[0].Key {
		t.Fatalf("no media, or not starting on a keyframe")
	}
	return m
}

var (
	kfH264Once sync.Once
	kfH264     *kfMedia
)

// kfH264Media is 4 s of H.264 at 10 fps with a keyframe every 0.5 s, made
// once per test binary.
func kfH264Media(t *testing.T) *kfMedia {
	t.Helper()
	kfH264Once.Do(func() {
		kfH264 = kfEncode(t, 4, 10, "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "5")
	})
	if kfH264 == nil {
		t.Fatal("no H.264 media")
	}
	return kfH264
}

// kfPublish publishes m into hub as name in real time, until the media
// ends or ctx is cancelled, and then closes the publisher.
func kfPublish(ctx context.Context, t *testing.T, hub *stream.Hub, name string, m *kfMedia) <-chan struct{} {
	t.Helper()
	track := *m.track
	p, err := hub.Publish(name, []*stream.Track{&track}, stream.PublishOptions{Protocol: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer p.Close(nil)
		start := time.Now()
		for _, au := range m.aus {
			select {
			case <-time.After(time.Until(start.Add(au.DTS))):
			case <-ctx.Done():
				return
			}
			a := *au
			a.Track = &track
			p.WriteUnit(&a)
		}
	}()
	return done
}

// kfWait polls cond until it holds or 30 s pass.
func kfWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kfNoLeaks fails the test when a goroutine of the thumbnailer outlives it.
func kfNoLeaks(t *testing.T) {
	t.Helper()
	kfWait(t, "the thumbnailer's goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		return !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*KeyframeThumbnailer)")
	})
}

func kfCheckJPEG(t *testing.T, img []byte, w, h int) {
	t.Helper()
	pic, err := jpeg.Decode(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("thumbnail is not a JPEG: %v", err)
	}
	if b := pic.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("thumbnail is %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
}

func TestKeyframeThumbnailer(t *testing.T) {
	m := kfH264Media(t)
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: slog.New(slog.DiscardHandler)})
	defer hub.Close()
	thumbs := &Thumbnails{}
	var skipped atomic.Int64
	k := &KeyframeThumbnailer{Hub: hub, Sink: thumbs, Interval: 700 * time.Millisecond,
		Skip: func(name string) bool {
			if name != "live/skipped" {
				return false
			}
			skipped.Add(1)
			return true
		}}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	defer kfNoLeaks(t)
	defer k.Close()
	if err := k.Start(); err == nil {
		t.Error("second Start succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := kfPublish(ctx, t, hub, "live/cam", m)
	skippedDone := kfPublish(ctx, t, hub, "live/skipped", m)

	var first []byte
	var firstAt time.Time
	kfWait(t, "a thumbnail", func() bool {
		var ok bool
		first, firstAt, ok = thumbs.Latest("live/cam")
		return ok
	})
	kfCheckJPEG(t, first, 320, 180)

	// testsrc2 moves: a later thumbnail differs.
	var second []byte
	kfWait(t, "a second thumbnail", func() bool {
		img, at, ok := thumbs.Latest("live/cam")
		second = img
		return ok && at.After(firstAt)
	})
	kfCheckJPEG(t, second, 320, 180)
	if bytes.Equal(first, second) {
		t.Error("the second thumbnail is the same picture as the first")
	}
	_, secondAt, _ := thumbs.Latest("live/cam")
	if gap := secondAt.Sub(firstAt); gap < 600*time.Millisecond {
		t.Errorf("thumbnails %v apart, want at least the interval", gap)
	}

	// Skip returning true: nothing for that stream, though it was asked.
	if skipped.Load() == 0 {
		t.Error("Skip never called for the skipped stream")
	}
	if _, _, ok := thumbs.Latest("live/skipped"); ok {
		t.Error("thumbnail made for a skipped stream")
	}

	// The stream ends: its thumbnail goes.
	cancel()
	<-done
	<-skippedDone
	kfWait(t, "the thumbnail to be forgotten", func() bool {
		_, _, ok := thumbs.Latest("live/cam")
		return !ok
	})
}

// TestKeyframeThumbnailerCloseAndLateStart checks that streams already live
// when Start is called are watched, and that Close stops everything while
// streams still run.
func TestKeyframeThumbnailerCloseAndLateStart(t *testing.T) {
	m := kfH264Media(t)
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: slog.New(slog.DiscardHandler)})
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := kfPublish(ctx, t, hub, "live/early", m)
	defer func() { cancel(); <-done }()

	thumbs := &Thumbnails{}
	k := &KeyframeThumbnailer{Hub: hub, Sink: thumbs, Width: 160}
	if err := (&KeyframeThumbnailer{Hub: hub}).Start(); err == nil {
		t.Error("Start without a Sink succeeded")
	}
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	kfWait(t, "a thumbnail of a stream live before Start", func() bool {
		_, _, ok := thumbs.Latest("live/early")
		return ok
	})
	img, _, _ := thumbs.Latest("live/early")
	kfCheckJPEG(t, img, 160, 90)

	k.Close()
	kfNoLeaks(t)
	if _, _, ok := thumbs.Latest("live/early"); ok {
		t.Error("thumbnail kept after Close")
	}
	k.Close() // idempotent
	if err := k.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

// TestKeyframeThumbnailCodecs decodes one keyframe of each codec the hub
// carries through the same fragmented-MP4 path.
func TestKeyframeThumbnailCodecs(t *testing.T) {
	k := &KeyframeThumbnailer{Width: 160}
	for _, c := range []struct {
		name    string
		encoder []string
	}{
		{"h264", []string{"-c:v", "libx264", "-preset", "ultrafast"}},
		{"h265", []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"}},
		{"av1", []string{"-c:v", "libsvtav1", "-preset", "12"}},
		{"vp9", []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := kfEncode(t, 0.1, 10, c.encoder...)
			if got := m.track.CodecName(); got != c.name {
				t.Fatalf("track codec %s", got)
			}
			img, err := k.decode(context.Background(), m.track, m.aus[0])
			if err != nil {
				t.Fatal(err)
			}
			kfCheckJPEG(t, img, 160, 90)
		})
	}
}

func TestKeyframeThumbnailDecodeErrors(t *testing.T) {
	m := kfH264Media(t)
	k := &KeyframeThumbnailer{}
	bad := *m.aus[0]
	bad.Payload = []byte{0, 0, 0, 4, 0x65, 0xff, 0xff, 0xff}
	if _, err := k.decode(context.Background(), m.track, &bad); err == nil {
		t.Error("a broken keyframe decoded")
	}
	k.FFmpeg = "/nonexistent/ffmpeg"
	if _, err := k.decode(context.Background(), m.track, m.aus[0]); err == nil {
		t.Error("a missing ffmpeg decoded")
	}
	// A hung ffmpeg is killed at the timeout.
	hung := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(hung, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	k = &KeyframeThumbnailer{FFmpeg: hung, Timeout: 100 * time.Millisecond}
	start := time.Now()
	if _, err := k.decode(context.Background(), m.track, m.aus[0]); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("hung ffmpeg: %v after %v", err, time.Since(start))
	}
}
