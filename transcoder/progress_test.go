package transcoder

import (
	"math"
	"strings"
	"testing"
	"time"
)

// realProgress is ffmpeg 5.1's -progress output for a two-output run.
const realProgress = `frame=42
fps=0.00
stream_0_0_q=23.0
stream_1_0_q=5.0
bitrate=N/A
total_size=44932
out_time_us=1380000
out_time_ms=1380000
out_time=00:00:01.380000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=180
fps=29.87
stream_0_0_q=-1.0
bitrate= 790.5kbits/s
total_size=390100
out_time_us=3948000
out_time_ms=3948000
out_time=00:00:03.948000
dup_frames=3
drop_frames=7
speed=0.994x
progress=end
`

func TestReadProgress(t *testing.T) {
	var got []Progress
	if err := ReadProgress(strings.NewReader(realProgress), func(p Progress) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d reports", len(got))
	}
	if p := got[0]; p.Frame != 42 || p.FPS != 0 || p.Speed != 0 || p.Updated.IsZero() {
		t.Errorf("first report %+v", p)
	}
	if p := got[1]; p.Frame != 180 || p.FPS != 29.87 || p.Speed != 0.994 || p.DupFrames != 3 || p.DropFrames != 7 {
		t.Errorf("second report %+v", p)
	}
}

func TestReadProgressJunk(t *testing.T) {
	in := "frame=-3\nfps=NaN\nspeed=Infx\ndrop_frames=1e9\n" + strings.Repeat("x", 10000) + "=1\nframe=5\nprogress=continue\nframe=6"
	var got []Progress
	if err := ReadProgress(strings.NewReader(in), func(p Progress) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Frame != 5 || got[0].FPS != 0 || got[0].Speed != 0 || got[0].DropFrames != 0 {
		t.Errorf("got %+v", got)
	}
}

// FuzzProgress feeds arbitrary child output to the parser: it must not
// panic, and what it reports is never negative or infinite.
func FuzzProgress(f *testing.F) {
	f.Add([]byte(realProgress))
	f.Add([]byte("progress=end"))
	f.Add([]byte("fps=1e308\nspeed=-1x\nframe=99999999999999999999\nprogress=continue\n"))
	f.Add([]byte("=\n==\nspeed=\x00x\r\nprogress=\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = ReadProgress(strings.NewReader(string(b)), func(p Progress) {
			for _, v := range []float64{p.FPS, p.Speed} {
				if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("bad value in %+v", p)
				}
			}
			if p.Frame < 0 || p.DropFrames < 0 || p.DupFrames < 0 {
				t.Fatalf("negative count in %+v", p)
			}
		})
	})
}

// The speed is the media time produced over the wall time between reports,
// not ffmpeg's average since the start, which stays under 1x for minutes
// when a live child waited for its input.
func TestMeasureSpeed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	prev := Progress{Updated: t0, outTime: 10 * time.Second, Speed: 0.4}
	cur := Progress{Updated: t0.Add(2 * time.Second), outTime: 12 * time.Second, Speed: 0.41}
	measureSpeed(&prev, &cur)
	want := 0.4 + speedSmoothing*(1.0-0.4)
	if math.Abs(cur.Speed-want) > 1e-9 {
		t.Fatalf("speed %v, want %v", cur.Speed, want)
	}
	// Steady real-time output converges on 1x.
	for i := 0; i < 30; i++ {
		next := Progress{Updated: cur.Updated.Add(time.Second), outTime: cur.outTime + time.Second, Speed: 0.5}
		measureSpeed(&cur, &next)
		cur = next
	}
	if math.Abs(cur.Speed-1) > 0.01 {
		t.Fatalf("speed after 30 s of real-time output: %v", cur.Speed)
	}
	// Without a usable previous report, ffmpeg's own figure stays.
	first := Progress{Updated: t0, outTime: time.Second, Speed: 0.7}
	measureSpeed(&Progress{}, &first)
	if first.Speed != 0.7 {
		t.Fatalf("first report speed %v", first.Speed)
	}
}
