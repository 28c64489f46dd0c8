package vod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// snapTestVideo makes a 320x240 25 fps testsrc2 clip (with a sine
// track when withAudio) of seconds length and probes it.
func snapTestVideo(t *testing.T, seconds float64, withAudio bool) Media {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), "in.mp4")
	args := []string{"-v", "error", "-y", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=25:duration=%g", seconds)}
	if withAudio {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:duration=%g", seconds), "-c:a", "aac", "-shortest")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p", path)
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make test video: %v\n%s", err, out)
	}
	m, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// snapTestAudio makes an audio-only file and probes it.
func snapTestAudio(t *testing.T) Media {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), "in.m4a")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", path).CombinedOutput(); err != nil {
		t.Fatalf("make test audio: %v\n%s", err, out)
	}
	m, err := Probe(context.Background(), Env{}, path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// snapTestProgress records the progress a runner reports.
type snapTestProgress struct {
	mu     sync.Mutex
	values []float64
}

func (p *snapTestProgress) report(f float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.values = append(p.values, f)
}

// check fails unless progress stayed in 0..1, never went back, and ended at 1.
func (p *snapTestProgress) check(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.values) == 0 {
		t.Fatal("no progress reported")
	}
	prev := 0.0
	for _, v := range p.values {
		if v < prev-1e-9 || v < 0 || v > 1 {
			t.Fatalf("progress went %v", p.values)
		}
		prev = v
	}
	if last := p.values[len(p.values)-1]; last < 0.999 {
		t.Fatalf("progress ended at %v", last)
	}
}

func snapTestEnv(t *testing.T) (Env, *snapTestProgress) {
	pr := &snapTestProgress{}
	return Env{OutDir: t.TempDir(), Progress: pr.report}, pr
}

// snapTestDecode decodes a jpg or png output.
func snapTestDecode(t *testing.T, path string) image.Image {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var img image.Image
	switch filepath.Ext(path) {
	case ".png":
		img, err = png.Decode(bytes.NewReader(data))
	default:
		img, err = jpeg.Decode(bytes.NewReader(data))
	}
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img
}

// snapTestBadInput fails unless err is ErrBadInput mentioning every one of subs.
func snapTestBadInput(t *testing.T, err error, subs ...string) {
	t.Helper()
	if !errors.Is(err, ErrBadInput) {
		t.Fatalf("err = %v, want ErrBadInput", err)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("err = %q, want it to mention %q", err, s)
		}
	}
}

// snapTestCancel runs r on an input that never delivers data (a FIFO
// nobody writes) and checks that a cancel ends the run within a second
// and leaves no ffmpeg child.
func snapTestCancel(t *testing.T, r Runner, params string) {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	fifo := filepath.Join(t.TempDir(), "stuck.mp4")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	in := Media{Path: fifo, Duration: 60 * time.Second, Format: "mov,mp4,m4a,3gp,3g2,mj2",
		Video: &VideoStream{Codec: "h264", Width: 320, Height: 240, FPS: 25}}
	env, _ := snapTestEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(ctx, env, in, json.RawMessage(params))
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the run ended before the cancel: %v", err)
	default:
	}
	cancelled := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(cancelled); d > time.Second {
			t.Fatalf("the run took %v to end after the cancel", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the run did not end within 3 s of the cancel")
	}
	// No ffmpeg still has the FIFO open.
	out, _ := exec.Command("pgrep", "-f", fifo).Output()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("ffmpeg still runs after the cancel: pids %s", s)
	}
}

func snapRun(t *testing.T, env Env, in Media, params string) ([]Output, error) {
	t.Helper()
	return Snapshot().Run(context.Background(), env, in, json.RawMessage(params))
}

