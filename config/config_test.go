package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/transcoder"
)

// writeConfig writes body to a temporary mps.yaml and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mps.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, path string, env ...string) (*Config, error) {
	t.Helper()
	if env == nil {
		env = []string{}
	}
	return Load(LoadOptions{Path: path, Environ: env})
}

func mustFail(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

func TestShippedFileIsTheDefault(t *testing.T) {
	cfg, err := load(t, "../configs/mps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Source = "../configs/mps.yaml"
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("configs/mps.yaml differs from Default():\n got %+v\nwant %+v", *cfg, want)
	}
}

func TestMissingDefaultFileUsesDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	cfg, err := Load(LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != "" || cfg.HTTP.Address != ":8080" || cfg.RTMP.Address != ":1935" {
		t.Errorf("got %+v, want the defaults", cfg)
	}
}

func TestMissingNamedFileFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := load(t, missing)
	mustFail(t, err, "nope.yaml", "no such file")

	_, err = Load(LoadOptions{Environ: []string{"MPS_CONFIG=" + missing}})
	mustFail(t, err, "nope.yaml")
}

func TestConfigPathFromEnv(t *testing.T) {
	path := writeConfig(t, "http: {address: \"127.0.0.1:9000\"}\n")
	cfg, err := Load(LoadOptions{Environ: []string{"MPS_CONFIG=" + path}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Address != "127.0.0.1:9000" || cfg.Source != path {
		t.Errorf("got http.address %q from %q", cfg.HTTP.Address, cfg.Source)
	}
}

func TestFileOverridesOnlyWhatItNames(t *testing.T) {
	path := writeConfig(t, `
rtmp:
  address: "127.0.0.1:19350"
hub:
  grace_period: 0s
packager:
  segment_duration: 4s
  part_duration: 500ms
`)
	cfg, err := load(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RTMP.Address != "127.0.0.1:19350" || !cfg.RTMP.Enabled {
		t.Errorf("rtmp = %+v", cfg.RTMP)
	}
	if cfg.Hub.GracePeriod != 0 || cfg.Hub.ReaderQueue != 2048 {
		t.Errorf("hub = %+v", cfg.Hub)
	}
	if cfg.Packager.SegmentDuration != 4*time.Second || cfg.Packager.PartDuration != 500*time.Millisecond || cfg.Packager.Linger != time.Minute {
		t.Errorf("packager = %+v", cfg.Packager)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	path := writeConfig(t, "api: {token: from-file}\nlog: {level: warn}\n")
	cfg, err := load(t, path,
		"MPS_RTMP_ADDRESS=127.0.0.1:0",
		"MPS_HTTP_ADDRESS=127.0.0.1:18080",
		"MPS_API_TOKEN=from-env",
		"MPS_LOG_LEVEL=debug",
		"MPS_HUB_GRACE_PERIOD=3s",
		"MPS_PACKAGER_PLAYLIST_SEGMENTS=4",
		"MPS_RTMP_ENABLED=false",
		"MPS_UNRELATED=1",
		"HOME=/root",
	)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.RTMP.Address, cfg.HTTP.Address, cfg.API.Token, cfg.Log.Level, cfg.Hub.GracePeriod, cfg.Packager.PlaylistSegments, cfg.RTMP.Enabled}
	want := []any{"127.0.0.1:0", "127.0.0.1:18080", "from-env", "debug", 3 * time.Second, 4, false}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestEmptyEnvIsIgnored(t *testing.T) {
	path := writeConfig(t, "api: {token: from-file}\n")
	cfg, err := load(t, path, "MPS_API_TOKEN=")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.API.Token != "from-file" {
		t.Errorf("token = %q, want from-file", cfg.API.Token)
	}
}

func TestBadEnvNamesTheVariable(t *testing.T) {
	_, err := load(t, "../configs/mps.yaml", "MPS_HUB_READER_QUEUE=lots")
	mustFail(t, err, "environment", "MPS_HUB_READER_QUEUE", "lots")
	_, err = load(t, "../configs/mps.yaml", "MPS_HTTP_ADDRESS=8080")
	mustFail(t, err, "http.address", "8080")
}

func TestUnknownKeysAreNamed(t *testing.T) {
	cases := map[string][]string{
		"colour: red\n":                                {`unknown key "colour"`, "known keys: admission, ai, api, applications"},
		"hub:\n  gracePeriod: 5s\n":                    {`unknown key "hub.gracePeriod"`, "in hub", "grace_period"},
		"rtmp:\n  address: \":1935\"\n  port: 1935\n":  {`unknown key "rtmp.port"`},
		"applications:\n  - name: live\n    nmae: x\n": {`unknown key "nmae"`, "applications[0]", "allow_loopback_without_key"},
		"Log:\n  level: info\n":                        {`unknown key "Log.level"`},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestApplicationEntriesStartFromDefaults(t *testing.T) {
	path := writeConfig(t, `
applications:
  - name: live
  - name: studio
    keys: [k1, k2]
    signing_secret: 0123456789abcdef
    allow_loopback_without_key: false
    takeover: true
`)
	cfg, err := load(t, path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Application{
		DefaultApplication("live"),
		{Name: "studio", Keys: []string{"k1", "k2"}, SigningSecret: "0123456789abcdef", Takeover: true, AllowLadderParam: true, AllowRecordParam: true},
	}
	if !reflect.DeepEqual(cfg.Applications, want) {
		t.Errorf("applications = %+v, want %+v", cfg.Applications, want)
	}
}

func TestInvalidValues(t *testing.T) {
	cases := map[string][]string{
		"packager: {part_duration: 2s}\n":                         {"packager.part_duration 2s", "shorter than packager.segment_duration 2s"},
		"packager: {segment_duration: 0s}\n":                      {"packager.segment_duration 0s: must be more than 0"},
		"packager: {linger: -1s}\n":                               {"packager.linger"},
		"packager: {playlist_segments: 0}\n":                      {"packager.playlist_segments"},
		"hub: {grace_period: 10}\n":                               {"hub.grace_period", "no unit"},
		"hub: {grace_period: -1s}\n":                              {"hub.grace_period"},
		"hub: {reader_queue: 100, gop_cache_limit: 200}\n":        {"hub.reader_queue 100", "larger than hub.gop_cache_limit 200"},
		"http: {address: localhost}\n":                            {"http.address", "missing port"},
		"http: {address: \":http\"}\n":                            {"http.address", "must be a number"},
		"rtmp: {address: \":99999\"}\n":                           {"rtmp.address", "0 to 65535"},
		"rtmp: {address: \":8080\"}\n":                            {"rtmp.address and http.address"},
		"log: {level: loud}\n":                                    {"log.level \"loud\""},
		"log: {format: xml}\n":                                    {"log.format"},
		"applications: []\n":                                      {"at least one application"},
		"applications:\n  - name: live\n  - name: live\n":         {"applications[1] (live).name \"live\": already used by applications[0]"},
		"applications:\n  - keys: [a]\n":                          {"applications[0].name: must be set"},
		"applications:\n  - name: a/b\n":                          {"without '/'"},
		"applications:\n  - name: \"..\"\n":                       {"invalid stream name"},
		"applications:\n  - name: x\n    signing_secret: short\n": {"signing_secret: too short"},
		"applications: live\n":                                    {"applications must be a list"},
		"hub: [1, 2]\n":                                           {"hub"},
		"log: {level: [x]\n":                                      {"read config"},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestAllProblemsAreReported(t *testing.T) {
	_, err := load(t, writeConfig(t, "log: {level: loud}\nhttp: {address: nope}\n"))
	mustFail(t, err, "log.level", "http.address")
}

func TestDisabledRTMPSkipsItsAddress(t *testing.T) {
	if _, err := load(t, writeConfig(t, "rtmp: {enabled: false, address: \"\"}\n")); err != nil {
		t.Fatal(err)
	}
}

func TestEnvNames(t *testing.T) {
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"MPS_CONFIG", "MPS_RTMP_ADDRESS", "MPS_HTTP_ADDRESS", "MPS_API_TOKEN", "MPS_LOG_LEVEL", "MPS_HUB_GOP_CACHE_LIMIT", "MPS_PACKAGER_LINGER"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames() = %s, missing %s", names, want)
		}
	}
	if strings.Contains(names, "APPLICATIONS") {
		t.Errorf("EnvNames() = %s, lists applications", names)
	}
}

func TestLadders(t *testing.T) {
	path := writeConfig(t, `
ladders:
  - name: hd
    upscale: true
    watermark:
      text: MPS
      position: bottom-left
      opacity: 0.5
    rungs:
      - name: src
        passthrough: true
      - name: 1080p
        video: {codec: h264, height: 1080, bitrate: 2.5M, maxrate: "3M", bufsize: 6000000, fps: 30, profile: high, preset: veryfast, gop: 1s}
        audio: {codec: opus, bitrate: 96k, sample_rate: 48000, channels: 1}
      - name: 540p
        video: {codec: h264, width: 960, bitrate: 128000, gop: 1s}
  - name: default
    rungs:
      - name: low
        video: {codec: h264, width: 320, bitrate: 300k}
        audio: {codec: none}
ladder_rules:
  - match: "live/cam-*"
    ladder: hd
  - match: "*/*"
    ladder: default
`)
	cfg, err := load(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Ladders) != 2 {
		t.Fatalf("ladders = %+v", cfg.Ladders)
	}
	hd := cfg.Ladders[0]
	want := transcoder.Template{
		Name:      "hd",
		Upscale:   true,
		Watermark: &transcoder.Watermark{Text: "MPS", Position: "bottom-left", Opacity: 0.5},
		Rungs: []transcoder.Rung{
			{Name: "src", Passthrough: true},
			{Name: "1080p",
				Video: transcoder.Video{Codec: "h264", Height: 1080, Bitrate: 2_500_000, MaxRate: 3_000_000, BufSize: 6_000_000, FPS: 30, Profile: "high", Preset: "veryfast", GOP: time.Second},
				Audio: transcoder.Audio{Codec: "opus", Bitrate: 96_000, SampleRate: 48000, Channels: 1}},
			{Name: "540p", Video: transcoder.Video{Codec: "h264", Width: 960, Bitrate: 128_000, GOP: time.Second}},
		},
	}
	if !reflect.DeepEqual(hd, want) {
		t.Errorf("ladder hd:\n got %+v\nwant %+v", hd, want)
	}
	wantRules := []LadderRule{{Match: "live/cam-*", Ladder: "hd"}, {Match: "*/*", Ladder: "default"}}
	if !reflect.DeepEqual(cfg.LadderRules, wantRules) {
		t.Errorf("rules = %+v", cfg.LadderRules)
	}
	for name, want := range map[string]string{"live/cam-1": "hd", "live/cam1": "default", "studio/x": "default", "live/cam-1/720p": "", "live": ""} {
		if got := cfg.LadderFor(name); got != want {
			t.Errorf("LadderFor(%s) = %q, want %q", name, got, want)
		}
	}
	if tpl, ok := cfg.Ladder("default"); !ok || tpl.Rungs[0].Name != "low" {
		t.Errorf("Ladder(default) = %+v, %v", tpl, ok)
	}
	if _, ok := cfg.Ladder("nope"); ok {
		t.Error("Ladder(nope) found")
	}
}

func TestDefaultLadder(t *testing.T) {
	cfg := Default()
	tpl, ok := cfg.Ladder(DefaultLadderName)
	if !ok {
		t.Fatal("no default ladder")
	}
	if err := tpl.Validate(nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range tpl.Rungs {
		names = append(names, r.Name)
		if !r.Passthrough && (r.Video.Codec != "h264" || r.Video.Preset != "superfast" || r.Audio.Codec != "aac" || r.Audio.Bitrate != 128_000) {
			t.Errorf("rung %+v", r)
		}
	}
	if strings.Join(names, " ") != "source 720p 480p 360p" || !tpl.Rungs[0].Passthrough {
		t.Errorf("rungs = %v", names)
	}
	if len(cfg.LadderRules) != 0 || cfg.LadderFor("live/cam1") != "" {
		t.Error("the default configuration transcodes without being asked")
	}
	// Default returns fresh values each time.
	a, b := Default(), Default()
	a.Ladders[0].Rungs[1].Name = "changed"
	if b.Ladders[0].Rungs[1].Name != "720p" {
		t.Error("Default shares its ladders")
	}
}

func TestLadderKeysAreNamed(t *testing.T) {
	cases := map[string][]string{
		"ladders:\n  - name: x\n    rungs:\n      - name: a\n      - name: b\n        video: {codec: h264, bitrat: 1k}\n": {
			`unknown key "ladders[0].rungs[1].video.bitrat"`, "known keys in ladders[0].rungs[1].video: bitrate, bufsize, codec"},
		"ladders:\n  - name: x\n    rugns: []\n":                  {`unknown key "ladders[0].rugns"`, "known keys in ladders[0]: name, rungs, upscale, watermark"},
		"ladders:\n  - name: x\n    watermark: {txt: hi}\n":       {`unknown key "ladders[0].watermark.txt"`},
		"ladders:\n  - name: x\n    rungs: [{name: a, audo: {}}]": {`unknown key "ladders[0].rungs[0].audo"`},
		"ladder_rules:\n  - match: live/*\n    ladr: default\n":   {`unknown key "ladder_rules[0].ladr"`, "known keys in ladder_rules[0]: ladder, match"},
		"transcoder:\n  thumbnails: {widht: 100}\n":               {`unknown key "transcoder.thumbnails.widht"`},
		"admission:\n  urll: http://x\n":                          {`unknown key "admission.urll"`, "on_error, timeout, url"},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestInvalidLadders(t *testing.T) {
	logo := filepath.Join(t.TempDir(), "logo.png")
	if err := os.WriteFile(logo, []byte("GIF89a"), 0o644); err != nil {
		t.Fatal(err)
	}
	rung := "rungs: [{name: a, video: {codec: h264, width: 640, bitrate: 1M}}]"
	cases := map[string][]string{
		"ladders:\n  - {name: x, " + rung + "}\n  - {name: x, " + rung + "}\n": {`ladders[1].name "x": already used by ladders[0]`},
		"ladders:\n  - name: default\n    rungs:\n      - {name: a, video: {codec: h263, width: 640, bitrate: 1M}}\n": {
			`ladders[0]: ladder "default": rungs[0].video.codec: unknown codec "h263" (want h264, h265, av1 or vp9)`},
		"ladders:\n  - {name: x, rungs: []}\n":                                                                 {`ladders[0]: ladder "x": rungs: list at least one rung`},
		"ladders:\n  - {name: x, watermark: {image: " + logo + "}, " + rung + "}\n":                            {`ladders[0]: ladder "x": watermark.image`, "not a PNG file"},
		"ladders:\n  - {name: x, rungs: [{name: a, video: {bitrate: fast}}]}\n":                                {"ladders[0].rungs[0].video.bitrate", `bitrate "fast": write it like 128000, 128k or 2.5M`},
		"ladders:\n  - {name: x, rungs: [{name: a, video: {width: wide}}]}\n":                                  {"ladders[0].rungs[0].video.width"},
		"ladders:\n  - {name: x, rungs: [{name: a, video: {codec: h264, width: 640, bitrate: 1M, gop: 2}}]}\n": {"ladders[0].rungs[0].video.gop", "no unit"},
		"ladders: {name: x}\n":                                                {"ladders must be a list"},
		"ladders: [x]\n":                                                      {"ladders[0] must be a map"},
		"ladders:\n  - {name: x, rungs: 3}\n":                                 {"ladders[0].rungs"},
		"ladder_rules:\n  - {match: live/*, ladder: hd}\n":                    {`ladder_rules[0].ladder "hd": no such ladder (known: default)`},
		"ladders: []\nladder_rules:\n  - {match: live/*, ladder: default}\n":  {`ladder_rules[0].ladder "default": no such ladder (there are none)`},
		"ladder_rules:\n  - {ladder: default}\n":                              {"ladder_rules[0].match: must be set"},
		"ladder_rules:\n  - {match: live/*}\n":                                {"ladder_rules[0].ladder: must be set"},
		"ladder_rules:\n  - {match: \"live/[\", ladder: default}\n":           {`ladder_rules[0].match "live/[": syntax error in pattern`},
		"ladder_rules:\n  - {match: \"cam*\", ladder: default}\n":             {`ladder_rules[0].match "cam*": matches no stream`, "cam*/*"},
		"ladder_rules: {match: x}\n":                                          {"ladder_rules must be a list"},
		"transcoder: {ffmpeg: \"\"}\n":                                        {"transcoder.ffmpeg: must be set"},
		"transcoder: {restart_backoff_max: 0s}\n":                             {"transcoder.restart_backoff_max 0s: must be more than 0"},
		"transcoder: {thumbnails: {interval: -1s}}\n":                         {"transcoder.thumbnails.interval -1s"},
		"transcoder: {thumbnails: {width: 321}}\n":                            {"transcoder.thumbnails.width 321: must be an even number from 16 to 3840"},
		"transcoder: {thumbnails: {store_interval: -1s}}\n":                   {"transcoder.thumbnails.store_interval -1s"},
		"transcoder: {thumbnails: {store_interval: 1s}}\n":                    {"transcoder.thumbnails.store_interval 1s: must be at least transcoder.thumbnails.interval 5s"},
		"transcoder: {thumbnails: {interval: 0s, store_interval: 10s}}\n":     {"thumbnails are off"},
		"transcoder: {thumbnails: {store_interval: 10s, store_path: \"\"}}\n": {"transcoder.thumbnails.store_path: must be set"},
		"admission: {url: \"ftp://x/\"}\n":                                    {`admission.url "ftp://x/": must start with http:// or https://`},
		"admission: {url: \"http://\"}\n":                                     {"admission.url", "has no host"},
		"admission: {url: \"http://a b/\"}\n":                                 {"admission.url", "not a URL"},
		"admission: {timeout: 0s}\n":                                          {"admission.timeout 0s: must be more than 0"},
		"admission: {on_error: ignore}\n":                                     {`admission.on_error "ignore": want deny or allow`},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestTranscoderAndAdmission(t *testing.T) {
	path := writeConfig(t, `
transcoder:
  ffmpeg: /opt/ffmpeg/bin/ffmpeg
  thumbnails: {interval: 2s, width: 160, store_interval: 1m, store_path: /var/lib/mps/thumbs}
admission:
  url: https://hooks.example.com/publish
  on_error: allow
`)
	cfg, err := load(t, path, "MPS_ADMISSION_TIMEOUT=500ms", "MPS_TRANSCODER_RESTART_BACKOFF_MAX=1m")
	if err != nil {
		t.Fatal(err)
	}
	wantT := Transcoder{FFmpeg: "/opt/ffmpeg/bin/ffmpeg", RestartBackoffMax: time.Minute,
		Thumbnails: Thumbnails{Interval: 2 * time.Second, Width: 160, StoreInterval: time.Minute, StorePath: "/var/lib/mps/thumbs"}}
	if cfg.Transcoder != wantT {
		t.Errorf("transcoder = %+v", cfg.Transcoder)
	}
	wantA := Admission{URL: "https://hooks.example.com/publish", Timeout: 500 * time.Millisecond, OnError: OnErrorAllow}
	if cfg.Admission != wantA {
		t.Errorf("admission = %+v", cfg.Admission)
	}

	cfg, err = load(t, "../configs/mps.yaml", "MPS_TRANSCODER_FFMPEG=/usr/local/bin/ffmpeg", "MPS_ADMISSION_URL=http://127.0.0.1:9000/hook",
		"MPS_ADMISSION_ON_ERROR=allow", "MPS_TRANSCODER_THUMBNAILS_STORE_PATH=/tmp/t", "MPS_TRANSCODER_THUMBNAILS_WIDTH=640")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transcoder.FFmpeg != "/usr/local/bin/ffmpeg" || cfg.Admission.URL != "http://127.0.0.1:9000/hook" || cfg.Admission.OnError != "allow" ||
		cfg.Transcoder.Thumbnails.StorePath != "/tmp/t" || cfg.Transcoder.Thumbnails.Width != 640 {
		t.Errorf("env overrides: %+v %+v", cfg.Transcoder, cfg.Admission)
	}
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"MPS_TRANSCODER_FFMPEG", "MPS_TRANSCODER_THUMBNAILS_STORE_INTERVAL", "MPS_ADMISSION_ON_ERROR"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
	if strings.Contains(names, "LADDER") {
		t.Errorf("EnvNames lists ladders: %s", names)
	}
}
