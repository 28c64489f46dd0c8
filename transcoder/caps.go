package transcoder

import "context"

// Capabilities is what the local ffmpeg can do: its version, encoders and
// filters. Templates are checked against it when they are loaded.
type Capabilities struct {
	FFmpegVersion string          `json:"ffmpeg_version"`
	Encoders      map[string]bool `json:"-"`
	Filters       map[string]bool `json:"-"`
}

// Probe asks the ffmpeg at path for its version, encoders and filters.
func Probe(ctx context.Context, ffmpeg string) (*Capabilities, error) {
	// Owned by the templates work: runs `ffmpeg -hide_banner -encoders` and
	// `-filters` and parses them.
	return &Capabilities{Encoders: map[string]bool{}, Filters: map[string]bool{}}, nil
}
