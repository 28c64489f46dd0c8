package transcoder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Defaults that WithDefaults fills in.
const (
	// DefaultGOP is the keyframe interval of a rung that sets none.
	DefaultGOP = 2 * time.Second
	// DefaultAudioSampleRate and DefaultAudioChannels apply to aac and
	// opus.
	DefaultAudioSampleRate = 48000
	DefaultAudioChannels   = 2
	// DefaultAACBitrate and DefaultOpusBitrate are the audio bitrates of a
	// rung that sets none.
	DefaultAACBitrate  Bitrate = 128_000
	DefaultOpusBitrate Bitrate = 96_000
	// DefaultWatermarkPosition, DefaultWatermarkMargin and
	// DefaultWatermarkOpacity fill a watermark's unset fields.
	DefaultWatermarkPosition = "top-right"
	DefaultWatermarkMargin   = 0.02
	DefaultWatermarkOpacity  = 1.0
	// DefaultImageScale and DefaultTextScale are a watermark's default
	// size, as a fraction of the video width.
	DefaultImageScale = 0.15
	DefaultTextScale  = 0.04
)

// DefaultPresets is the encoder preset of a rung that sets none, per video
// codec. They are picked to run live ladders on small machines: x264
// superfast runs a 720/480/360 ladder at 1.2x realtime on two cores.
// For h264 and h265 a preset is an x264/x265 preset name; for av1 it is an
// SVT-AV1 preset number from 0 (slowest) to 13 (fastest); for vp9 it is the
// libvpx-vp9 -cpu-used speed from 0 (slowest) to 8 (fastest), with the
// realtime deadline.
var DefaultPresets = map[string]string{
	CodecH264: "superfast",
	CodecH265: "ultrafast",
	CodecAV1:  "12",
	CodecVP9:  "8",
}

// Value sets a template accepts.
var (
	videoCodecs = []string{CodecH264, CodecH265, CodecAV1, CodecVP9}
	audioCodecs = []string{CodecAAC, CodecOpus, AudioCopy, AudioNone}
	x26xPresets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"}
	profiles    = map[string][]string{
		CodecH264: {"baseline", "main", "high"},
		CodecH265: {"main", "main10"},
	}
	watermarkPositions = []string{"top-left", "top-right", "bottom-left", "bottom-right", "center"}
	aacSampleRates     = []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000}
	opusSampleRates    = []int{8000, 12000, 16000, 24000, 48000}
	// reservedRungNames would clash with a stream's own files and API
	// resources; reservedRungSuffixes with its playback files.
	reservedRungNames    = []string{"ladder", "recording", "captions"}
	reservedRungSuffixes = []string{".m3u8", ".mpd", ".m4s", ".mp4", ".jpg"}
)

// Limits of template values.
const (
	maxTemplateNameLength = 64
	maxRungNameLength     = 64
	maxDimension          = 8192
	maxFPS                = 240
	minGOP                = 100 * time.Millisecond
	maxGOP                = 60 * time.Second
	maxAudioChannels      = 8
	maxWatermarkText      = 256
)

// audio bitrate bounds per codec, in bits per second.
var audioBitrateRange = map[string][2]Bitrate{
	CodecAAC:  {8_000, 512_000},
	CodecOpus: {6_000, 510_000},
}

// WithDefaults returns a copy of t with every unset value filled in, so
// that the transcoder gets complete settings: GOP 2 s; audio aac at 128k
// (opus at 96k), 48000 Hz, 2 channels; the codec's preset from
// DefaultPresets; maxrate 1.1x and bufsize 2x the bitrate; the watermark's
// position, margins, opacity and scale. Passthrough rungs are left as they
// are. t is not modified, and WithDefaults of the result changes nothing.
func (t *Template) WithDefaults() Template {
	out := *t
	out.Rungs = slices.Clone(t.Rungs)
	for i := range out.Rungs {
		r := &out.Rungs[i]
		if r.Passthrough {
			continue
		}
		v := &r.Video
		if v.GOP == 0 {
			v.GOP = DefaultGOP
		}
		if v.Preset == "" {
			v.Preset = DefaultPresets[v.Codec]
		}
		if v.MaxRate == 0 {
			v.MaxRate = v.Bitrate * 11 / 10
		}
		if v.BufSize == 0 {
			v.BufSize = v.Bitrate * 2
		}
		a := &r.Audio
		if a.Codec == "" {
			a.Codec = CodecAAC
		}
		if a.Codec == CodecAAC || a.Codec == CodecOpus {
			if a.Bitrate == 0 {
				a.Bitrate = DefaultAACBitrate
				if a.Codec == CodecOpus {
					a.Bitrate = DefaultOpusBitrate
				}
			}
			if a.SampleRate == 0 {
				a.SampleRate = DefaultAudioSampleRate
			}
			if a.Channels == 0 {
				a.Channels = DefaultAudioChannels
			}
		}
	}
	if t.Watermark != nil {
		w := t.Watermark.WithDefaults()
		out.Watermark = &w
	}
	return out
}