func TestSnapshotOffsetsMatchFrames(t *testing.T) {
	in := snapTestVideo(t, 6, true)
	env, pr := snapTestEnv(t)
	outs, err := snapRun(t, env, in, `{"format":"png","offsets":[2,0,4.4,1,1.5,2.5,3,3.5,5.99]}`)
	if err != nil {
		t.Fatal(err)
	}
	pr.check(t)
	if len(outs) != 9 {
		t.Fatalf("%d outputs, want 9", len(outs))
	}
	for i, o := range outs {
		if want := fmt.Sprintf("snap_%05d.png", i+1); o.Path != want || o.Kind != "image" || o.MIME != "image/png" || o.Size == 0 {
			t.Fatalf("output %d = %+v", i, o)
		}
		img := snapTestDecode(t, filepath.Join(env.OutDir, o.Path))
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 || o.Width != 320 || o.Height != 240 {
			t.Fatalf("%s: decoded %v, output says %dx%d", o.Path, b, o.Width, o.Height)
		}
	}
	if got := outs[0].Data["time"]; got != 2.0 {
		t.Fatalf("time of the first snapshot = %v", got)
	}
	if got := outs[8].Data["time"].(float64); got < 5.9 || got > 5.99 {
		t.Fatalf("time of the snapshot near the end = %v", got)
	}

	// The image at 2 s is frame 50, decoded from the start; frame 40 is not it.
	ref := filepath.Join(t.TempDir(), "ref_%d.png")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", in.Path,
		"-vf", `select=eq(n\,50)+eq(n\,40)`, "-fps_mode", "passthrough", "-frames:v", "2", ref).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := snapTestDecode(t, filepath.Join(env.OutDir, "snap_00001.png"))
	frame40 := snapTestDecode(t, fmt.Sprintf(ref, 1))
	frame50 := snapTestDecode(t, fmt.Sprintf(ref, 2))
	if d := snapTestDiff(got, frame50); d > 0.5 {
		t.Fatalf("the snapshot at 2 s differs from frame 50 by %.2f per channel", d)
	}
	if d := snapTestDiff(got, frame40); d < 1 {
		t.Fatalf("the snapshot at 2 s looks like frame 40 (diff %.2f): the test cannot tell frames apart", d)
	}
}

// snapTestDiff is the mean absolute difference per channel of two images of the same size (0..255).
func snapTestDiff(a, b image.Image) float64 {
	var sum, n float64
	bounds := a.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			for _, d := range []int{int(r1) - int(r2), int(g1) - int(g2), int(b1) - int(b2)} {
				sum += float64(max(d, -d)) / 257
				n++
			}
		}
	}
	return sum / n
}

func TestSnapshotIntervalAndPercent(t *testing.T) {
	in := snapTestVideo(t, 6, false)
	cases := []struct {
		params string
		count  int
		w, h   int
		ext    string
		times  []float64
	}{
		{`{"interval":2,"width":160}`, 3, 160, 120, "jpg", []float64{0, 2, 4}},
		{`{"interval":1.5,"height":60,"format":"png"}`, 4, 80, 60, "png", []float64{0, 1.5, 3, 4.5}},
		{`{"interval":1,"width":100,"height":100,"max_count":4}`, 4, 100, 75, "jpg", []float64{0, 1, 2, 3}},
		{`{"percent":10,"quality":50}`, 10, 320, 240, "jpg", nil},
		{`{"percent":30,"width":64}`, 4, 64, 48, "jpg", []float64{0, 1.8, 3.6, 5.4}},
		{`{"interval":100}`, 1, 320, 240, "jpg", []float64{0}},
	}
	for _, c := range cases {
		t.Run(c.params, func(t *testing.T) {
			env, pr := snapTestEnv(t)
			outs, err := snapRun(t, env, in, c.params)
			if err != nil {
				t.Fatal(err)
			}
			pr.check(t)
			if len(outs) != c.count {
				t.Fatalf("%d outputs, want %d", len(outs), c.count)
			}
			files, _ := filepath.Glob(filepath.Join(env.OutDir, "*"))
			if len(files) != c.count {
				t.Fatalf("%d files in the output folder, want %d: %v", len(files), c.count, files)
			}
			for i, o := range outs {
				if !strings.HasSuffix(o.Path, "."+c.ext) {
					t.Fatalf("output %s, want .%s", o.Path, c.ext)
				}
				b := snapTestDecode(t, filepath.Join(env.OutDir, o.Path)).Bounds()
				if b.Dx() != c.w || b.Dy() != c.h || o.Width != c.w || o.Height != c.h {
					t.Fatalf("%s is %v (output says %dx%d), want %dx%d", o.Path, b, o.Width, o.Height, c.w, c.h)
				}
				if c.times != nil {
					if got := o.Data["time"].(float64); got < c.times[i]-0.001 || got > c.times[i]+0.001 {
						t.Fatalf("%s time %v, want %v", o.Path, got, c.times[i])
					}
				}
			}
		})
	}
}

