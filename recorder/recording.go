package recorder

import (
	"errors"
	"time"
)

// Formats of a recording.
const (
	// FormatFMP4 writes one fragmented MP4 file per archive.
	FormatFMP4 = "fmp4"
	// FormatHLS writes a folder per archive: an init segment, CMAF media
	// segments and a VOD playlist (index.m3u8).
	FormatHLS = "hls"
)

// States of a recording (one archive file).
const (
	StateRecording = "recording"
	StateComplete  = "complete"
	// StateFailed: writing stopped on an error (a full disk, for example);
	// what was written up to the last complete fragment plays.
	StateFailed = "failed"
)

// RenditionSource names the source rendition of a stream in Options and
// in Recording.Rendition; RenditionsAll selects every rendition.
const (
	RenditionSource = "source"
	RenditionsAll   = "all"
)

// Errors the recorder returns; the API maps them to status codes.
var (
	ErrNoStream        = errors.New("no such live stream")                          // 404
	ErrNotRecording    = errors.New("the stream is not recording")                  // 404
	ErrNoRecording     = errors.New("no such recording")                            // 404
	ErrNothingInRange  = errors.New("nothing was recorded in range")                // 404
	ErrInvalidRange    = errors.New("invalid time range")                           // 400
	ErrInvalidOptions  = errors.New("invalid recording options")                    // 400
	ErrRangeTooComplex = errors.New("the range spans a change of codec parameters") // 422
	ErrClosed          = errors.New("recorder closed")                              // 503
	ErrBusy            = errors.New("the recording is being written")               // 409
)

// Options choose what a recording of a stream writes.
type Options struct {
	// Renditions lists the renditions to record: "source" and rung names
	// such as "720p", or the single entry "all". Empty means source only.
	Renditions []string `json:"renditions,omitempty"`
	// Format is FormatFMP4 or FormatHLS; empty means the configured default.
	Format string `json:"format,omitempty"`
}

// Track describes one track of a recording.
type Track struct {
	Codec      string `json:"codec"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
}

// Recording is one archive: one file (or, in HLS format, one folder) of a
// recording session. A session gets a new archive at each rollover, codec
// change and publisher reconnect.
type Recording struct {
	ID        string `json:"id"`
	Stream    string `json:"stream"`
	Rendition string `json:"rendition"`
	// Session identifies the recording session; its archives share it and
	// are numbered by Seq from 1.
	Session string `json:"session"`
	Seq     int    `json:"seq"`
	Format  string `json:"format"`
	State   string `json:"state"`
	// Path is the archive's path relative to the recordings folder: the
	// .mp4 file, or the HLS folder's index.m3u8.
	Path string `json:"path"`
	// Finalized is the relative path of the faststart MP4 made from the
	// archive, when finalize is on and it is done.
	Finalized string `json:"finalized,omitempty"`
	// FinalizedSize is the size of the finalized MP4; retention counts it.
	FinalizedSize int64     `json:"finalized_size,omitempty"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	// Duration is the media duration in seconds.
	Duration float64  `json:"duration"`
	Size     int64    `json:"size"`
	Codecs   []string `json:"codecs"`
	Tracks   []Track  `json:"tracks"`
	// Repaired is set when the archive was found unfinished at start-up
	// (mps was killed) and closed then.
	Repaired bool   `json:"repaired,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Filter selects recordings for List. Zero fields select everything.
type Filter struct {
	Stream string
	// From and To keep recordings that overlap [From, To].
	From, To time.Time
	// Offset and Limit page through the result (Limit 0: the default 100).
	Offset, Limit int
}

// Page is one page of List, oldest first.
type Page struct {
	Recordings []Recording `json:"recordings"`
	Total      int         `json:"total"`
	// NextOffset is the Offset of the next page, or 0 on the last one.
	NextOffset int `json:"next_offset,omitempty"`
}

// Status is what a live stream's recording is doing.
type Status struct {
	Stream     string   `json:"stream"`
	Recording  bool     `json:"recording"`
	Renditions []string `json:"renditions"`
	Format     string   `json:"format"`
	// Trigger says why it records: "rule", "param" or "api".
	Trigger string `json:"trigger"`
	Session string `json:"session"`
	// Current lists the archives being written now.
	Current []Recording `json:"current"`
	Since   time.Time   `json:"since"`
	Error   string      `json:"error,omitempty"`
}
