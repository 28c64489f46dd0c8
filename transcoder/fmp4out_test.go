package transcoder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

func mkBox(typ string, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(b, uint32(8+len(payload)))
	copy(b[4:], typ)
	return append(b, payload...)
}

func TestBoxReader(t *testing.T) {
	a, b := mkBox("ftyp", []byte("isom0000")), mkBox("free", nil)
	large := []byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 19, 'x', 'y', 'z'}
	br := &boxReader{r: bytes.NewReader(bytes.Join([][]byte{a, b, large}, nil))}
	for _, want := range [][]byte{a, b, large} {
		typ, box, err := br.next()
		if err != nil || !bytes.Equal(box, want) || typ != string(want[4:8]) {
			t.Fatalf("got %q % x, %v; want % x", typ, box, err, want)
		}
	}
	if _, _, err := br.next(); !errors.Is(err, io.EOF) {
		t.Errorf("at the end: %v", err)
	}

	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"too large":   {[]byte{0x04, 0, 0, 1, 'm', 'd', 'a', 't'}, "too large"},
		"too large64": {[]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0xff, 0, 0, 0, 0, 0, 0, 0}, "too large"},
		"to the end":  {[]byte{0, 0, 0, 0, 'm', 'd', 'a', 't'}, "end of the stream"},
		"short":       {[]byte{0, 0, 0, 7, 'm', 'd', 'a', 't'}, "invalid size"},
		"short64":     {[]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 15}, "invalid size"},
		"truncated":   {[]byte{0, 0, 0, 12, 'm', 'd', 'a', 't', 1}, "unexpected EOF"},
		"torn header": {[]byte{0, 0, 0}, "unexpected EOF"},
	} {
		_, _, err := (&boxReader{r: bytes.NewReader(tc.in)}).next()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// 64 MiB + 1 is refused before anything is allocated or read.
	big := []byte{0x04, 0, 0, 1, 'm', 'o', 'o', 'f'}
	if _, _, err := (&boxReader{r: bytes.NewReader(big)}).next(); !errors.Is(err, errBoxTooLarge) {
		t.Errorf("64 MiB + 1: %v", err)
	}
}

func TestFirstOutTicks(t *testing.T) {
	r := &plannedRung{}
	if got := firstOutTicks(r, 901234); got != 901234 {
		t.Errorf("passthrough: %d", got)
	}
	r.Video.FPS = 15
	// 10.0137 s on a 1/15 grid is 10.0 s.
	if got := firstOutTicks(r, 901234); got != 900000 {
		t.Errorf("fps 15: %d", got)
	}
}

type fmp4Sample struct {
	vc       codecs.Codec
	dts, pts time.Duration
	key      bool
	size     int
}

