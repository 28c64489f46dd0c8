// Package transcoder turns a live stream into an adaptive-bitrate ladder. One
// FFmpeg child per stream decodes the source once and encodes every rung;
// the rungs come back as hub streams named "{source}/{rung}".
package transcoder

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Video codecs a rung can be encoded with.
const (
	CodecH264 = "h264"
	CodecH265 = "h265"
	CodecAV1  = "av1"
	CodecVP9  = "vp9"
)

// Audio codecs a rung can carry. AudioCopy keeps the source's audio as it
// is; AudioNone drops audio from the rung.
const (
	CodecAAC  = "aac"
	CodecOpus = "opus"
	AudioCopy = "copy"
	AudioNone = "none"
)

// Template is a named ladder: the rungs every stream it is applied to is
// transcoded into. Live ladders and VOD adaptive jobs share it.
type Template struct {
	Name string `koanf:"name" json:"name"`
	// Upscale keeps rungs larger than the source. By default they are
	// skipped.
	Upscale bool `koanf:"upscale" json:"upscale,omitempty"`
	// Rungs in the order players should prefer them, largest first.
	Rungs []Rung `koanf:"rungs" json:"rungs"`
	// Watermark, when set, is drawn once on the decoded source, before the
	// split, so every transcoded rung carries it (passthrough does not).
	Watermark *Watermark `koanf:"watermark" json:"watermark,omitempty"`
}

// Rung is one rendition of a ladder.
type Rung struct {
	// Name is the last part of the rung's stream name ("720p" gives
	// "live/cam1/720p"). Letters, digits, '_', '-' and '.'.
	Name string `koanf:"name" json:"name"`
	// Passthrough keeps the source as this rung, untouched: the rung is the
	// source stream itself. Video and Audio are then ignored.
	Passthrough bool  `koanf:"passthrough" json:"passthrough,omitempty"`
	Video       Video `koanf:"video" json:"video"`
	Audio       Audio `koanf:"audio" json:"audio"`
}

// Video holds a rung's video encoder settings.
type Video struct {
	Codec string `koanf:"codec" json:"codec"`
	// Width and Height bound the picture; the source's aspect ratio is
	// kept, so one of them may come out smaller. Either may be 0 to follow
	// the other. Both must be even.
	Width  int `koanf:"width" json:"width,omitempty"`
	Height int `koanf:"height" json:"height,omitempty"`
	// Bitrate is the target; MaxRate and BufSize (0: 1.1x and 2x Bitrate)
	// bound it for VBV.
	Bitrate Bitrate `koanf:"bitrate" json:"bitrate"`
	MaxRate Bitrate `koanf:"maxrate" json:"maxrate,omitempty"`
	BufSize Bitrate `koanf:"bufsize" json:"bufsize,omitempty"`
	// FPS caps the frame rate; 0 keeps the source's.
	FPS     float64 `koanf:"fps" json:"fps,omitempty"`
	Profile string  `koanf:"profile" json:"profile,omitempty"`
	Preset  string  `koanf:"preset" json:"preset,omitempty"`
	// GOP is the keyframe interval (default 2 s). Keyframes are forced at
	// the same timestamps on every rung, so all transcoded rungs of a
	// template must share one GOP.
	GOP time.Duration `koanf:"gop" json:"gop,omitempty"`
}

// Audio holds a rung's audio encoder settings.
type Audio struct {
	// Codec is aac, opus, copy (the source's audio) or none. Empty means
	// aac.
	Codec      string  `koanf:"codec" json:"codec,omitempty"`
	Bitrate    Bitrate `koanf:"bitrate" json:"bitrate,omitempty"`
	SampleRate int     `koanf:"sample_rate" json:"sample_rate,omitempty"`
	Channels   int     `koanf:"channels" json:"channels,omitempty"`
}

// Watermark is an image or a text drawn on the video.
type Watermark struct {
	// Image is the path of a PNG (alpha is kept). Exactly one of Image
	// and Text is set.
	Image string `koanf:"image" json:"image,omitempty"`
	// Text is drawn with drawtext in the DejaVu Sans font.
	Text string `koanf:"text" json:"text,omitempty"`
	// Position is top-left, top-right, bottom-left, bottom-right or center
	// (default top-right).
	Position string `koanf:"position" json:"position,omitempty"`
	// MarginX and MarginY are the distances from the chosen edges, as a
	// fraction of the video width (default 0.02).
	MarginX float64 `koanf:"margin_x" json:"margin_x,omitempty"`
	MarginY float64 `koanf:"margin_y" json:"margin_y,omitempty"`
	// Opacity from 0 (invisible) to 1 (default 1).
	Opacity float64 `koanf:"opacity" json:"opacity,omitempty"`
	// Scale is the watermark's width (image) or font height (text) as a
	// fraction of the video width (default 0.15 for images, 0.04 for text).
	Scale float64 `koanf:"scale" json:"scale,omitempty"`
}

// Bitrate is in bits per second. In the config it is written as a number
// or with a k or M suffix: 128000, 128k, 2.5M.
type Bitrate int64

// UnmarshalText parses "2500k", "2.5M" or "2500000".
func (b *Bitrate) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v*mult > 1e11 {
		return fmt.Errorf("bitrate %q: write it like 128000, 128k or 2.5M", text)
	}
	*b = Bitrate(v * mult)
	return nil
}

// MarshalText writes the bitrate in bits per second.
func (b Bitrate) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatInt(int64(b), 10)), nil
}

// String is the form ffmpeg takes: "2500k", or bits when not a whole kbit.
func (b Bitrate) String() string {
	if b%1000 == 0 {
		return strconv.FormatInt(int64(b)/1000, 10) + "k"
	}
	return strconv.FormatInt(int64(b), 10)
}
