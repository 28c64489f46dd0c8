package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPullDefaults(t *testing.T) {
	d := Default()
	want := Pull{BackoffMin: time.Second, BackoffMax: 30 * time.Second, StableAfter: time.Minute,
		ReadTimeout: 10 * time.Second, Sources: []PullSource{}}
	if !reflect.DeepEqual(d.Pull, want) {
		t.Fatalf("pull defaults %+v", d.Pull)
	}
	cfg, err := load(t, "../configs/mps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Pull, d.Pull) {
		t.Fatalf("configs/mps.yaml pull %+v, Default %+v", cfg.Pull, d.Pull)
	}
}

func TestPullSection(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
pull:
  backoff_min: 500ms
  backoff_max: 5s
  stable_after: 20s
  read_timeout: 3s
  sources:
    - name: live/cam9
      url: rtsp://admin:pw@192.168.1.64:554/ch1
      rtsp_transport: tcp
    - {name: live/relay, url: "rtmp://origin.example.com/live/s1", on_demand: false}
    - {name: live/srt, url: "srt://10.0.0.1:8890?streamid=read:live/x"}
    - {name: live/hls, url: "https://cdn.example.com/live/index.m3u8"}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Pull{BackoffMin: 500 * time.Millisecond, BackoffMax: 5 * time.Second, StableAfter: 20 * time.Second,
		ReadTimeout: 3 * time.Second, Sources: []PullSource{
			{Name: "live/cam9", URL: "rtsp://admin:pw@192.168.1.64:554/ch1", RTSPTransport: "tcp"},
			{Name: "live/relay", URL: "rtmp://origin.example.com/live/s1"},
			{Name: "live/srt", URL: "srt://10.0.0.1:8890?streamid=read:live/x"},
			{Name: "live/hls", URL: "https://cdn.example.com/live/index.m3u8"},
		}}
	if !reflect.DeepEqual(cfg.Pull, want) {
		t.Fatalf("got %+v", cfg.Pull)
	}
}

func TestPullEnv(t *testing.T) {
	cfg, err := load(t, "../configs/mps.yaml", "MPS_PULL_BACKOFF_MAX=1m", "MPS_PULL_READ_TIMEOUT=4s")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pull.BackoffMax != time.Minute || cfg.Pull.ReadTimeout != 4*time.Second {
		t.Fatalf("got %+v", cfg.Pull)
	}
}

func TestPullValidation(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"pull: {backoff_min: 0s}", "pull.backoff_min"},
		{"pull: {backoff_min: 10s, backoff_max: 5s}", "pull.backoff_max"},
		{"pull: {stable_after: -1s}", "pull.stable_after"},
		{"pull: {read_timeout: 0s}", "pull.read_timeout"},
		{"pull: {sources: [{name: live/a}]}", "pull.sources[0] (live/a): url: empty"},
		{"pull: {sources: [{name: live/a, url: 'ftp://h/x'}]}", `scheme "ftp"`},
		{"pull: {sources: [{name: live/a, url: 'rtsp:///x'}]}", "has no host"},
		{"pull: {sources: [{name: live/a, url: 'srt://h'}]}", "needs a port"},
		{"pull: {sources: [{name: 'bad name', url: 'rtsp://h/x'}]}", "name"},
		{"pull: {sources: [{name: other/a, url: 'rtsp://h/x'}]}", `application "other" is not in applications`},
		{"pull: {sources: [{name: live/a, url: 'rtsp://h/x'}, {name: live/a, url: 'rtsp://h/y'}]}", "the same name as pull.sources[0]"},
		{"pull: {sources: [{name: live/a, url: 'rtsp://h/x', on_demand: true}]}", "on_demand: true is not supported"},
		{"pull: {sources: [{name: live/a, url: 'rtsp://h/x', rtsp_transport: quic}]}", "rtsp_transport"},
	} {
		_, err := load(t, writeConfig(t, c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.body, err, c.want)
		}
	}
}
