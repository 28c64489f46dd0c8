package transcoder

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mps-dev/mps/test/testutil"
)

// The watermark tests draw on one frame of testsrc2 and compare raw RGB
// output with and without the watermark: no lossy encode is involved, so
// pixels the watermark does not cover come out identical.
const wmWidth, wmHeight = 640, 360

// wmFrame is one rgb24 picture.
type wmFrame struct {
	w, h int
	pix  []byte
}

func (f wmFrame) at(x, y int) [3]int {
	i := (y*f.w + x) * 3
	return [3]int{int(f.pix[i]), int(f.pix[i+1]), int(f.pix[i+2])}
}

// wmRect is a half-open pixel rectangle.
type wmRect struct{ x0, y0, x1, y1 int }

func (r wmRect) grow(n int) wmRect { return wmRect{r.x0 - n, r.y0 - n, r.x1 + n, r.y1 + n} }

// wmRender runs ffmpeg on testsrc2 (yuv420p, as a decoder would give it)
// through the fragment w.filter makes and returns frame number `frame`
// (from 0). A nil w renders the frame untouched.
func wmRender(t *testing.T, w *Watermark, frame int) wmFrame {
	t.Helper()
	graph := "[in]null[out]"
	var inputs []string
	if w != nil {
		graph = w.Filter("in", "out", 1)
		inputs = w.InputArgs()
	}
	return wmRun(t, inputs, "[0:v]format=yuv420p[in];"+graph, frame, wmWidth, wmHeight)
}