// TranscodedRungs returns the indexes of the rungs that are encoded, that
// is every rung but the passthrough ones.
func (t *Template) TranscodedRungs() []int {
	var out []int
	for i, r := range t.Rungs {
		if !r.Passthrough {
			out = append(out, i)
		}
	}
	return out
}

// Validate checks the template, with its defaults applied, and returns
// every problem found, one per line, each naming its field:
//
//	ladder "default": rungs[1].video.codec: unknown codec "h263" (want h264, h265, av1 or vp9)
//
// With caps, it also checks that the ffmpeg has the encoders and filters
// the template needs; with nil caps those checks are skipped.
func (t *Template) Validate(caps *Capabilities) error {
	v := &templateChecker{name: t.Name}
	d := t.WithDefaults()
	v.checkName(t.Name)
	if len(t.Rungs) == 0 {
		v.add("rungs: list at least one rung")
	}

	names := map[string]int{}
	passthrough := -1
	gopRung := -1
	for i, r := range d.Rungs {
		field := fmt.Sprintf("rungs[%d]", i)
		v.checkRungName(field, r.Name)
		if j, dup := names[r.Name]; dup && r.Name != "" {
			v.add("%s.name %q: already used by rungs[%d]", field, r.Name, j)
		} else {
			names[r.Name] = i
		}
		if r.Passthrough {
			if passthrough >= 0 {
				v.add("%s.passthrough: rungs[%d] already passes the source through; a ladder has at most one passthrough rung", field, passthrough)
			} else {
				passthrough = i
			}
			continue
		}
		v.checkVideo(field+".video", &r.Video, caps)
		v.checkAudio(field+".audio", &t.Rungs[i].Audio, &r.Audio, caps)
		if r.Video.GOP > 0 {
			if gopRung < 0 {
				gopRung = i
			} else if g := d.Rungs[gopRung].Video.GOP; r.Video.GOP != g {
				note := ""
				if t.Rungs[gopRung].Video.GOP == 0 {
					note = " (the default)"
				}
				v.add("%s.video.gop %s: differs from rungs[%d].video.gop %s%s; the transcoded rungs of a ladder share one GOP so that their segments line up",
					field, r.Video.GOP, gopRung, g, note)
			}
		}
	}
	if len(t.Rungs) > 0 && len(d.TranscodedRungs()) == 0 {
		v.add("rungs: every rung is passthrough; a ladder needs at least one transcoded rung")
	}
	if d.Watermark != nil {
		v.checkWatermark(t.Watermark, caps)
	}
	return v.err()
}

// templateChecker collects the problems of one template.
type templateChecker struct {
	name string
	errs []error
}

func (v *templateChecker) add(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("ladder %q: "+format, append([]any{v.name}, args...)...))
}

func (v *templateChecker) err() error { return errors.Join(v.errs...) }

func (v *templateChecker) checkName(name string) {
	switch {
	case name == "":
		v.add("name: must be set")
	case len(name) > maxTemplateNameLength:
		v.add("name: longer than %d characters", maxTemplateNameLength)
	case name == "." || name == "..":
		v.add("name %q: not a usable name", name)
	case !plainName(name):
		v.add("name %q: use letters, digits, '_', '-' and '.' only", name)
	}
}

func (v *templateChecker) checkRungName(field, name string) {
	lower := strings.ToLower(name)
	switch {
	case name == "":
		v.add("%s.name: must be set", field)
	case len(name) > maxRungNameLength:
		v.add("%s.name: longer than %d characters", field, maxRungNameLength)
	case name == "." || name == "..":
		v.add("%s.name %q: not a usable name", field, name)
	case !plainName(name):
		v.add("%s.name %q: use letters, digits, '_', '-' and '.' only", field, name)
	case slices.Contains(reservedRungNames, lower):
		v.add("%s.name %q: reserved for the stream's API resource; pick another", field, name)
	default:
		for _, s := range reservedRungSuffixes {
			if strings.HasSuffix(lower, s) {
				v.add("%s.name %q: ends like a playback file (%s); pick another", field, name, s)
				return
			}
		}
	}
}

