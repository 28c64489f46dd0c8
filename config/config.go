// Package config loads MPS's configuration: a YAML file (configs/mps.yaml by
// default) with environment variables on top. Unknown keys are an error, and
// every value is checked before the server starts.
package config

import (
	"path"
	"time"

	"github.com/mps-dev/mps/transcoder"
)

// DefaultPath is where `mps serve` looks for its configuration file when
// neither --config nor MPS_CONFIG names one.
const DefaultPath = "configs/mps.yaml"

// Config is the whole configuration of an MPS server.
type Config struct {
	Log          Log                   `koanf:"log"`
	RTMP         RTMP                  `koanf:"rtmp"`
	RTSP         RTSP                  `koanf:"rtsp"`
	SRT          SRT                   `koanf:"srt"`
	WebRTC       WebRTC                `koanf:"webrtc"`
	HTTP         HTTP                  `koanf:"http"`
	API          API                   `koanf:"api"`
	Hub          Hub                   `koanf:"hub"`
	Packager     Packager              `koanf:"packager"`
	Applications []Application         `koanf:"applications"`
	Ladders      []transcoder.Template `koanf:"ladders"`
	LadderRules  []LadderRule          `koanf:"ladder_rules"`
	Transcoder   Transcoder            `koanf:"transcoder"`
	Admission    Admission             `koanf:"admission"`
	Recording    Recording             `koanf:"recording"`
	Jobs         Jobs                  `koanf:"jobs"`
	Pull         Pull                  `koanf:"pull"`
	AI           AI                    `koanf:"ai"`
	Storage      Storage               `koanf:"storage"`
	Cluster      Cluster               `koanf:"cluster"`

	// Source is the file the configuration was read from, or "" when only
	// the built-in defaults and the environment were used.
	Source string `koanf:"-"`
}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `koanf:"level"`
	// Format is text or json.
	Format string `koanf:"format"`
}

// RTMP configures the RTMP ingest listener.
type RTMP struct {
	Enabled bool   `koanf:"enabled"`
	Address string `koanf:"address"`
}

// HTTP configures the listener for playback, the API, health and metrics.
type HTTP struct {
	Address string `koanf:"address"`
}

// API configures the admin API.
type API struct {
	// Token is the bearer token the API requires. Empty means the API
	// answers loopback clients only.
	Token string `koanf:"token"`
}

// Hub configures the stream hub.
type Hub struct {
	// GracePeriod is how long a stream waits for its publisher to come
	// back. Zero ends a stream as soon as its publisher leaves.
	GracePeriod time.Duration `koanf:"grace_period"`
	// ReaderQueue is how many access units a reader may lag behind.
	ReaderQueue int `koanf:"reader_queue"`
	// GOPCacheLimit bounds the access units cached since the last keyframe.
	GOPCacheLimit int `koanf:"gop_cache_limit"`
}

// Packager configures LL-HLS and DASH packaging.
type Packager struct {
	SegmentDuration  time.Duration `koanf:"segment_duration"`
	PartDuration     time.Duration `koanf:"part_duration"`
	PlaylistSegments int           `koanf:"playlist_segments"`
	Linger           time.Duration `koanf:"linger"`
	// DVRWindow is how much media a live playlist keeps for seeking back;
	// 0 turns the DVR window off (PlaylistSegments only).
	DVRWindow time.Duration `koanf:"dvr_window"`
}

// Application is a publishing namespace: streams are named
// "<application>/<stream>", and each application has its own key rules.
type Application struct {
	Name                    string   `koanf:"name"`
	Keys                    []string `koanf:"keys"`
	SigningSecret           string   `koanf:"signing_secret"`
	AllowLoopbackWithoutKey bool     `koanf:"allow_loopback_without_key"`
	Takeover                bool     `koanf:"takeover"`
	AllowLadderParam        bool     `koanf:"allow_ladder_param"`
	AllowRecordParam        bool     `koanf:"allow_record_param"`
}

// LadderRule picks the ladder of the streams whose full name matches a
// path.Match glob, such as "live/*" or "live/cam-*".
type LadderRule struct {
	Match  string `koanf:"match"`
	Ladder string `koanf:"ladder"`
}

// Transcoder configures the ffmpeg runtime that runs live ladders.
type Transcoder struct {
	// FFmpeg is the ffmpeg binary: a path, or a name looked up in PATH.
	FFmpeg string `koanf:"ffmpeg"`
	// RestartBackoffMax bounds the delay before a crashed ffmpeg child is
	// restarted; the delay doubles after each crash up to this.
	RestartBackoffMax time.Duration `koanf:"restart_backoff_max"`
	Thumbnails        Thumbnails    `koanf:"thumbnails"`
}