// wmRun runs graph on testsrc2 and returns frame number frame of its
// output [out], which is outW×outH.
func wmRun(t *testing.T, inputs []string, graph string, frame, outW, outH int) wmFrame {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=10", wmWidth, wmHeight)}
	args = append(args, inputs...)
	args = append(args, "-filter_complex", graph, "-map", "[out]", "-frames:v", fmt.Sprint(frame+1),
		"-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	var stderr bytes.Buffer
	cmd := exec.Command("ffmpeg", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg %q: %v: %s", graph, err, stderr.Bytes())
	}
	size := outW * outH * 3
	if len(out) != size*(frame+1) {
		t.Fatalf("ffmpeg gave %d bytes, want %d frames of %d", len(out), frame+1, size)
	}
	return wmFrame{w: outW, h: outH, pix: out[size*frame:]}
}

// wmLogo makes a w×h PNG at test time: opaque white, or with its right
// half fully transparent.
func wmLogo(t *testing.T, w, h int, halfTransparent bool) string {
	t.Helper()
	testutil.RequireTools(t, "ffmpeg")
	path := filepath.Join(t.TempDir(), "logo.png")
	src := fmt.Sprintf("color=c=white:s=%dx%d,format=rgba", w, h)
	if halfTransparent {
		src = fmt.Sprintf("color=c=white:s=%dx%d,format=rgba[a];color=c=white@0:s=%dx%d,format=rgba[b];[a][b]hstack",
			w/2, h, w/2, h)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
		"-f", "lavfi", "-i", src, "-frames:v", "1", "-y", path).CombinedOutput()
	if err != nil {
		t.Fatalf("make logo: %v: %s", err, out)
	}
	return path
}

func absDiff(a, b int) int {
	if a > b {
		return a - b
	}
	return b - a
}

// wmChanged returns the bounding box of the pixels that differ between a
// and b, and how many there are.
func wmChanged(a, b wmFrame) (box wmRect, n int) {
	box = wmRect{a.w, a.h, -1, -1}
	for y := range a.h {
		for x := range a.w {
			if a.at(x, y) == b.at(x, y) {
				continue
			}
			n++
			box.x0, box.y0 = min(box.x0, x), min(box.y0, y)
			box.x1, box.y1 = max(box.x1, x+1), max(box.y1, y+1)
		}
	}
	return box, n
}

// wmExpected places a box of size bw×bh like the watermark's x/y
// expressions do, with the default margins.
func wmExpected(pos string, bw, bh float64) (x, y float64) {
	m := DefaultWatermarkMargin * wmWidth
	x, y = wmWidth-bw-m, m
	if strings.HasPrefix(pos, "bottom") {
		y = wmHeight - bh - m
	}
	if strings.HasSuffix(pos, "left") {
		x = m
	}
	if pos == "center" {
		x, y = (wmWidth-bw)/2, (wmHeight-bh)/2
	}
	return x, y
}

func TestWatermarkImagePositions(t *testing.T) {
	logo := wmLogo(t, 64, 32, false)
	base := wmRender(t, nil, 0)
	// Scale 0.15 of 640 gives a 96×48 logo. overlay truncates x and y to
	// even numbers for 4:2:0 video.
	for _, pos := range []string{"top-left", "top-right", "bottom-left", "bottom-right", "center"} {
		t.Run(pos, func(t *testing.T) {
			got := wmRender(t, &Watermark{Image: logo, Position: pos}, 0)
			fx, fy := wmExpected(pos, 96, 48)
			x, y := int(fx)&^1, int(fy)&^1
			want := wmRect{x, y, x + 96, y + 48}
			box, n := wmChanged(base, got)
			if box.grow(2).x0 > want.x0 || box.grow(2).y0 > want.y0 || box.x1 > want.x1 || box.y1 > want.y1 ||
				want.grow(-2).x0 < box.x0 || want.grow(-2).y0 < box.y0 || want.grow(-2).x1 > box.x1 || want.grow(-2).y1 > box.y1 {
				t.Errorf("changed pixels in %+v (%d), want the logo at %+v", box, n, want)
			}
			// Inside, the logo is drawn opaque: white, whatever was there.
			inner := want.grow(-2)
			for yy := inner.y0; yy < inner.y1; yy++ {
				for xx := inner.x0; xx < inner.x1; xx++ {
					if c := got.at(xx, yy); c[0] < 245 || c[1] < 245 || c[2] < 245 {
						t.Fatalf("pixel %d,%d is %v, want white", xx, yy, c)
					}
				}
			}
		})
	}
}

// TestWatermarkImageLive checks that the single-frame image input keeps
// being drawn on later frames of an endless input.
func TestWatermarkImageLive(t *testing.T) {
	logo := wmLogo(t, 64, 32, false)
	const frame = 25
	base := wmRender(t, nil, frame)
	got := wmRender(t, &Watermark{Image: logo, Scale: 0.1}, frame)
	// 64 px wide, top-right.
	if c := got.at(wmWidth-13-32, 13+10); c != [3]int{255, 255, 255} && c[0] < 245 {
		t.Errorf("frame %d: logo pixel is %v, want white", frame, c)
	}
	box, _ := wmChanged(base, got)
	if box.x1-box.x0 != 64 || box.y1-box.y0 != 32 {
		t.Errorf("frame %d: changed pixels in %+v, want a 64×32 logo", frame, box)
	}
}

func TestWatermarkImageAlphaAndOpacity(t *testing.T) {
	base := wmRender(t, nil, 0)

	// The PNG's own alpha is kept: its transparent right half leaves the
	// video as it was.
	half := wmLogo(t, 64, 32, true)
	got := wmRender(t, &Watermark{Image: half, Position: "top-left"}, 0)
	box, _ := wmChanged(base, got)
	m := 12 // 0.02 × 640, truncated to even
	// The opaque half is 48 px wide once scaled; scaling blurs its edge
	// by a pixel or two.
	if box.x0 != m || box.y0 != m || box.y1 != m+48 || box.x1 < m+48 || box.x1 > m+51 {
		t.Errorf("half-transparent logo changed %+v, want %d,%d to %d,%d", box, m, m, m+48, m+48)
	}

	// Opacity 0.5 blends: every covered pixel is halfway between the video
	// and the opaque logo.
	logo := wmLogo(t, 64, 32, false)
	full := wmRender(t, &Watermark{Image: logo}, 0)
	blend := wmRender(t, &Watermark{Image: logo, Opacity: 0.5}, 0)
	fx, fy := wmExpected("top-right", 96, 48)
	x, y := int(fx)&^1, int(fy)&^1
	inner := wmRect{x, y, x + 96, y + 48}.grow(-2)
	checked := 0
	for yy := inner.y0; yy < inner.y1; yy++ {
		for xx := inner.x0; xx < inner.x1; xx++ {
			o, f, b := base.at(xx, yy), full.at(xx, yy), blend.at(xx, yy)
			far := false
			for c := range 3 {
				if absDiff(o[c], f[c]) > 60 {
					far = true
				}
			}
			if !far {
				continue
			}
			checked++
			for c := range 3 {
				if mid := (o[c] + f[c]) / 2; absDiff(b[c], mid) > 16 {
					t.Fatalf("pixel %d,%d: video %v, logo %v, opacity 0.5 gives %v, want about halfway", xx, yy, o, f, b)
				}
			}
		}
	}
	if checked < 1000 {
		t.Errorf("only %d pixels where the logo differs from the video", checked)
	}
	if box, _ := wmChanged(full, blend); box.x0 < inner.x0-2 || box.y0 < inner.y0-2 || box.x1 > inner.x1+2 || box.y1 > inner.y1+2 {
		t.Errorf("opacity changed pixels outside the logo: %+v", box)
	}
}

func TestWatermarkTextPositions(t *testing.T) {
	base := wmRender(t, nil, 0)
	for _, pos := range []string{"top-left", "top-right", "bottom-left", "bottom-right", "center"} {
		t.Run(pos, func(t *testing.T) {
			got := wmRender(t, &Watermark{Text: "MPS", Position: pos}, 0)
			box, n := wmChanged(base, got)
			bw, bh := float64(box.x1-box.x0), float64(box.y1-box.y0)
			// Font size 0.04 × 640 = 25.6 px: "MPS" is about 50×20 px.
			if n < 100 || bw < 35 || bw > 80 || bh < 14 || bh > 32 {
				t.Fatalf("changed %d pixels in %+v, want the text MPS at about 25 px", n, box)
			}
			// The text's box sits at the margins (the 1 px border and
			// glyph side bearings allow a few pixels either way).
			fx, fy := wmExpected(pos, bw, bh)
			if absDiff(box.x0, int(fx)) > 4 || absDiff(box.y0, int(fy)) > 4 {
				t.Errorf("text at %d,%d, want about %.1f,%.1f", box.x0, box.y0, fx, fy)
			}
		})
	}
}

func TestWatermarkTextOpacity(t *testing.T) {
	base := wmRender(t, nil, 0)
	full := wmRender(t, &Watermark{Text: "MPS", Scale: 0.1, Position: "center"}, 0)
	blend := wmRender(t, &Watermark{Text: "MPS", Scale: 0.1, Position: "center", Opacity: 0.5}, 0)
	checked := 0
	for y := range wmHeight {
		for x := range wmWidth {
			// Glyph interiors: white at full opacity with white around
			// (away from the border), over a dark enough pixel.
			o, b := base.at(x, y), blend.at(x, y)
			if min(o[0], o[1], o[2]) > 150 || !wmWhiteAround(full, x, y, 2) {
				continue
			}
			f := full.at(x, y)
			checked++
			for c := range 3 {
				if mid := (o[c] + f[c]) / 2; absDiff(b[c], mid) > 20 {
					t.Fatalf("pixel %d,%d: video %v, text %v, opacity 0.5 gives %v, want about halfway", x, y, o, f, b)
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d glyph pixels checked", checked)
	}
}

// wmWhiteAround reports whether every pixel within r of x,y is white.
func wmWhiteAround(f wmFrame, x, y, r int) bool {
	for yy := y - r; yy <= y+r; yy++ {
		for xx := x - r; xx <= x+r; xx++ {
			if xx < 0 || yy < 0 || xx >= f.w || yy >= f.h {
				return false
			}
			if c := f.at(xx, yy); min(c[0], c[1], c[2]) < 250 {
				return false
			}
		}
	}
	return true
}

// wmTrickyTexts need every level of escaping.
var wmTrickyTexts = []string{
	"a:b", "it's", `back\slash`, `100% %{pts} %%{n}`, "a,b;c[d]e", `'quoted' "double"`,
	`\'`, `'\\''`, `\`, `''`, ":::", "[out]", "x=1:y=2", "=", "  spaces  ", "ünïcödé ✓ 日本",
	`\n`, "tab\there", "line1\nline2", `\\:\\'\\,`, "end\\", "%{localtime}", "{}", "$HOME`id`",
	"\u2028\u00a0\u200b\ufeff\U0001F600e\u0301", "a\u0085b", "\x00nul\x01\r\x7f",
}

// TestWatermarkTextEscaping draws every tricky text twice in one ffmpeg
// run: through text= as w.filter writes it, and through textfile= from a
// file holding the same bytes, which drawtext reads literally. The two
// must give identical pixels.
func TestWatermarkTextEscaping(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	dir := t.TempDir()
	n := len(wmTrickyTexts)
	var viaText, viaFile []string
	split := func(prefix string) string {
		s := fmt.Sprintf("[0:v]format=yuv420p,scale=320:48,split=%d", n)
		for i := range n {
			s += fmt.Sprintf("[%s%d]", prefix, i)
		}
		return s
	}
	viaText = append(viaText, split("t"))
	viaFile = append(viaFile, split("f"))
	for i, text := range wmTrickyTexts {
		w := &Watermark{Text: text, Position: "top-left", Scale: 0.1}
		viaText = append(viaText, w.Filter(fmt.Sprint("t", i), fmt.Sprint("to", i), 1))

		file := filepath.Join(dir, fmt.Sprintf("text%d.txt", i))
		if err := os.WriteFile(file, []byte(sanitizeText(text)), 0o644); err != nil {
			t.Fatal(err)
		}
		pos, mx, my, opacity, scale := w.settings()
		args := w.drawtextArgs(pos, mx, my, opacity, scale)
		textOpt := ":text=" + quoteFilterOption(sanitizeText(text))
		if !strings.Contains(args, textOpt) {
			t.Fatalf("drawtext args %q lack %q", args, textOpt)
		}
		args = strings.Replace(args, textOpt, ":textfile="+quoteFilterOption(file), 1)
		viaFile = append(viaFile, fmt.Sprintf("[f%d]drawtext=%s[fo%d]", i, escapeFilterArgs(args), i))
	}
	stack := func(prefix string) string {
		s := ""
		for i := range n {
			s += fmt.Sprintf("[%s%d]", prefix, i)
		}
		return s + fmt.Sprintf("vstack=inputs=%d[out]", n)
	}
	viaText = append(viaText, stack("to"))
	viaFile = append(viaFile, stack("fo"))

	a := wmRun(t, nil, strings.Join(viaText, ";"), 0, 320, 48*n)
	b := wmRun(t, nil, strings.Join(viaFile, ";"), 0, 320, 48*n)
	plain := wmRun(t, nil, split("p")+";"+stack("p"), 0, 320, 48*n)
	row := 320 * 48 * 3 // one text
	for i, text := range wmTrickyTexts {
		ta, tb, tp := a.pix[i*row:(i+1)*row], b.pix[i*row:(i+1)*row], plain.pix[i*row:(i+1)*row]
		if !bytes.Equal(ta, tb) {
			t.Errorf("text %q: text= and textfile= draw differently", text)
		}
		if strings.TrimSpace(text) != "" && bytes.Equal(ta, tp) {
			t.Errorf("text %q: nothing drawn", text)
		}
	}
}

func TestWatermarkNoneAndInputs(t *testing.T) {
	var nilWM *Watermark
	if got := nilWM.Filter("a", "b", 1); got != "[a]null[b]" {
		t.Errorf("nil watermark: %q", got)
	}
	if args := (&Watermark{Text: "x"}).InputArgs(); args != nil {
		t.Errorf("text watermark inputs: %q", args)
	}
	args := (&Watermark{Image: "a:b%d.png"}).InputArgs()
	if len(args) != 6 || args[4] != "-i" || !strings.HasPrefix(args[5], "file:/") || !strings.HasSuffix(args[5], "/a:b%d.png") {
		t.Errorf("image inputs: %q", args)
	}
	nan := math.NaN()
	odd := (&Watermark{Text: "x", Position: "middle", MarginX: nan, MarginY: 2, Opacity: nan, Scale: -1}).Filter("a", "b", 1)
	if !strings.Contains(odd, ":x=w-tw-w*0.02:y=w*0.02") || !strings.Contains(odd, "alpha=1:") || !strings.Contains(odd, "fontsize=w*0.04:") {
		t.Errorf("out-of-range values do not fall back to the defaults: %q", odd)
	}
	got := (&Watermark{Image: "/l.png"}).Filter("vin", "vout", 3)
	for _, want := range []string{"[3:v]format=rgba[vout-wmimg]", "scale2ref=w=iw*0.15:h=ow/mdar",
		"overlay=x=W-w-W*0.02:y=W*0.02:eof_action=repeat:repeatlast=1[vout]", "[vin]"} {
		if !strings.Contains(got, want) {
			t.Errorf("image filter %q lacks %q", got, want)
		}
	}
}

// avGetToken is FFmpeg's av_get_token: it reads up to a character of term,
// skipping leading blanks, removing one level of ” quotes and \ escapes,
// and trimming unprotected trailing blanks.
func avGetToken(buf, term string) (tok, rest string) {
	const blanks = " \n\t\r"
	p := strings.TrimLeft(buf, blanks)
	var out []byte
	end := 0
	i := 0
	for i < len(p) && !strings.ContainsRune(term, rune(p[i])) {
		c := p[i]
		i++
		switch {
		case c == '\\' && i < len(p):
			out = append(out, p[i])
			i++
			end = len(out)
		case c == '\'':
			for i < len(p) && p[i] != '\'' {
				out = append(out, p[i])
				i++
			}
			if i < len(p) {
				i++
				end = len(out)
			}
		default:
			out = append(out, c)
		}
	}
	for len(out) > end && strings.IndexByte(blanks, out[len(out)-1]) >= 0 {
		out = out[:len(out)-1]
	}
	return string(out), p[i:]
}

// parseFilterOptions splits a filter's option list the way
// av_opt_get_key_value does.
func parseFilterOptions(s string) (map[string]string, error) {
	opts := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " \n\t\r")
		k := 0
		for k < len(s) && (s[k]|32 >= 'a' && s[k]|32 <= 'z' || s[k] >= '0' && s[k] <= '9' || strings.IndexByte("-_/.", s[k]) >= 0) {
			k++
		}
		key := s[:k]
		s = strings.TrimLeft(s[k:], " \n\t\r")
		if s == "" || s[0] != '=' {
			return nil, fmt.Errorf("no '=' after %q", key)
		}
		val, rest := avGetToken(s[1:], ":")
		if _, dup := opts[key]; dup {
			return nil, fmt.Errorf("option %q twice", key)
		}
		opts[key] = val
		s = rest
		if s != "" {
			s = s[1:]
		}
	}
	return opts, nil
}

// FuzzWatermarkText parses the drawtext fragment the way FFmpeg's
// filtergraph and option parsers do and checks that the text comes out
// exactly, and that nothing leaks out of the filter.
func FuzzWatermarkText(f *testing.F) {
	for _, s := range wmTrickyTexts {
		f.Add(s)
	}
	f.Add("\x00nul\x01\r")
	f.Add("\xff\xfeinvalid utf-8")
	f.Fuzz(func(t *testing.T, text string) {
		frag := (&Watermark{Text: text, Position: "bottom-left"}).Filter("in", "out", 1)
		if text == "" {
			if frag != "[in]null[out]" {
				t.Fatalf("no text gives %q", frag)
			}
			return
		}
		const head = "[in]drawtext="
		if !strings.HasPrefix(frag, head) {
			t.Fatalf("fragment %q", frag)
		}
		args, rest := avGetToken(frag[len(head):], "[],;")
		if rest != "[out]" {
			t.Fatalf("fragment %q: filter arguments end before %q", frag, rest)
		}
		opts, err := parseFilterOptions(args)
		if err != nil {
			t.Fatalf("options %q: %v", args, err)
		}
		if want := sanitizeText(text); opts["text"] != want {
			t.Fatalf("text %q comes out as %q, want %q", text, opts["text"], want)
		}
		if opts["expansion"] != "none" || opts["y"] != "h-th-w*0.02" || opts["x"] != "w*0.02" {
			t.Fatalf("options %q", opts)
		}
		if strings.ContainsRune(opts["text"], 0) {
			t.Fatal("NUL in text")
		}
	})
}