// The second image of a 2 s interval is the frame shown at 2 s (frame 50).
func TestSnapshotIntervalTakesTheFrameAtEachStep(t *testing.T) {
	in := snapTestVideo(t, 4, false)
	env, _ := snapTestEnv(t)
	if _, err := snapRun(t, env, in, `{"interval":2,"format":"png"}`); err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref.png")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", in.Path,
		"-vf", `select=eq(n\,50)`, "-frames:v", "1", ref).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d := snapTestDiff(snapTestDecode(t, filepath.Join(env.OutDir, "snap_00002.png")), snapTestDecode(t, ref)); d > 0.5 {
		t.Fatalf("the image at 2 s differs from frame 50 by %.2f per channel", d)
	}
}

func TestSnapshotCoverAndWebP(t *testing.T) {
	in := snapTestVideo(t, 4, true)
	env, pr := snapTestEnv(t)
	outs, err := snapRun(t, env, in, `{"cover":true,"width":200}`)
	if err != nil {
		t.Fatal(err)
	}
	pr.check(t)
	if len(outs) != 1 || outs[0].Path != "snap_00001.jpg" || outs[0].MIME != "image/jpeg" {
		t.Fatalf("outputs %+v", outs)
	}
	b := snapTestDecode(t, filepath.Join(env.OutDir, outs[0].Path)).Bounds()
	if b.Dx() != 200 || b.Dy() != 150 {
		t.Fatalf("cover is %v", b)
	}
	if tm := outs[0].Data["time"].(float64); tm < 0 || tm >= 4 {
		t.Fatalf("cover time %v", tm)
	}
	files, _ := filepath.Glob(filepath.Join(env.OutDir, "*"))
	if len(files) != 1 {
		t.Fatalf("files left in the output folder: %v", files)
	}

	env, _ = snapTestEnv(t)
	outs, err = snapRun(t, env, in, `{"offsets":[1],"format":"webp","width":160,"quality":60}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || outs[0].MIME != "image/webp" || outs[0].Width != 160 || outs[0].Height != 120 {
		t.Fatalf("outputs %+v", outs)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0",
		filepath.Join(env.OutDir, outs[0].Path)).Output()
	if err != nil || strings.TrimSpace(string(out)) != "webp,160,120" {
		t.Fatalf("ffprobe says %q, %v", out, err)
	}
}

func TestSnapshotBadParams(t *testing.T) {
	in := snapTestVideo(t, 2, false)
	cases := []struct{ params, field string }{
		{`{"interval":1,"colour":"red"}`, "colour"},
		{`{"offsets":[1,5]}`, "offsets[1]"},
		{`{"offsets":[2]}`, "offsets[0]"},
		{`{"offsets":[-1]}`, "offsets[0]"},
		{`{"interval":1,"percent":10}`, "exactly one"},
		{`{}`, "exactly one"},
		{`{"interval":1,"format":"bmp"}`, "format"},
		{`{"interval":1,"width":5}`, "width"},
		{`{"interval":1,"height":99999}`, "height"},
		{`{"interval":1,"quality":101}`, "quality"},
		{`{"percent":150}`, "percent"},
		{`{"interval":-2}`, "interval"},
		{`{"offsets":[0,1],"max_count":1}`, "max_count"},
		{`{"interval":"often"}`, "interval"},
	}
	for _, c := range cases {
		env, _ := snapTestEnv(t)
		_, err := snapRun(t, env, in, c.params)
		snapTestBadInput(t, err, c.field)
	}
	env, _ := snapTestEnv(t)
	_, err := snapRun(t, env, snapTestAudio(t), `{"interval":1}`)
	snapTestBadInput(t, err, "no video stream")
}

func TestSnapshotCancel(t *testing.T) {
	snapTestCancel(t, Snapshot(), `{"interval":1}`)
	snapTestCancel(t, Snapshot(), `{"offsets":[1,2]}`)
}

func TestSnapshotPresets(t *testing.T) {
	in := snapTestVideo(t, 3, false)
	presets := SnapshotPresets()
	for _, name := range []string{"snapshot-sample-10s", "snapshot-cover"} {
		if _, ok := presets[name]; !ok {
			t.Fatalf("preset %s is missing", name)
		}
	}
	for name, raw := range presets {
		env, _ := snapTestEnv(t)
		outs, err := Snapshot().Run(context.Background(), env, in, raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(outs) == 0 {
			t.Fatalf("%s: no output", name)
		}
	}
}
