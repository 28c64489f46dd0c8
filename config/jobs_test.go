package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/vod"
)

func TestJobsDefaults(t *testing.T) {
	cfg := Default()
	want := Jobs{
		Enabled:       true,
		DBPath:        "data/mps.db",
		Dir:           "data/jobs",
		Workers:       1,
		Timeout:       6 * time.Hour,
		MaxAttempts:   3,
		MediaRoots:    []string{"data/media"},
		URLInputs:     URLInputs{AllowedHosts: []string{}, MaxSize: 10737418240},
		Webhooks:      Webhooks{Timeout: 10 * time.Second, MaxAttempts: 20, BackoffMax: 10 * time.Minute, Endpoints: []WebhookEndpoint{}},
		Workflows:     []Workflow{},
		WatchInterval: 5 * time.Second,
	}
	if !reflect.DeepEqual(cfg.Jobs, want) {
		t.Errorf("jobs = %+v, want %+v", cfg.Jobs, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestJobsSection(t *testing.T) {
	path := writeConfig(t, `
jobs:
  enabled: true
  db_path: /var/lib/mps/mps.db
  dir: /srv/jobs
  workers: 4
  timeout: 30m
  max_attempts: 5
  media_roots: [/srv/media, uploads]
  url_inputs:
    allowed_hosts: [media.example.com, "*", 10.0.0.7, "::1"]
    allow_private: true
    max_size: 1000000
  webhooks: {timeout: 3s, max_attempts: 5, backoff_max: 1m}
  watch_interval: 1s
  workflows:
    - name: archive-mp4
      on: recording.finished
      match: "live/*"
      priority: 3
      output: archive
      notify: {url: "https://hooks.example.com/mps", mode: change, key: k}
      tasks:
        - {type: transcode, template: mp4-720p, params: {video: {bitrate: 1000000}, container: mp4}}
        - type: sprite
    - name: drop-folder
      on: file
      folder: incoming
      tasks:
        - {type: adaptive, template: adaptive-default}
`)
	cfg, err := load(t, path)
	if err != nil {
		t.Fatal(err)
	}
	want := Jobs{
		Enabled: true, DBPath: "/var/lib/mps/mps.db", Dir: "/srv/jobs", Workers: 4, Timeout: 30 * time.Minute, MaxAttempts: 5,
		MediaRoots:    []string{"/srv/media", "uploads"},
		URLInputs:     URLInputs{AllowedHosts: []string{"media.example.com", "*", "10.0.0.7", "::1"}, AllowPrivate: true, MaxSize: 1_000_000},
		Webhooks:      Webhooks{Timeout: 3 * time.Second, MaxAttempts: 5, BackoffMax: time.Minute, Endpoints: []WebhookEndpoint{}},
		WatchInterval: time.Second,
		Workflows: []Workflow{
			{Name: "archive-mp4", On: "recording.finished", Match: "live/*", Priority: 3, Output: "archive",
				Notify: &WorkflowNotify{URL: "https://hooks.example.com/mps", Mode: "change", Key: "k"},
				Tasks: []WorkflowTask{
					{Type: "transcode", Template: "mp4-720p", Params: map[string]any{"video": map[string]any{"bitrate": 1000000}, "container": "mp4"}},
					{Type: "sprite"},
				}},
			{Name: "drop-folder", On: "file", Folder: "incoming", Tasks: []WorkflowTask{{Type: "adaptive", Template: "adaptive-default"}}},
		},
	}
	if !reflect.DeepEqual(cfg.Jobs, want) {
		t.Errorf("jobs:\n got %+v\nwant %+v", cfg.Jobs, want)
	}

	// What the engine gets.
	wfs, err := cfg.Jobs.VODWorkflows()
	if err != nil {
		t.Fatal(err)
	}
	if len(wfs) != 2 {
		t.Fatalf("workflows %+v", wfs)
	}
	w := wfs[0]
	if w.Name != "archive-mp4" || w.On != vod.OnRecordingFinished || w.Match != "live/*" || w.Priority != 3 || w.Output != "archive" ||
		w.Notify == nil || *w.Notify != (vod.Notify{URL: "https://hooks.example.com/mps", Mode: vod.NotifyChange, Key: "k"}) || len(w.Tasks) != 2 {
		t.Errorf("vod workflow = %+v", w)
	}
	var params map[string]any
	if err := json.Unmarshal(w.Tasks[0].Params, &params); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(params, map[string]any{"video": map[string]any{"bitrate": 1e6}, "container": "mp4"}) {
		t.Errorf("params %s", w.Tasks[0].Params)
	}
	if w.Tasks[1].Params != nil || w.Tasks[1].Type != vod.TaskSprite {
		t.Errorf("task without params = %+v", w.Tasks[1])
	}
	if d := wfs[1]; d.On != vod.OnFile || d.Folder != "incoming" || d.Notify != nil {
		t.Errorf("file workflow = %+v", d)
	}
}

func TestJobsDisabledIsNotChecked(t *testing.T) {
	cfg, err := load(t, writeConfig(t, "jobs: {enabled: false, db_path: \"\", workers: 0}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Jobs.Enabled {
		t.Error("enabled")
	}
}

func TestJobsEnv(t *testing.T) {
	cfg, err := load(t, "../configs/mps.yaml",
		"MPS_JOBS_ENABLED=false",
		"MPS_JOBS_DB_PATH=/db/mps.db",
		"MPS_JOBS_DIR=/out",
		"MPS_JOBS_WORKERS=3",
		"MPS_JOBS_TIMEOUT=2h",
		"MPS_JOBS_MAX_ATTEMPTS=7",
		"MPS_JOBS_URL_INPUTS_ALLOW_PRIVATE=true",
		"MPS_JOBS_URL_INPUTS_MAX_SIZE=12345",
		"MPS_JOBS_WEBHOOKS_TIMEOUT=1s",
		"MPS_JOBS_WEBHOOKS_MAX_ATTEMPTS=2",
		"MPS_JOBS_WEBHOOKS_BACKOFF_MAX=30s",
		"MPS_JOBS_WATCH_INTERVAL=250ms",
	)
	if err != nil {
		t.Fatal(err)
	}
	want := Jobs{
		DBPath: "/db/mps.db", Dir: "/out", Workers: 3, Timeout: 2 * time.Hour, MaxAttempts: 7,
		MediaRoots:    []string{"data/media"},
		URLInputs:     URLInputs{AllowedHosts: []string{}, AllowPrivate: true, MaxSize: 12345},
		Webhooks:      Webhooks{Timeout: time.Second, MaxAttempts: 2, BackoffMax: 30 * time.Second, Endpoints: []WebhookEndpoint{}},
		Workflows:     []Workflow{},
		WatchInterval: 250 * time.Millisecond,
	}
	if !reflect.DeepEqual(cfg.Jobs, want) {
		t.Errorf("jobs:\n got %+v\nwant %+v", cfg.Jobs, want)
	}
	names := strings.Join(EnvNames(), " ")
	for _, want := range []string{"MPS_JOBS_ENABLED", "MPS_JOBS_DB_PATH", "MPS_JOBS_URL_INPUTS_MAX_SIZE", "MPS_JOBS_WEBHOOKS_BACKOFF_MAX", "MPS_JOBS_WATCH_INTERVAL"} {
		if !strings.Contains(names, want) {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
	for _, list := range []string{"MPS_JOBS_WORKFLOWS", "MPS_JOBS_MEDIA_ROOTS", "MPS_JOBS_URL_INPUTS_ALLOWED_HOSTS"} {
		if strings.Contains(names, list) {
			t.Errorf("EnvNames lists %s", list)
		}
	}

	_, err = load(t, "../configs/mps.yaml", "MPS_JOBS_WORKERS=many")
	mustFail(t, err, "MPS_JOBS_WORKERS", "many")
	_, err = load(t, "../configs/mps.yaml", "MPS_JOBS_TIMEOUT=0s")
	mustFail(t, err, "jobs.timeout 0s: must be more than 0")
}

func TestJobsKeysAreNamed(t *testing.T) {
	cases := map[string][]string{
		"jobs:\n  worker: 2\n":                       {`unknown key "jobs.worker"`, "known keys in jobs:", "workers"},
		"jobs:\n  url_inputs: {allowed_host: [x]}\n": {`unknown key "jobs.url_inputs.allowed_host"`},
		"jobs:\n  webhooks: {retries: 3}\n":          {`unknown key "jobs.webhooks.retries"`},
		"jobs:\n  workflows: {name: x}\n":            {"jobs.workflows must be a list"},
		"jobs:\n  workflows: [x]\n":                  {"jobs.workflows[0] must be a map"},
		"jobs:\n  timeout: 3600\n":                   {"jobs.timeout", "no unit"},
		"jobs:\n  workflows:\n    - {name: a, on: file, folder: in, tasks: [{type: transcode}], trigger: x}\n": {
			`unknown key "jobs.workflows[0].trigger"`, "known keys in jobs.workflows[0]: bucket, folder, match, name, notify, on, output, prefix, priority, tasks"},
		"jobs:\n  workflows:\n    - {name: a, on: file, folder: in, tasks: [{type: transcode, templat: x}]}\n": {
			`unknown key "jobs.workflows[0].tasks[0].templat"`, "params, template, type"},
		"jobs:\n  workflows:\n    - {name: a, on: file, folder: in, tasks: [{type: transcode}], notify: {uri: x}}\n": {
			`unknown key "jobs.workflows[0].notify.uri"`},
		"jobs:\n  workflows:\n    - {name: a, on: file, folder: in, tasks: [{type: transcode}], priority: high}\n": {
			"jobs.workflows[0].priority"},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestInvalidJobs(t *testing.T) {
	wf := func(fields string) string {
		return "jobs:\n  workflows:\n    - {" + fields + "}\n"
	}
	cases := map[string][]string{
		"jobs: {db_path: \"\"}\n":                                        {"jobs.db_path: must be set"},
		"jobs: {dir: \" \"}\n":                                           {"jobs.dir: must be set"},
		"jobs: {dir: data, db_path: data/x/mps.db}\n":                    {`jobs.db_path "data/x/mps.db": must not be inside jobs.dir "data"`, "/outputs/"},
		"jobs: {workers: 0}\n":                                           {"jobs.workers 0: must be at least 1"},
		"jobs: {timeout: -1s}\n":                                         {"jobs.timeout -1s: must be more than 0"},
		"jobs: {max_attempts: 0}\n":                                      {"jobs.max_attempts 0: must be at least 1"},
		"jobs: {media_roots: [data/media, \"\"]}\n":                      {"jobs.media_roots[1]: must not be empty"},
		"jobs: {url_inputs: {allowed_hosts: [\"https://x.example\"]}}\n": {`jobs.url_inputs.allowed_hosts[0] "https://x.example": want a host name`},
		"jobs: {url_inputs: {allowed_hosts: [\"x.example:8080\"]}}\n":    {`jobs.url_inputs.allowed_hosts[0] "x.example:8080"`},
		"jobs: {url_inputs: {allowed_hosts: [\"\"]}}\n":                  {"jobs.url_inputs.allowed_hosts[0]"},
		"jobs: {url_inputs: {max_size: 0}}\n":                            {"jobs.url_inputs.max_size 0: must be more than 0 bytes"},
		"jobs: {webhooks: {timeout: 0s}}\n":                              {"jobs.webhooks.timeout 0s: must be more than 0"},
		"jobs: {webhooks: {max_attempts: 0}}\n":                          {"jobs.webhooks.max_attempts 0: must be at least 1"},
		"jobs: {webhooks: {backoff_max: 0s}}\n":                          {"jobs.webhooks.backoff_max 0s: must be more than 0"},
		"jobs: {watch_interval: 0s}\n":                                   {"jobs.watch_interval 0s: must be more than 0"},
		"applications:\n  - name: live\n  - name: outputs\n":             {`applications[1] (outputs).name "outputs": reserved`},

		wf("name: a, on: never, tasks: [{type: transcode}]"):                                                          {`jobs.workflows[0] (a).on "never": want recording.finished, recording.file_completed, file or s3`},
		wf("on: file, folder: in, tasks: [{type: transcode}]"):                                                        {`jobs.workflows[0].name "": use 1 to 64 letters`},
		wf("name: \"a b\", on: file, folder: in, tasks: [{type: transcode}]"):                                         {`jobs.workflows[0] (a b).name "a b"`},
		wf("name: a, on: recording.finished, tasks: [{type: transcode}]"):                                             {"jobs.workflows[0] (a).match: must be set for on recording.finished"},
		wf("name: a, on: recording.finished, match: cam*, tasks: [{type: transcode}]"):                                {`jobs.workflows[0] (a).match "cam*": matches no stream`},
		wf("name: a, on: recording.finished, match: \"live/[\", tasks: [{type: snapshot}]"):                           {`jobs.workflows[0] (a).match "live/["`},
		wf("name: a, on: recording.finished, match: live/*, folder: in, tasks: [{type: transcode}]"):                  {`jobs.workflows[0] (a).folder "in": only for on file`},
		wf("name: a, on: file, tasks: [{type: transcode}]"):                                                           {"jobs.workflows[0] (a).folder: must be set for on file"},
		wf("name: a, on: file, folder: ../etc, tasks: [{type: transcode}]"):                                           {`jobs.workflows[0] (a).folder "../etc": must be inside one of jobs.media_roots`},
		wf("name: a, on: file, folder: in, match: live/*, tasks: [{type: transcode}]"):                                {`jobs.workflows[0] (a).match "live/*": only for on recording.finished or recording.file_completed`},
		wf("name: a, on: file, folder: in, tasks: []"):                                                                {"jobs.workflows[0] (a).tasks: list at least one task"},
		wf("name: a, on: file, folder: in"):                                                                           {"jobs.workflows[0] (a).tasks: list at least one task"},
		wf("name: a, on: file, folder: in, tasks: [{type: juggle}]"):                                                  {`jobs.workflows[0] (a).tasks[0].type "juggle": want one of transcode, adaptive`},
		wf("name: a, on: file, folder: in, tasks: [{type: transcode, template: \"../x\"}]"):                           {`jobs.workflows[0] (a).tasks[0].template "../x"`},
		wf("name: a, on: file, folder: in, output: ../x, tasks: [{type: transcode}]"):                                 {`jobs.workflows[0] (a).output "../x": must be a relative folder name`},
		wf("name: a, on: file, folder: in, priority: 5, tasks: [{type: transcode}]"):                                  {"jobs.workflows[0] (a).priority 5: must be 1 (first) to 4 (last)"},
		wf("name: a, on: file, folder: in, notify: {url: ftp://x}, tasks: [{type: transcode}]"):                       {`jobs.workflows[0] (a).notify.url "ftp://x"`},
		wf("name: a, on: file, folder: in, notify: {url: \"http://x\", mode: always}, tasks: [{type: transcode}]"):    {`jobs.workflows[0] (a).notify.mode "always": want finish or change`},
		"jobs:\n  media_roots: []\n  workflows:\n    - {name: a, on: file, folder: in, tasks: [{type: transcode}]}\n": {"jobs.media_roots is empty"},
		"jobs:\n  workflows:\n    - {name: a, on: file, folder: in, tasks: [{type: transcode}]}\n    - {name: a, on: file, folder: in, tasks: [{type: transcode}]}\n": {
			`jobs.workflows[1] (a).name "a": already used by jobs.workflows[0]`},
	}
	for body, want := range cases {
		_, err := load(t, writeConfig(t, body))
		mustFail(t, err, want...)
	}
}

func TestJobsProblemsAreAllReported(t *testing.T) {
	_, err := load(t, writeConfig(t, "jobs: {workers: 0, timeout: 0s, webhooks: {max_attempts: 0}, workflows: [{name: x, on: y}]}\n"))
	mustFail(t, err, "jobs.workers", "jobs.timeout", "jobs.webhooks.max_attempts", "jobs.workflows[0] (x).on", "jobs.workflows[0] (x).tasks")
}

func TestWebhookEndpoints(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
jobs:
  webhooks:
    endpoints:
      - url: https://hooks.example.com/mps
        key: k
        events: ["recording.", "job.finished"]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []WebhookEndpoint{{URL: "https://hooks.example.com/mps", Key: "k", Events: []string{"recording.", "job.finished"}}}
	if !reflect.DeepEqual(cfg.Jobs.Webhooks.Endpoints, want) {
		t.Fatalf("endpoints %+v, want %+v", cfg.Jobs.Webhooks.Endpoints, want)
	}
	_, err = load(t, writeConfig(t, `
jobs:
  webhooks:
    endpoints:
      - url: ftp://x/y
`))
	mustFail(t, err, `jobs.webhooks.endpoints[0].url "ftp://x/y": want an http or https URL`)
}
