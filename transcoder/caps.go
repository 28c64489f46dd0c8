package transcoder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Capabilities is what the local ffmpeg can do: its version, encoders and
// filters. Templates are checked against it when they are loaded.
type Capabilities struct {
	// FFmpegPath is the ffmpeg that was probed, as it was given to Probe.
	FFmpegPath    string          `json:"ffmpeg_path,omitempty"`
	FFmpegVersion string          `json:"ffmpeg_version"`
	Encoders      map[string]bool `json:"-"`
	Filters       map[string]bool `json:"-"`
}

// NotableEncoders are the encoders MPS uses when they exist: the encoder of
// each template codec, and mjpeg for thumbnails.
var NotableEncoders = []string{"libx264", "libx265", "libsvtav1", "libvpx-vp9", "aac", "libopus", "mjpeg"}

// NotableFilters are the filters MPS uses when they exist: drawtext and
// overlay for watermarks, scale, split and fps for ladders, libvmaf for
// quality evaluation.
var NotableFilters = []string{"drawtext", "overlay", "scale", "split", "fps", "libvmaf"}

// codecEncoders maps each template codec to the ffmpeg encoder that MPS
// encodes it with.
var codecEncoders = map[string]string{
	CodecH264: "libx264",
	CodecH265: "libx265",
	CodecAV1:  "libsvtav1",
	CodecVP9:  "libvpx-vp9",
	CodecAAC:  "aac",
	CodecOpus: "libopus",
}

// CodecEncoder returns the ffmpeg encoder MPS uses for a template codec
// (h264 gives libx264, opus gives libopus), or "" for copy, none and
// unknown codecs.
func CodecEncoder(codec string) string { return codecEncoders[codec] }

// probeOutputLimit bounds what Probe reads from each ffmpeg run.
const probeOutputLimit = 4 << 20

// Probe asks the ffmpeg at path (a file name, or a command looked up in
// PATH) for its version, encoders and filters. It fails when ffmpeg cannot
// be run, or when its answers do not look like ffmpeg's.
func Probe(ctx context.Context, ffmpeg string) (*Capabilities, error) {
	if ffmpeg == "" {
		return nil, errors.New("probe ffmpeg: no path given")
	}
	caps := &Capabilities{FFmpegPath: ffmpeg}

	out, err := runFFmpeg(ctx, ffmpeg, "-version")
	if err != nil {
		return nil, err
	}
	if caps.FFmpegVersion = parseFFmpegVersion(out); caps.FFmpegVersion == "" {
		return nil, fmt.Errorf("probe %s: `-version` printed no \"ffmpeg version\" line; is it ffmpeg? It printed: %q",
			ffmpeg, firstLine(out))
	}

	if out, err = runFFmpeg(ctx, ffmpeg, "-encoders"); err != nil {
		return nil, err
	}
	if caps.Encoders = parseEncoderList(out); len(caps.Encoders) == 0 {
		return nil, fmt.Errorf("probe %s: `-encoders` listed no encoder; it printed: %q", ffmpeg, firstLine(out))
	}

	if out, err = runFFmpeg(ctx, ffmpeg, "-filters"); err != nil {
		return nil, err
	}
	if caps.Filters = parseFilterList(out); len(caps.Filters) == 0 {
		return nil, fmt.Errorf("probe %s: `-filters` listed no filter; it printed: %q", ffmpeg, firstLine(out))
	}
	return caps, nil
}

// runFFmpeg runs `ffmpeg -hide_banner <arg>` and returns its standard
// output.
func runFFmpeg(ctx context.Context, ffmpeg, arg string) (string, error) {
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", arg)
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = probeOutputLimit, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("probe %s %s: %w", ffmpeg, arg, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return "", fmt.Errorf("probe %s %s: %w: %s", ffmpeg, arg, err, lastLine(msg))
		}
		return "", fmt.Errorf("probe %s %s: %w", ffmpeg, arg, err)
	}
	return stdout.String(), nil
}

// limitedBuffer keeps the first limit bytes written to it and drops the
// rest, so that a runaway child cannot fill memory.
type limitedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return truncate(line, 200)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return truncate(strings.TrimSpace(lines[len(lines)-1]), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parseFFmpegVersion returns the version from `ffmpeg -version` output
// ("5.1.9-0+deb12u1" from "ffmpeg version 5.1.9-0+deb12u1 Copyright ..."),
// or "" when there is no version line.
func parseFFmpegVersion(out string) string {
	for line := range strings.SplitSeq(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ffmpeg version ")
		if !ok {
			continue
		}
		if f := strings.Fields(rest); len(f) > 0 && validListName(f[0], "+~:") {
			return f[0]
		}
	}
	return ""
}

// parseEncoderList returns the encoder names from `ffmpeg -encoders`
// output. Each encoder line is a field of capability flags, the name and a
// description:
//
//	V....D libx264              libx264 H.264 / AVC / ... (codec h264)
//
// The legend before the list (" V..... = Video") and the "------" rule are
// skipped, and so is every line that does not have that shape.
func parseEncoderList(out string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] == "=" || !isFlagField(f[0], 4, 8) || !validListName(f[1], "") {
			continue
		}
		names[f[1]] = true
	}
	return names
}