// encodeFMP4 runs ffmpeg as a ladder would for an AV1 or VP9 rung: 3 s of
// 160x90 video, keyframes forced every second, fMP4 on stdout.
func encodeFMP4(t *testing.T, codec string) []byte {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	r := &plannedRung{Rung: Rung{Name: codec, Video: Video{Codec: codec}}, gop: time.Second}
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-t", "3"}
	args = append(args, videoArgs(r, 0)...)
	args = append(args, "-f", "mp4", "-movflags", "+frag_every_frame+empty_moov+default_base_moof", "pipe:1")
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestFMP4Demux reads real ffmpeg fMP4 output: the codec parameters, the
// keyframes, and timestamps put on the source timeline by the offset.
func TestFMP4Demux(t *testing.T) {
	for _, codec := range []string{CodecAV1, CodecVP9} {
		t.Run(codec, func(t *testing.T) {
			out := encodeFMP4(t, codec)
			start := 5 * time.Second
			var got []fmp4Sample
			d := &fmp4Demux{name: "test", offset: toTicks(start),
				onVideo: func(vc codecs.Codec, dts, pts time.Duration, key bool, p []byte) {
					got = append(got, fmp4Sample{vc, dts, pts, key, len(p)})
				}}
			// Read in small pieces, as from a pipe.
			if err := d.run(&chunkReader{b: out, n: 1000}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 90 {
				t.Fatalf("%d samples, want 90", len(got))
			}
			tr := &stream.Track{Codec: got[len(got)-1].vc}
			switch c := tr.Codec.(type) {
			case *codecs.AV1:
				if len(c.SequenceHeader) == 0 {
					t.Error("AV1 without a sequence header")
				}
			case *codecs.VP9:
			default:
				t.Fatalf("codec %T", tr.Codec)
			}
			if w, h := tr.Resolution(); w != 160 || h != 90 {
				t.Errorf("resolution %dx%d", w, h)
			}
			var keys []time.Duration
			for i, s := range got {
				want := start + time.Duration(i)*time.Second/30
				if s.dts != want || s.pts != s.dts {
					t.Fatalf("sample %d: DTS %v PTS %v, want %v", i, s.dts, s.pts, want)
				}
				if s.key {
					keys = append(keys, s.dts)
				}
			}
			if want := []time.Duration{5 * time.Second, 6 * time.Second, 7 * time.Second}; !equalDurations(keys, want) {
				t.Errorf("keyframes at %v, want %v", keys, want)
			}
		})
	}
}

// chunkReader returns at most n bytes per Read, as a pipe may.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzFMP4Demux: whatever the child writes, the fMP4 reader does not
// panic, allocates no box beyond its bound, and either ends or reports an
// error.
func FuzzFMP4Demux(f *testing.F) {
	ftyp := mkBox("ftyp", []byte("isom\x00\x00\x02\x00isomiso6mp41"))
	f.Add(ftyp)
	f.Add(append(append([]byte(nil), ftyp...), mkBox("moov", mkBox("mvhd", make([]byte, 100)))...))
	f.Add(append(mkBox("moof", mkBox("mfhd", make([]byte, 8))), mkBox("mdat", []byte{1, 2, 3})...))
	f.Add([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 17, 9})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 'm', 'o', 'o', 'f'})
	f.Add([]byte{0, 0, 0, 0, 'f', 't', 'y', 'p'})
	// Real output of the child, whole and cut short.
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		for _, codec := range []string{CodecAV1, CodecVP9} {
			r := &plannedRung{Rung: Rung{Video: Video{Codec: codec}}, gop: time.Second}
			args := append([]string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10", "-t", "0.5"}, videoArgs(r, 0)...)
			args = append(args, "-f", "mp4", "-movflags", "+frag_every_frame+empty_moov+default_base_moof", "pipe:1")
			if out, err := exec.Command("ffmpeg", args...).Output(); err == nil && len(out) > 0 {
				f.Add(out)
				f.Add(out[:len(out)*2/3])
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &fmp4Demux{name: "fuzz", offset: toTicks(0),
			onVideo: func(vc codecs.Codec, dts, pts time.Duration, key bool, p []byte) {
				if vc == nil {
					t.Fatal("a sample without a codec")
				}
			}}
		br := &boxReader{r: bytes.NewReader(b), max: 1 << 16}
		for {
			typ, box, err := br.next()
			if err != nil {
				return
			}
			if len(box) > 1<<16 || len(box) < 8 || typ != string(box[4:8]) {
				t.Fatalf("box %q of %d bytes", typ, len(box))
			}
			if d.onBox(typ, box) != nil {
				return
			}
		}
	})
}

// TestLadderAV1VP9 runs a ladder with an H.264, an AV1 and a VP9 rung: the
// AV1 and VP9 rungs come back over fMP4 with the right codec and size,
// video only, on the source's timeline, with keyframes at the same DTS as
// the H.264 rung's.
func TestLadderAV1VP9(t *testing.T) {
	med := testMediaFor(t)
	env := newTestEnv(t, 5*time.Second, nil)
	startSource(t, env.hub, "live/f", med)
	tpl := &Template{Name: "fmp4", Rungs: []Rung{
		{Name: "h264", Video: Video{Codec: CodecH264, Height: 90, Bitrate: 100_000, Preset: "ultrafast", GOP: time.Second},
			Audio: Audio{Codec: CodecAAC, Bitrate: 32_000}},
		{Name: "av1", Video: Video{Codec: CodecAV1, Height: 90, Bitrate: 100_000, Preset: "12", GOP: time.Second},
			Audio: Audio{Codec: CodecAAC, Bitrate: 32_000}},
		{Name: "vp9", Video: Video{Codec: CodecVP9, Height: 90, Bitrate: 100_000, Preset: "8", GOP: time.Second, FPS: 15}},
	}}
	// Start late, so that the child starts on a keyframe well after 0.
	time.Sleep(1500 * time.Millisecond)
	if err := env.m.Start("live/f", tpl); err != nil {
		t.Fatal(err)
	}
	ch := collect(t, env.hub, "live/f/h264")
	ca := collect(t, env.hub, "live/f/av1")
	cv := collect(t, env.hub, "live/f/vp9")
	all := []*rungCollector{ch, ca, cv}
	waitFor(t, "keyframes on every rung", func() bool {
		for _, c := range all {
			if _, k, _, _ := c.snapshot(); len(k) < 4 {
				return false
			}
		}
		return true
	})
	// For the record: how far the AV1 and VP9 rungs run behind H.264.
	t.Logf("behind the h264 rung: av1 %v, vp9 %v", ch.lastDTS()-ca.lastDTS(), ch.lastDTS()-cv.lastDTS())

	// Kill the child: the next one starts on a later keyframe, and its
	// rungs continue on the same timeline.
	info, _ := env.m.Info("live/f")
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := ca.lastDTS()
	waitFor(t, "rung frames after the restart", func() bool {
		for _, c := range all {
			if c.lastDTS() < killedAt+3*time.Second {
				return false
			}
		}
		return true
	})
	if i, _ := env.m.Info("live/f"); i.Restarts < 1 || i.State != StateRunning {
		t.Errorf("after the kill: %+v", i)
	}
	want := []string{"live/f/h264", "live/f/av1", "live/f/vp9"}
	if v := env.m.Variants("live/f"); !equalStrings(v, want) {
		t.Errorf("Variants = %v, want %v", v, want)
	}
	for i, c := range all {
		tracks, keys, dts, audio := c.snapshot()
		name := want[i]
		switch i {
		case 0:
			if len(tracks) != 2 || audio == 0 {
				t.Errorf("%s: %d tracks, %d audio units", name, len(tracks), audio)
			}
		case 1:
			if _, ok := tracks[0].Codec.(*codecs.AV1); !ok || len(tracks) != 1 || audio != 0 {
				t.Errorf("%s: %d tracks, video %T, %d audio units", name, len(tracks), tracks[0].Codec, audio)
			}
		case 2:
			if _, ok := tracks[0].Codec.(*codecs.VP9); !ok || len(tracks) != 1 || audio != 0 {
				t.Errorf("%s: %d tracks, video %T, %d audio units", name, len(tracks), tracks[0].Codec, audio)
			}
		}
		if w, h := tracks[0].Resolution(); w != 160 || h != 90 {
			t.Errorf("%s: %dx%d, want 160x90", name, w, h)
		}
		for j, d := range dts {
			if k := int(d * 30 / time.Second); med.videoDTS(k) != d && med.videoDTS(k+1) != d {
				t.Fatalf("%s: DTS %v is not a source frame's", name, d)
			}
			if j > 0 && d <= dts[j-1] {
				t.Fatalf("%s: DTS went from %v to %v", name, dts[j-1], d)
			}
			if d > time.Minute {
				t.Fatalf("%s: DTS %v is not in the source's timeline", name, d)
			}
		}
		for _, k := range keys {
			if k%time.Second != 0 {
				t.Errorf("%s: keyframe at %v, not on the 1 s GOP grid", name, k)
			}
		}
	}
	// The same keyframes where all rungs were read.
	var lo, hi time.Duration = 0, time.Duration(1<<63 - 1)
	ks := make([][]time.Duration, len(all))
	for i, c := range all {
		_, ks[i], _, _ = c.snapshot()
		lo, hi = max(lo, ks[i][0]), min(hi, ks[i][len(ks[i])-1])
	}
	var ref []time.Duration
	for i, k := range ks {
		var in []time.Duration
		for _, d := range k {
			if d >= lo && d <= hi {
				in = append(in, d)
			}
		}
		if i == 0 {
			ref = in
			if len(ref) < 2 {
				t.Errorf("only %v in common", ref)
			}
		} else if !equalDurations(in, ref) {
			t.Errorf("%s keyframes %v, h264 %v", want[i], in, ref)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFMP4Args: AV1 and VP9 rungs are accepted, carry no audio, and go to
// their pipe as fragmented MP4; the others keep MPEG-TS.
func TestFMP4Args(t *testing.T) {
	s := testSession(t, &codecs.H264{SPS: spsH264, PPS: ppsH264}, true)
	tpl := &Template{Name: "t", Rungs: []Rung{
		{Name: "h264", Video: Video{Height: 180}},
		{Name: "av1", Video: Video{Codec: CodecAV1, Height: 180, Bitrate: 300_000}, Audio: Audio{Codec: CodecAAC}},
		{Name: "vp9", Video: Video{Codec: CodecVP9, Height: 180, Bitrate: 300_000, FPS: 15}, Audio: Audio{Codec: AudioCopy}},
	}}
	p, err := makePlan("live/a", s, tpl, planOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rungs := p.transcoded()
	if len(rungs) != 3 || rungs[0].audio != CodecAAC || rungs[1].audio != AudioNone || rungs[2].audio != AudioNone {
		t.Fatalf("rungs %+v", rungs)
	}
	if rungs[0].fmp4() || !rungs[1].fmp4() || !rungs[2].fmp4() {
		t.Error("fmp4()")
	}
	args := strings.Join(buildArgs(p, 3*time.Second), " ")
	for _, want := range []string{
		"-f mpegts -muxdelay 0 -muxpreload 0 -flush_packets 1 -max_muxing_queue_size 4096 pipe:3",
		"-c:v libsvtav1 -preset 12 -svtav1-params enable-force-key-frames=1:lookahead=0:hierarchical-levels=2:mbr=330 -g 250",
		"-f mp4 -movflags +frag_every_frame+empty_moov+default_base_moof -flush_packets 1 -max_muxing_queue_size 4096 pipe:4",
		"-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -lag-in-frames 0",
		"-b:v 300k -maxrate 330k -bufsize 600k -f mp4 -movflags +frag_every_frame+empty_moov+default_base_moof -flush_packets 1 -max_muxing_queue_size 4096 pipe:5",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q:\n%s", want, args)
		}
	}
	if n := strings.Count(args, "-map 0:a:0"); n != 1 {
		t.Errorf("%d audio maps, want 1 (the h264 rung's):\n%s", n, args)
	}
	av1 := args[strings.Index(args, "pipe:3"):strings.Index(args, "pipe:4")]
	if strings.Contains(av1, "-b:v") {
		t.Errorf("the AV1 rung got -b:v: SVT-AV1 refuses forced keyframes outside CRF mode:\n%s", av1)
	}
}
