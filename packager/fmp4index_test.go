package packager

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// ffmpegFMP4 encodes 3 s of 25 fps video (a keyframe every second) and
// AAC audio into a fragmented MP4 as ffmpeg writes one, with extra movflags.
func ffmpegFMP4(t testing.TB, movflags string) string {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(t.TempDir(), "frag.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "25", "-c:a", "aac", "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov"+movflags, path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return path
}

func readFMP4File(t *testing.T, path string) (*FMP4Index, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := ReadFMP4(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("ReadFMP4: %v", err)
	}
	return ix, b
}

// TestReadFMP4OfFFmpegOutput reads what ffmpeg writes, with and without
// default-base-is-moof, and checks every sample against ffprobe's packets:
// decode time, size, position and keyframe flag. (ffprobe's packet
// duration is not the container's: ffmpeg stretches the first video
// sample by the audio's priming, and ffprobe shows the frame rate's.)
func TestReadFMP4OfFFmpegOutput(t *testing.T) {
	for _, flags := range []string{"", "+default_base_moof"} {
		path := ffmpegFMP4(t, flags)
		ix, b := readFMP4File(t, path)
		if len(ix.Tracks) != 2 || !ix.Tracks[0].IsVideo() || ix.Tracks[1].IsVideo() || ix.Timescales[1] != 48000 {
			t.Fatalf("%s: tracks %v, timescales %v", flags, ix.Tracks, ix.Timescales)
		}
		if ix.ValidSize <= 0 || ix.ValidSize > int64(len(b)) || ix.Fragments < 3 {
			t.Errorf("%s: valid %d of %d, %d fragments", flags, ix.ValidSize, len(b), ix.Fragments)
		}
		if d := ix.Duration(); d < 3*time.Second || d > 3*time.Second+50*time.Millisecond {
			t.Errorf("%s: duration %s", flags, d)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,dts,size,pos,flags",
			"-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatal(err)
		}
		next := make([]int, 2)
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Split(line, ",")
			// stream_index,dts,size,pos,flags
			track, _ := strconv.Atoi(f[0])
			if next[track] >= len(ix.Samples[track]) {
				t.Fatalf("%s: ffprobe has more samples of track %d than %d", flags, track, len(ix.Samples[track]))
			}
			s := ix.Samples[track][next[track]]
			next[track]++
			dts, _ := strconv.ParseInt(f[1], 10, 64)
			size, _ := strconv.ParseInt(f[2], 10, 64)
			pos, _ := strconv.ParseInt(f[3], 10, 64)
			key := strings.HasPrefix(f[4], "K")
			if s.DTS != dts || int64(s.Size) != size || s.Offset != pos || s.Key != key {
				t.Fatalf("%s: track %d sample %d is %+v, ffprobe says %s", flags, track, next[track]-1, s, line)
			}
		}
		for track, n := range next {
			if n != len(ix.Samples[track]) {
				t.Errorf("%s: track %d: %d samples, ffprobe %d", flags, track, len(ix.Samples[track]), n)
			}
		}
	}
}

// TestReadFMP4CutAndBroken: a file cut inside its last fragment reads up
// to the fragments before it; a file with no header, or no MP4 at all, is
// ErrNoFMP4Header.
func TestReadFMP4CutAndBroken(t *testing.T) {
	_, b := readFMP4File(t, ffmpegFMP4(t, ""))
	full, _ := ReadFMP4(bytes.NewReader(b), int64(len(b)))
	cut, err := ReadFMP4(bytes.NewReader(b), full.ValidSize-10)
	if err != nil {
		t.Fatal(err)
	}
	if cut.Fragments != full.Fragments-1 || cut.ValidSize >= full.ValidSize || len(cut.Samples[0]) >= len(full.Samples[0]) {
		t.Errorf("cut: %d fragments, valid %d, %d samples; full: %d, %d, %d", cut.Fragments, cut.ValidSize, len(cut.Samples[0]),
			full.Fragments, full.ValidSize, len(full.Samples[0]))
	}
	for _, s := range cut.Samples[0] {
		if s.Offset+int64(s.Size) > cut.ValidSize {
			t.Fatalf("sample at %d+%d beyond the valid %d bytes", s.Offset, s.Size, cut.ValidSize)
		}
	}
	moof := bytes.Index(b, []byte("moof")) - 4
	for name, data := range map[string][]byte{"fragments only": b[moof:], "text": []byte("hello, this is no video at all")} {
		if _, err := ReadFMP4(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrNoFMP4Header) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzReadFMP4(f *testing.F) {
	// A small seed: the fuzzer slows to a crawl on inputs of 100 KB.
	testutil.RequireTools(f, "ffmpeg")
	path := filepath.Join(f.TempDir(), "tiny.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=32x32:rate=5",
		"-f", "lavfi", "-i", "sine=sample_rate=8000", "-t", "1", "-c:v", "libx264", "-preset", "ultrafast",
		"-g", "3", "-c:a", "aac", "-b:a", "8k", "-f", "mp4", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", path).CombinedOutput()
	if err != nil {
		f.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(b[:100])
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f'})
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ReadFMP4(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if ix.ValidSize > int64(len(data)) || len(ix.Samples) != len(ix.Tracks) || len(ix.Timescales) != len(ix.Tracks) {
			t.Fatalf("valid size %d of %d bytes, %d tracks, %d sample tables", ix.ValidSize, len(data), len(ix.Tracks), len(ix.Samples))
		}
		for _, ss := range ix.Samples {
			for _, s := range ss {
				if s.Offset < 0 || s.Offset+int64(s.Size) > ix.ValidSize {
					t.Fatalf("sample at %d+%d outside the valid %d bytes", s.Offset, s.Size, ix.ValidSize)
				}
			}
		}
	})
}
