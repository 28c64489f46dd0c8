package transcoder

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"log/slog"
	"strings"
	"testing"

	"github.com/mps-dev/mps/test/testutil"
)

func testJPEG(t testing.TB, w, h int, seed byte) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{byte(x*7) + seed, byte(y * 13), seed * 3, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func splitAll(chunks [][]byte) [][]byte {
	var s jpegSplitter
	var out [][]byte
	for _, c := range chunks {
		out = append(out, s.Feed(c)...)
	}
	return out
}

func TestJPEGSplitter(t *testing.T) {
	a, b := testJPEG(t, 64, 48, 1), testJPEG(t, 33, 17, 200)
	// An APP segment whose payload holds FFD9 must not end the image.
	withApp := append([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9}, a[2:]...)
	stream := bytes.Join([][]byte{[]byte("garbage\xff"), a, []byte{0, 0xFF}, b, withApp, a[:100]}, nil)

	for _, chunk := range []int{1, 7, 188, 4096, len(stream)} {
		var chunks [][]byte
		for i := 0; i < len(stream); i += chunk {
			chunks = append(chunks, stream[i:min(i+chunk, len(stream))])
		}
		got := splitAll(chunks)
		if len(got) != 3 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) || !bytes.Equal(got[2], withApp) {
			t.Fatalf("chunk %d: got %d images", chunk, len(got))
		}
		for _, img := range got {
			if _, err := jpeg.Decode(bytes.NewReader(img)); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
	}
}

func TestJPEGSplitterLimit(t *testing.T) {
	a := testJPEG(t, 64, 48, 1)
	s := jpegSplitter{Max: 100}
	if got := s.Feed(append(append([]byte(nil), a...), a...)); len(got) != 0 {
		t.Errorf("%d images over the limit", len(got))
	}
	s.Max = 0
	if got := s.Feed(a); len(got) != 1 {
		t.Errorf("after an oversized image: %d images", len(got))
	}
}

// FuzzJPEGSplitter: whatever the child writes, the splitter does not panic,
// returns only SOI...EOI images, and gives the same images however the
// bytes are chunked.
func FuzzJPEGSplitter(f *testing.F) {
	a := testJPEG(f, 16, 16, 9)
	f.Add(a, 5)
	f.Add(append(append([]byte("x"), a...), a[:50]...), 1)
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0xFF, 0x00, 0xFF, 0xD0, 0xFF, 0xD9}, 3)
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x01, 0xFF, 0xD8, 0xFF, 0xD9}, 2)
	f.Fuzz(func(t *testing.T, b []byte, chunk int) {
		whole := splitAll([][]byte{b})
		if chunk <= 0 {
			chunk = 1
		}
		chunk = chunk%64 + 1
		var chunks [][]byte
		for i := 0; i < len(b); i += chunk {
			chunks = append(chunks, b[i:min(i+chunk, len(b))])
		}
		parts := splitAll(chunks)
		if len(whole) != len(parts) {
			t.Fatalf("%d images whole, %d chunked", len(whole), len(parts))
		}
		for i, img := range whole {
			if !bytes.Equal(img, parts[i]) {
				t.Fatalf("image %d differs when chunked", i)
			}
			if len(img) < 4 || !bytes.HasPrefix(img, []byte{0xFF, 0xD8}) || !bytes.HasSuffix(img, []byte{0xFF, 0xD9}) {
				t.Fatalf("not an SOI...EOI image: % x", img)
			}
		}
	})
}

func TestUnwrap(t *testing.T) {
	const wrap = int64(1) << 33
	u := unwrapper{prev: wrap - 100}
	for _, tc := range []struct{ raw, want int64 }{
		{wrap - 50, wrap - 50},
		{10, wrap + 10},        // wrapped forwards
		{wrap - 10, wrap - 10}, // a little back, across the wrap
		{100, wrap + 100},
		{3000, wrap + 3000},
	} {
		if got := u.unwrap(tc.raw); got != tc.want {
			t.Errorf("unwrap(%d) = %d, want %d", tc.raw, got, tc.want)
		}
	}
	u = unwrapper{prev: 5 * wrap}
	if got := u.unwrap(7); got != 5*wrap+7 {
		t.Errorf("far reference: %d", got)
	}
}

// The ladder's last_error names ffmpeg's last error line, not a warning
// that happened to come after it.
func TestLineLoggerRemembersErrors(t *testing.T) {
	var ll lineLogger
	logs := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ll.read(strings.NewReader("[info] starting\n[error] Error while decoding stream #0:0\n[swscaler @ 0x1] [warning] deprecated pixel format used\n"), log)
	if got := ll.lastLine(); got != "[error] Error while decoding stream #0:0" {
		t.Fatalf("last line %q", got)
	}
	if n := len(logs.Lines("level=WARN", "Error while decoding")); n != 1 {
		t.Fatalf("%d warn lines for the error:\n%s", n, logs)
	}
	if n := len(logs.Lines("level=DEBUG", "deprecated pixel format")); n != 1 {
		t.Fatalf("the warning was not logged at debug:\n%s", logs)
	}
}