// plainName reports whether s has only letters, digits, '_', '-' and '.'.
func plainName(s string) bool {
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

func (v *templateChecker) checkVideo(field string, vid *Video, caps *Capabilities) {
	switch {
	case vid.Codec == "":
		v.add("%s.codec: must be set (%s)", field, orList(videoCodecs))
	case !slices.Contains(videoCodecs, vid.Codec):
		v.add("%s.codec: unknown codec %q (want %s)", field, vid.Codec, orList(videoCodecs))
	case caps != nil && !caps.CanEncode(vid.Codec):
		v.add("%s.codec: %s needs the %s encoder, which this ffmpeg does not have", field, vid.Codec, CodecEncoder(vid.Codec))
	}

	for _, d := range []struct {
		key string
		val int
	}{{"width", vid.Width}, {"height", vid.Height}} {
		switch {
		case d.val < 0:
			v.add("%s.%s %d: must be 0 (follow the other side) or more", field, d.key, d.val)
		case d.val > maxDimension:
			v.add("%s.%s %d: must be at most %d", field, d.key, d.val, maxDimension)
		case d.val%2 != 0:
			v.add("%s.%s %d: must be even", field, d.key, d.val)
		}
	}
	if vid.Width == 0 && vid.Height == 0 {
		v.add("%s: set width, height or both (the other side follows the source's aspect ratio)", field)
	}

	if vid.Bitrate <= 0 {
		v.add("%s.bitrate %d: must be more than 0 (write it like 2500k or 2.5M)", field, vid.Bitrate)
	} else {
		if vid.MaxRate < vid.Bitrate {
			v.add("%s.maxrate %s: must be at least %s.bitrate %s", field, vid.MaxRate, field, vid.Bitrate)
		}
		if vid.BufSize < 0 {
			v.add("%s.bufsize %d: must be 0 (twice the bitrate) or more", field, vid.BufSize)
		}
	}

	if math.IsNaN(vid.FPS) || vid.FPS < 0 || vid.FPS > maxFPS {
		v.add("%s.fps %v: must be from 0 (keep the source's) to %d", field, vid.FPS, maxFPS)
	}

	switch {
	case vid.GOP < 0:
		v.add("%s.gop %s: must be 0 (default %s) or more", field, vid.GOP, DefaultGOP)
	case vid.GOP > 0 && vid.GOP < minGOP:
		v.add("%s.gop %s: must be at least %s", field, vid.GOP, minGOP)
	case vid.GOP > maxGOP:
		v.add("%s.gop %s: must be at most %s", field, vid.GOP, maxGOP)
	}

	v.checkPreset(field, vid)
	if vid.Profile != "" && slices.Contains(videoCodecs, vid.Codec) {
		if want, ok := profiles[vid.Codec]; !ok {
			v.add("%s.profile %q: only h264 and h265 take a profile", field, vid.Profile)
		} else if !slices.Contains(want, vid.Profile) {
			v.add("%s.profile %q: unknown %s profile (want %s)", field, vid.Profile, vid.Codec, orList(want))
		}
	}
}

func (v *templateChecker) checkPreset(field string, vid *Video) {
	p := vid.Preset
	switch vid.Codec {
	case CodecH264, CodecH265:
		if !slices.Contains(x26xPresets, p) {
			v.add("%s.preset %q: unknown %s preset (want %s)", field, p, CodecEncoder(vid.Codec)[3:], orList(x26xPresets))
		}
	case CodecAV1:
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 13 {
			v.add("%s.preset %q: an SVT-AV1 preset is a number from 0 (slowest) to 13 (fastest)", field, p)
		}
	case CodecVP9:
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 8 {
			v.add("%s.preset %q: a vp9 preset is the libvpx speed, a number from 0 (slowest) to 8 (fastest)", field, p)
		}
	}
}

// checkAudio checks one rung's audio: raw as written, a with defaults.
func (v *templateChecker) checkAudio(field string, raw, a *Audio, caps *Capabilities) {
	if !slices.Contains(audioCodecs, a.Codec) {
		v.add("%s.codec: unknown codec %q (want %s)", field, a.Codec, orList(audioCodecs))
		return
	}
	if a.Codec == AudioCopy || a.Codec == AudioNone {
		if raw.Bitrate != 0 || raw.SampleRate != 0 || raw.Channels != 0 {
			v.add("%s: bitrate, sample_rate and channels have no effect with codec %s; remove them", field, a.Codec)
		}
		return
	}
	if caps != nil && !caps.CanEncode(a.Codec) {
		v.add("%s.codec: %s needs the %s encoder, which this ffmpeg does not have", field, a.Codec, CodecEncoder(a.Codec))
	}
	if r := audioBitrateRange[a.Codec]; a.Bitrate < r[0] || a.Bitrate > r[1] {
		v.add("%s.bitrate %d: must be from %s to %s for %s", field, a.Bitrate, r[0], r[1], a.Codec)
	}
	rates := aacSampleRates
	if a.Codec == CodecOpus {
		rates = opusSampleRates
	}
	if !slices.Contains(rates, a.SampleRate) {
		v.add("%s.sample_rate %d: %s takes %s", field, a.SampleRate, a.Codec, orList(intStrings(rates)))
	}
	if a.Channels < 1 || a.Channels > maxAudioChannels {
		v.add("%s.channels %d: must be from 1 to %d", field, a.Channels, maxAudioChannels)
	}
}

// checkWatermark checks the watermark as written.
func (v *templateChecker) checkWatermark(raw *Watermark, caps *Capabilities) {
	for _, p := range raw.Problems("watermark", caps) {
		v.add("%s", p)
	}
}

// WithDefaults returns the watermark with its unset fields filled in.
func (w Watermark) WithDefaults() Watermark {
	if w.Position == "" {
		w.Position = DefaultWatermarkPosition
	}
	if w.MarginX == 0 {
		w.MarginX = DefaultWatermarkMargin
	}
	if w.MarginY == 0 {
		w.MarginY = DefaultWatermarkMargin
	}
	if w.Opacity == 0 {
		w.Opacity = DefaultWatermarkOpacity
	}
	if w.Scale == 0 {
		w.Scale = DefaultImageScale
		if w.Image == "" {
			w.Scale = DefaultTextScale
		}
	}
	return w
}

// Problems lists what is wrong with the watermark as written (its unset
// fields take their defaults), each message starting with field. caps,
// when set, must have the filters it needs.
func (raw *Watermark) Problems(field string, caps *Capabilities) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	w := raw.WithDefaults()
	switch {
	case w.Image != "" && w.Text != "":
		add("%s: set either image or text, not both", field)
	case w.Image == "" && w.Text == "":
		add("%s: set image (a PNG file) or text", field)
	case w.Image != "":
		if err := checkPNG(w.Image); err != nil {
			add("%s.image %q: %v", field, w.Image, err)
		}
		if caps != nil && !caps.HasFilter("overlay") {
			add("%s.image: needs the overlay filter, which this ffmpeg does not have", field)
		}
	default:
		switch {
		case len(w.Text) > maxWatermarkText:
			add("%s.text: longer than %d bytes", field, maxWatermarkText)
		case strings.ContainsFunc(w.Text, unicode.IsControl):
			add("%s.text %q: must be one line, without control characters", field, w.Text)
		}
		if caps != nil && !caps.HasFilter("drawtext") {
			add("%s.text: needs the drawtext filter, which this ffmpeg does not have", field)
		}
	}
	if !slices.Contains(watermarkPositions, w.Position) {
		add("%s.position %q: want %s", field, w.Position, orList(watermarkPositions))
	}
	for _, m := range []struct {
		key string
		val float64
	}{{"margin_x", w.MarginX}, {"margin_y", w.MarginY}} {
		if math.IsNaN(m.val) || m.val < 0 || m.val > 0.5 {
			add("%s.%s %v: must be from 0 to 0.5 (a fraction of the video width)", field, m.key, m.val)
		}
	}
	if math.IsNaN(w.Opacity) || w.Opacity < 0 || w.Opacity > 1 {
		add("%s.opacity %v: must be from 0 to 1", field, raw.Opacity)
	}
	if math.IsNaN(w.Scale) || w.Scale <= 0 || w.Scale > 1 {
		add("%s.scale %v: must be more than 0 and at most 1 (a fraction of the video width)", field, raw.Scale)
	}
	return out
}

// pngSignature starts every PNG file.
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// checkPNG checks that path is a readable PNG file.
func checkPNG(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file")
		}
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return errors.New("is a directory, not a PNG file")
	}
	head := make([]byte, len(pngSignature))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, pngSignature) {
		return errors.New("not a PNG file")
	}
	return nil
}

// orList writes "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func intStrings(ns []int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// UnmarshalJSON accepts a number of bits per second (2500000) or a string
// in the config's forms ("2500k", "2.5M", "2500000").
func (b *Bitrate) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("bitrate %s: %w", data, err)
		}
		return b.UnmarshalText([]byte(s))
	}
	v, err := strconv.ParseFloat(string(data), 64)
	if err != nil || v < 0 || v > 1e11 || v != math.Trunc(v) {
		return fmt.Errorf("bitrate %s: write it as a whole number of bits per second, or like \"128k\" or \"2.5M\"", data)
	}
	*b = Bitrate(v)
	return nil
}

// MarshalJSON writes the bitrate as a number of bits per second.
func (b Bitrate) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatInt(int64(b), 10)), nil
}