// Thumbnails configures the JPEG thumbnails of transcoded streams.
type Thumbnails struct {
	// Interval is how often a thumbnail is made; 0 turns them off.
	Interval time.Duration `koanf:"interval"`
	// Width of the thumbnails in pixels; the height keeps the aspect ratio.
	Width int `koanf:"width"`
	// StoreInterval is how often the latest thumbnail is also written to
	// StorePath; 0 keeps them in memory only.
	StoreInterval time.Duration `koanf:"store_interval"`
	StorePath     string        `koanf:"store_path"`
}

// Admission configures the admission webhook, asked about every publisher
// that passes the key check.
type Admission struct {
	// URL of the webhook; empty turns it off.
	URL string `koanf:"url"`
	// Timeout bounds each call.
	Timeout time.Duration `koanf:"timeout"`
	// OnError is what happens when the webhook fails (an error status, a
	// timeout, an answer that is not JSON): OnErrorDeny or OnErrorAllow.
	OnError string `koanf:"on_error"`
}

// Values of admission.on_error.
const (
	OnErrorDeny  = "deny"
	OnErrorAllow = "allow"
)

// Default returns the built-in configuration, the same as the shipped
// configs/mps.yaml.
func Default() Config {
	return Config{
		Log:  Log{Level: "info", Format: "text"},
		RTMP: RTMP{Enabled: true, Address: ":1935"},
		HTTP: HTTP{Address: ":8080"},
		Hub: Hub{
			GracePeriod:   10 * time.Second,
			ReaderQueue:   2048,
			GOPCacheLimit: 1024,
		},
		Packager: Packager{
			SegmentDuration:  2 * time.Second,
			PartDuration:     200 * time.Millisecond,
			PlaylistSegments: 6,
			Linger:           60 * time.Second,
		},
		Applications: []Application{DefaultApplication("live")},
		Ladders:      []transcoder.Template{DefaultLadder()},
		LadderRules:  []LadderRule{},
		Transcoder: Transcoder{
			FFmpeg:            "ffmpeg",
			RestartBackoffMax: 10 * time.Second,
			Thumbnails: Thumbnails{
				Interval:  5 * time.Second,
				Width:     320,
				StorePath: "data/thumbnails",
			},
		},
		Admission: Admission{Timeout: 2 * time.Second, OnError: OnErrorDeny},
		Recording: DefaultRecording(),
		Jobs:      DefaultJobs(),
		RTSP:      DefaultRTSP(),
		SRT:       DefaultSRT(),
		WebRTC:    DefaultWebRTC(),
		Pull:      DefaultPull(),
		AI:        DefaultAI(),
		Storage:   DefaultStorage(),
		Cluster:   DefaultCluster(),
	}
}

// DefaultLadderName is the name of the ladder Default ships.
const DefaultLadderName = "default"

// DefaultLadder is the ladder the default configuration ships: the source
// as it is, plus 720p, 480p and 360p H.264 (x264 superfast) with AAC at
// 128 kbit/s. It is sized to run live on a small machine: on two cores it
// encodes at 1.2x realtime, where 1080p/720p/480p at veryfast manages only
// 0.47x.
func DefaultLadder() transcoder.Template {
	rung := func(name string, w, h int, bitrate transcoder.Bitrate) transcoder.Rung {
		return transcoder.Rung{
			Name: name,
			Video: transcoder.Video{
				Codec: transcoder.CodecH264, Width: w, Height: h, Bitrate: bitrate,
				Preset: "superfast", GOP: 2 * time.Second,
			},
			Audio: transcoder.Audio{Codec: transcoder.CodecAAC, Bitrate: 128_000},
		}
	}
	return transcoder.Template{
		Name: DefaultLadderName,
		Rungs: []transcoder.Rung{
			{Name: "source", Passthrough: true},
			rung("720p", 1280, 720, 2_800_000),
			rung("480p", 854, 480, 1_400_000),
			rung("360p", 640, 360, 800_000),
		},
	}
}

// Ladder returns the ladder template called name.
func (c *Config) Ladder(name string) (*transcoder.Template, bool) {
	for i := range c.Ladders {
		if c.Ladders[i].Name == name {
			return &c.Ladders[i], true
		}
	}
	return nil, false
}

// LadderFor returns the ladder of the first ladder rule that matches the
// full stream name (such as "live/cam1"), or "" when none does.
func (c *Config) LadderFor(streamName string) string {
	for _, r := range c.LadderRules {
		if ok, err := path.Match(r.Match, streamName); err == nil && ok {
			return r.Ladder
		}
	}
	return ""
}

// DefaultApplication returns an application with the default rules: no
// keys, publishing from loopback allowed, no takeover, and the ladder and
// record parameters allowed. Fields an application entry in the file leaves
// out keep these values.
func DefaultApplication(name string) Application {
	return Application{
		Name:                    name,
		Keys:                    []string{},
		AllowLoopbackWithoutKey: true,
		AllowLadderParam:        true,
		AllowRecordParam:        true,
	}
}
