// Package config loads MPS's configuration: a YAML file (configs/mps.yaml by
// default) with environment variables on top. Unknown keys are an error, and
// every value is checked before the server starts.
package config

import "time"

// DefaultPath is where `mps serve` looks for its configuration file when
// neither --config nor MPS_CONFIG names one.
const DefaultPath = "configs/mps.yaml"

// Config is the whole configuration of an MPS server.
type Config struct {
	Log          Log           `koanf:"log"`
	RTMP         RTMP          `koanf:"rtmp"`
	HTTP         HTTP          `koanf:"http"`
	API          API           `koanf:"api"`
	Hub          Hub           `koanf:"hub"`
	Packager     Packager      `koanf:"packager"`
	Applications []Application `koanf:"applications"`

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
	}
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
