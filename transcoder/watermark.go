package transcoder

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// watermarkFont is the font drawtext uses (Debian package fonts-dejavu-core).
// When the file is missing, fontconfig is asked for the same family.
var watermarkFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

// InputArgs returns the extra ffmpeg input arguments the watermark needs
// (the PNG for an image watermark), or nil.
//
// The image is read once, as a single frame: the overlay repeats it for as
// long as the video lasts (eof_action=repeat), so a live input never waits
// on it and no frame is decoded twice. The image2 demuxer is told not to
// read "%d" in the name as a sequence pattern, and the "file:" prefix keeps
// a name with a colon from being taken for a protocol.
func (w *Watermark) InputArgs() []string {
	if w == nil || w.Image == "" {
		return nil
	}
	path := w.Image
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return []string{"-f", "image2", "-pattern_type", "none", "-i", "file:" + path}
}

// Filter returns a filtergraph fragment that reads the pad [in] (and, for an
// image, the input numbered imageInput) and writes the watermarked video to
// the pad [out], e.g. "[in]null[out]".
//
// An image is scaled to Scale × the video width (scale2ref, aspect ratio
// kept), its alpha multiplied by Opacity, and overlaid. A text is drawn with
// drawtext in white (with a thin black border when opaque), its font size
// Scale × the video width. Both follow the video's size, whatever it is.
// The fragment adds labels derived from out ("{out}-wm...") for its inner
// pads.
func (w *Watermark) Filter(in, out string, imageInput int) string {
	if w == nil || (w.Image == "" && w.Text == "") {
		return "[" + in + "]null[" + out + "]"
	}
	pos, mx, my, opacity, scale := w.settings()
	if w.Image == "" {
		return "[" + in + "]drawtext=" + escapeFilterArgs(w.drawtextArgs(pos, mx, my, opacity, scale)) + "[" + out + "]"
	}

	img, scaled, base := out+"-wmimg", out+"-wmscaled", out+"-wmbase"
	var b strings.Builder
	b.WriteString("[" + strconv.Itoa(imageInput) + ":v]format=rgba")
	if opacity < 1 {
		b.WriteString(",colorchannelmixer=aa=" + formatFloat(opacity))
	}
	b.WriteString("[" + img + "];")
	// In scale2ref, iw/ih are the reference (the video) and mdar is the
	// display aspect ratio of the input being scaled (the image).
	b.WriteString("[" + img + "][" + in + "]scale2ref=w=iw*" + formatFloat(scale) + ":h=ow/mdar[" + scaled + "][" + base + "];")
	x, y := positionExprs(pos, mx, my, "W", "H", "w", "h")
	b.WriteString("[" + base + "][" + scaled + "]overlay=x=" + x + ":y=" + y + ":eof_action=repeat:repeatlast=1[" + out + "]")
	return b.String()
}

// settings returns the watermark's fields with defaults filled in (the
// same as WithDefaults) and out-of-range values replaced by them, so that
// the fragment always parses.
func (w *Watermark) settings() (pos string, mx, my, opacity, scale float64) {
	pos = w.Position
	if !slices.Contains(watermarkPositions, pos) {
		pos = DefaultWatermarkPosition
	}
	mx, my = w.MarginX, w.MarginY
	if !(mx > 0 && mx < 1) { // NaN too
		mx = DefaultWatermarkMargin
	}
	if !(my > 0 && my < 1) {
		my = DefaultWatermarkMargin
	}
	opacity = w.Opacity
	if !(opacity > 0 && opacity <= 1) {
		opacity = DefaultWatermarkOpacity
	}
	scale = w.Scale
	if !(scale > 0 && scale <= 1) {
		scale = DefaultImageScale
		if w.Image == "" {
			scale = DefaultTextScale
		}
	}
	return pos, mx, my, opacity, scale
}

// drawtextArgs returns drawtext's option list, before filtergraph escaping.
func (w *Watermark) drawtextArgs(pos string, mx, my, opacity, scale float64) string {
	font := "fontfile=" + quoteFilterOption(watermarkFont)
	if _, err := os.Stat(watermarkFont); err != nil {
		font = "font=" + quoteFilterOption("DejaVu Sans")
	}
	// drawtext fills the whole glyph with the border colour before drawing
	// the text on it, so a border under semi-transparent text would darken
	// it: only opaque text gets one.
	border := ""
	if opacity >= 1 {
		border = ":borderw=1:bordercolor=black"
	}
	x, y := positionExprs(pos, mx, my, "w", "h", "tw", "th")
	return font +
		":expansion=none:text=" + quoteFilterOption(sanitizeText(w.Text)) +
		":fontsize=w*" + formatFloat(scale) +
		":fontcolor=white" + border +
		":alpha=" + formatFloat(opacity) +
		":x=" + x + ":y=" + y
}

// positionExprs returns the x and y expressions that place a box of size
// boxW×boxH on a video of size vidW×vidH. Margins are fractions of the
// video width on both axes.
func positionExprs(pos string, mx, my float64, vidW, vidH, boxW, boxH string) (x, y string) {
	left := vidW + "*" + formatFloat(mx)
	right := vidW + "-" + boxW + "-" + vidW + "*" + formatFloat(mx)
	top := vidW + "*" + formatFloat(my)
	bottom := vidH + "-" + boxH + "-" + vidW + "*" + formatFloat(my)
	switch pos {
	case "top-left":
		return left, top
	case "bottom-left":
		return left, bottom
	case "bottom-right":
		return right, bottom
	case "center":
		return "(" + vidW + "-" + boxW + ")/2", "(" + vidH + "-" + boxH + ")/2"
	default:
		return right, top
	}
}

func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// sanitizeText makes s something drawtext can take: valid UTF-8 without
// NUL (which no command line can carry) or other control characters except
// newline. A tab becomes a space: FFmpeg 5.1's drawtext divides by zero on
// a tab when the font size is an expression.
func sanitizeText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
}

// quoteFilterOption quotes s as one option value in a filter's option list
// ("key=value:key=value"). FFmpeg reads the value with av_get_token: inside
// single quotes everything is literal, so only a single quote itself needs
// care: it closes the quotes, is written escaped, and the quotes reopen.
func quoteFilterOption(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// escapeFilterArgs escapes a filter's whole option list for the filtergraph
// parser, which reads it with av_get_token up to one of "[],;" and removes
// one level of quotes and backslashes. Every character that level treats
// specially is written with a backslash.
func escapeFilterArgs(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		switch r {
		case '\\', '\'', '[', ']', ',', ';':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
