package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary files to Load: it must return a configuration
// that validates, or an error, and never panic.
func FuzzLoad(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input, and each try
	// writes and loads a file.
	for _, s := range []string{
		"log: {level: debug, format: json}\nrtmp: {enabled: true, address: \":1935\"}\nhttp: {address: \"127.0.0.1:0\"}",
		"hub: {grace_period: 0s, reader_queue: 10, gop_cache_limit: 5}\npackager: {segment_duration: 1s, part_duration: 100ms}",
		"applications:\n  - name: live\n    keys: [k]\n    signing_secret: 0123456789abcdef\n    takeover: true",
		"ladders:\n  - name: x\n    rungs:\n      - {name: a, passthrough: true}\n      - {name: b, video: {codec: h264, width: 640, bitrate: 1M, gop: 2s}, audio: {bitrate: 64k}}",
		"ladder_rules:\n  - {match: live/*, ladder: default}\ntranscoder: {thumbnails: {store_interval: 10s}}\nadmission: {url: \"http://h/\", on_error: allow}",
		"", "hub: {grace_period: 10}", "applications: [{name: x}]", "log: [", "a:\n  b:\n    c: 1"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		path := filepath.Join(dir, "mps.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(LoadOptions{Path: path, Environ: []string{}})
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load returned a configuration that does not validate: %v", err)
		}
	})
}