// parseFilterList returns the filter names from `ffmpeg -filters` output.
// Each filter line is a field of flags, the name, the pads and a
// description:
//
//	T.C drawtext          V->V       Draw text on top of video frames ...
//	... abuffer           |->A       Buffer audio frames, ...
//
// The legend and every line without an "X->Y" pads field are skipped.
func parseFilterList(out string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !isFlagField(f[0], 1, 4) || !strings.Contains(f[2], "->") || !validListName(f[1], "") {
			continue
		}
		names[f[1]] = true
	}
	return names
}

// isFlagField reports whether s looks like ffmpeg's flag column: upper-case
// letters and dots, between lo and hi characters long.
func isFlagField(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for _, r := range s {
		if r != '.' && (r < 'A' || r > 'Z') {
			return false
		}
	}
	return true
}

// validListName reports whether s is a plausible encoder, filter or
// version name: letters, digits, '_', '-', '.' and the characters in
// extra.
func validListName(s, extra string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-' || r == '.' || strings.ContainsRune(extra, r)
		if !ok {
			return false
		}
	}
	return true
}

// HasEncoder reports whether the ffmpeg has the named encoder, such as
// libx264. A nil Capabilities has none.
func (c *Capabilities) HasEncoder(name string) bool {
	return c != nil && c.Encoders[name]
}

// HasFilter reports whether the ffmpeg has the named filter, such as
// drawtext. A nil Capabilities has none.
func (c *Capabilities) HasFilter(name string) bool {
	return c != nil && c.Filters[name]
}

// CanEncode reports whether the ffmpeg has the encoder of a template codec
// (h264, h265, av1, vp9, aac or opus). copy and none need no encoder.
func (c *Capabilities) CanEncode(codec string) bool {
	if codec == AudioCopy || codec == AudioNone {
		return true
	}
	enc := CodecEncoder(codec)
	return enc != "" && c.HasEncoder(enc)
}

// CapabilitiesView is the JSON form of Capabilities, as the admin API
// reports it. Lists are sorted.
type CapabilitiesView struct {
	FFmpegPath    string `json:"ffmpeg_path,omitempty"`
	FFmpegVersion string `json:"ffmpeg_version"`
	// VideoCodecs and AudioCodecs are the template codecs this ffmpeg can
	// encode.
	VideoCodecs []string `json:"video_codecs"`
	AudioCodecs []string `json:"audio_codecs"`
	// NotableEncoders and NotableFilters say which of NotableEncoders and
	// NotableFilters exist.
	NotableEncoders map[string]bool `json:"notable_encoders"`
	NotableFilters  map[string]bool `json:"notable_filters"`
	Encoders        []string        `json:"encoders"`
	Filters         []string        `json:"filters"`
}

// View returns the JSON form of c.
func (c *Capabilities) View() CapabilitiesView {
	v := CapabilitiesView{
		VideoCodecs:     []string{},
		AudioCodecs:     []string{},
		NotableEncoders: map[string]bool{},
		NotableFilters:  map[string]bool{},
		Encoders:        []string{},
		Filters:         []string{},
	}
	if c == nil {
		return v
	}
	v.FFmpegPath, v.FFmpegVersion = c.FFmpegPath, c.FFmpegVersion
	for _, codec := range []string{CodecH264, CodecH265, CodecAV1, CodecVP9} {
		if c.CanEncode(codec) {
			v.VideoCodecs = append(v.VideoCodecs, codec)
		}
	}
	for _, codec := range []string{CodecAAC, CodecOpus} {
		if c.CanEncode(codec) {
			v.AudioCodecs = append(v.AudioCodecs, codec)
		}
	}
	for _, e := range NotableEncoders {
		v.NotableEncoders[e] = c.HasEncoder(e)
	}
	for _, f := range NotableFilters {
		v.NotableFilters[f] = c.HasFilter(f)
	}
	v.Encoders = sortedTrue(c.Encoders)
	v.Filters = sortedTrue(c.Filters)
	return v
}

func sortedTrue(m map[string]bool) []string {
	out := []string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] {
			out = append(out, k)
		}
	}
	return out
}

// MarshalJSON writes the View of c.
func (c Capabilities) MarshalJSON() ([]byte, error) {
	return json.Marshal(c.View())
}
