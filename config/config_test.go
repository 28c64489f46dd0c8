package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
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
		"colour: red\n":                                {`unknown key "colour"`, "known keys: api, applications"},
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
