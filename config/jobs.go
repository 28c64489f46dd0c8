package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mps-dev/mps/vod"
)

// Jobs configures the VOD job engine: its database and output folder, its
// workers, where inputs may come from, webhook delivery and the workflows
// that submit jobs by themselves.
type Jobs struct {
	// Enabled runs the job engine; false answers the job API with 501.
	Enabled bool `koanf:"enabled"`
	// DBPath is the SQLite database of jobs, templates, workflows, the
	// queue and the webhook outbox.
	DBPath string `koanf:"db_path"`
	// Dir is the folder job outputs go below, one folder per job. The
	// HTTP listener serves it at /outputs/ without a token.
	Dir string `koanf:"dir"`
	// Workers is how many jobs run at once.
	Workers int `koanf:"workers"`
	// Timeout bounds one attempt of a job.
	Timeout time.Duration `koanf:"timeout"`
	// MaxAttempts bounds the attempts of a job that fails for a reason
	// other than bad input.
	MaxAttempts int `koanf:"max_attempts"`
	// MediaRoots are the folders a job's input.path may name files in.
	MediaRoots []string  `koanf:"media_roots"`
	URLInputs  URLInputs `koanf:"url_inputs"`
	Webhooks   Webhooks  `koanf:"webhooks"`
	// Workflows submit jobs when a recording finishes or a file appears;
	// the API lists them as built in (read-only).
	Workflows []Workflow `koanf:"workflows"`
	// WatchInterval is how often the folders of file workflows are
	// scanned.
	WatchInterval time.Duration `koanf:"watch_interval"`
}

// URLInputs configures the inputs jobs download.
type URLInputs struct {
	// AllowedHosts are the host names a URL input may name; "*" allows any
	// public host. Empty refuses every URL.
	AllowedHosts []string `koanf:"allowed_hosts"`
	// AllowPrivate lets URLs reach loopback and private addresses.
	AllowPrivate bool `koanf:"allow_private"`
	// MaxSize bounds a downloaded input, in bytes.
	MaxSize int64 `koanf:"max_size"`
}

// Webhooks configures the delivery of job events to the notify URLs.
type Webhooks struct {
	// Timeout bounds each delivery attempt.
	Timeout time.Duration `koanf:"timeout"`
	// MaxAttempts bounds the deliveries of one event.
	MaxAttempts int `koanf:"max_attempts"`
	// BackoffMax bounds the delay between attempts, which doubles after
	// each failure up to this.
	BackoffMax time.Duration `koanf:"backoff_max"`
	// Endpoints receive the server's events (jobs, recordings, streams)
	// whatever job they belong to.
	Endpoints []WebhookEndpoint `koanf:"endpoints"`
}

// WebhookEndpoint is a receiver of server events.
type WebhookEndpoint struct {
	URL string `koanf:"url"`
	// Key signs each body (X-MPS-Signature: sha256=HMAC-SHA256 in hex).
	Key string `koanf:"key"`
	// Events are event types, or prefixes ending in "." such as
	// "recording."; empty sends every event.
	Events []string `koanf:"events"`
}

// Workflow is a configured vod.Workflow: a rule that submits a job.
type Workflow struct {
	Name string `koanf:"name"`
	// On is WorkflowOnRecordingFinished, WorkflowOnRecordingFile or
	// WorkflowOnFile.
	On string `koanf:"on"`
	// Match is a path.Match glob on the stream name, for the recording
	// triggers.
	Match string `koanf:"match"`
	// Folder is the watched folder inside a media root, for WorkflowOnFile.
	Folder string `koanf:"folder"`
	// Bucket and Prefix are the watched objects, for WorkflowOnS3.
	Bucket   string          `koanf:"bucket"`
	Prefix   string          `koanf:"prefix"`
	Tasks    []WorkflowTask  `koanf:"tasks"`
	Output   string          `koanf:"output"`
	Priority int             `koanf:"priority"`
	Notify   *WorkflowNotify `koanf:"notify"`
}

// WorkflowTask is one task of a workflow's jobs: a template of its type
// with fields overridden by Params.
type WorkflowTask struct {
	Type     string         `koanf:"type"`
	Template string         `koanf:"template"`
	Params   map[string]any `koanf:"params"`
}

// WorkflowNotify is where the events of a workflow's jobs go.
type WorkflowNotify struct {
	URL  string `koanf:"url"`
	Mode string `koanf:"mode"`
	Key  string `koanf:"key"`
}

// Values of a workflow's on.
const (
	WorkflowOnRecordingFinished = vod.OnRecordingFinished
	WorkflowOnRecordingFile     = vod.OnRecordingFile
	WorkflowOnFile              = vod.OnFile
	WorkflowOnS3                = vod.OnS3
)

// jobTaskTypes are the task types a workflow may list.
var jobTaskTypes = []string{vod.TaskTranscode, vod.TaskAdaptive, vod.TaskSnapshot, vod.TaskSprite,
	vod.TaskAnimated, vod.TaskEnhance, vod.TaskQuality}

// DefaultJobs returns the jobs section of Default: the engine on, its
// database and outputs in data/, one worker, 6 h per attempt, 3 attempts,
// inputs from data/media, no URL inputs and no workflows.
func DefaultJobs() Jobs {
	return Jobs{
		Enabled:     true,
		DBPath:      "data/mps.db",
		Dir:         "data/jobs",
		Workers:     1,
		Timeout:     6 * time.Hour,
		MaxAttempts: 3,
		MediaRoots:  []string{"data/media"},
		URLInputs: URLInputs{
			AllowedHosts: []string{},
			MaxSize:      10 << 30,
		},
		Webhooks: Webhooks{
			Timeout:     10 * time.Second,
			MaxAttempts: 20,
			BackoffMax:  10 * time.Minute,
			Endpoints:   []WebhookEndpoint{},
		},
		Workflows:     []Workflow{},
		WatchInterval: 5 * time.Second,
	}
}

// VOD returns the workflow as the job engine takes it.
func (w Workflow) VOD() (vod.Workflow, error) {
	out := vod.Workflow{Name: w.Name, On: w.On, Match: w.Match, Folder: w.Folder, Bucket: w.Bucket, Prefix: w.Prefix, Output: w.Output, Priority: w.Priority}
	for i, t := range w.Tasks {
		ts := vod.TaskSpec{Type: t.Type, Template: t.Template}
		if len(t.Params) > 0 {
			b, err := json.Marshal(t.Params)
			if err != nil {
				return vod.Workflow{}, fmt.Errorf("tasks[%d].params: %w", i, err)
			}
			ts.Params = b
		}
		out.Tasks = append(out.Tasks, ts)
	}
	if n := w.Notify; n != nil {
		out.Notify = &vod.Notify{URL: n.URL, Mode: n.Mode, Key: n.Key}
	}
	return out, nil
}

// VODWorkflows returns the configured workflows as the job engine takes
// them.
func (j Jobs) VODWorkflows() ([]vod.Workflow, error) {
	out := make([]vod.Workflow, 0, len(j.Workflows))
	for i, w := range j.Workflows {
		v, err := w.VOD()
		if err != nil {
			return nil, fmt.Errorf("jobs.workflows[%d]: %w", i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// takeJobWorkflows removes jobs.workflows from raw and decodes it; ok is
// false when the file does not set it.
func takeJobWorkflows(raw map[string]any) (list []Workflow, ok bool, err error) {
	section, isMap := raw["jobs"].(map[string]any)
	if !isMap {
		return nil, false, nil
	}
	v, ok := section["workflows"]
	if !ok {
		return nil, false, nil
	}
	delete(section, "workflows")
	const key = "jobs.workflows"
	entries, err := entries(v, key)
	if err != nil {
		return nil, true, err
	}
	list = make([]Workflow, 0, len(entries))
	for i, m := range entries {
		where := fmt.Sprintf("%s[%d]", key, i)
		if err := checkTree(m, reflect.TypeFor[Workflow](), where); err != nil {
			return nil, true, err
		}
		var w Workflow
		if err := decode(m, &w); err != nil {
			return nil, true, prefixLines(where+".", err)
		}
		list = append(list, w)
	}
	return list, true, nil
}

// validateJobs checks the jobs section; a disabled engine is not checked.
func (c *Config) validateJobs() []error {
	j := c.Jobs
	if !j.Enabled {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(j.DBPath) == "" {
		add("jobs.db_path: must be set, like data/mps.db")
	}
	if strings.TrimSpace(j.Dir) == "" {
		add("jobs.dir: must be set, like data/jobs")
	} else if j.DBPath != "" && within(j.Dir, j.DBPath) {
		add("jobs.db_path %q: must not be inside jobs.dir %q, whose files /outputs/ serves without a token", j.DBPath, j.Dir)
	}
	if j.Workers < 1 {
		add("jobs.workers %d: must be at least 1", j.Workers)
	}
	if j.Timeout <= 0 {
		add("jobs.timeout %s: must be more than 0", j.Timeout)
	}
	if j.MaxAttempts < 1 {
		add("jobs.max_attempts %d: must be at least 1", j.MaxAttempts)
	}
	for i, root := range j.MediaRoots {
		if strings.TrimSpace(root) == "" {
			add("jobs.media_roots[%d]: must not be empty", i)
		}
	}
	u := j.URLInputs
	for i, h := range u.AllowedHosts {
		if h != "*" && !validHost(h) {
			add("jobs.url_inputs.allowed_hosts[%d] %q: want a host name or address such as media.example.com, without scheme, port or path, or * for any host", i, h)
		}
	}
	if u.MaxSize <= 0 {
		add("jobs.url_inputs.max_size %d: must be more than 0 bytes", u.MaxSize)
	}
	w := j.Webhooks
	if w.Timeout <= 0 {
		add("jobs.webhooks.timeout %s: must be more than 0", w.Timeout)
	}
	if w.MaxAttempts < 1 {
		add("jobs.webhooks.max_attempts %d: must be at least 1", w.MaxAttempts)
	}
	if w.BackoffMax <= 0 {
		add("jobs.webhooks.backoff_max %s: must be more than 0", w.BackoffMax)
	}
	for i, ep := range w.Endpoints {
		if u, err := url.Parse(ep.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("jobs.webhooks.endpoints[%d].url %q: want an http or https URL", i, ep.URL)
		}
		for _, ev := range ep.Events {
			if strings.TrimSpace(ev) == "" {
				add("jobs.webhooks.endpoints[%d].events: an event type must not be empty", i)
			}
		}
	}
	if j.WatchInterval <= 0 {
		add("jobs.watch_interval %s: must be more than 0", j.WatchInterval)
	}
	seen := map[string]int{}
	for i, wf := range j.Workflows {
		where := fmt.Sprintf("jobs.workflows[%d]", i)
		if wf.Name != "" {
			where = fmt.Sprintf("jobs.workflows[%d] (%s)", i, wf.Name)
		}
		if k, dup := seen[wf.Name]; dup && wf.Name != "" {
			add("%s.name %q: already used by jobs.workflows[%d]", where, wf.Name, k)
		} else {
			seen[wf.Name] = i
		}
		errs = append(errs, j.validateWorkflow(where, wf)...)
		if wf.On == WorkflowOnS3 && c.Storage.Type != StorageTypeS3 {
			add("%s: on %s needs storage.type s3", where, wf.On)
		}
	}
	return errs
}

func (j Jobs) validateWorkflow(where string, w Workflow) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !validJobName(w.Name) {
		add("%s.name %q: use 1 to 64 letters, digits, '_', '-' or '.', not starting with '.'", where, w.Name)
	}
	switch w.On {
	case WorkflowOnRecordingFinished, WorkflowOnRecordingFile:
		if w.Match == "" {
			add("%s.match: must be set for on %s, like live/*", where, w.On)
		} else if err := checkMatch(w.Match); err != nil {
			add("%s.match %q: %w", where, w.Match, err)
		}
		if w.Folder != "" {
			add("%s.folder %q: only for on %s", where, w.Folder, WorkflowOnFile)
		}
	case WorkflowOnFile:
		switch {
		case strings.TrimSpace(w.Folder) == "":
			add("%s.folder: must be set for on %s: a folder inside one of jobs.media_roots", where, w.On)
		case !filepath.IsAbs(w.Folder) && !filepath.IsLocal(w.Folder):
			add("%s.folder %q: must be inside one of jobs.media_roots: relative to one without '..', or absolute", where, w.Folder)
		case len(j.MediaRoots) == 0:
			add("%s.folder %q: jobs.media_roots is empty, so no folder can be watched", where, w.Folder)
		}
		if w.Match != "" {
			add("%s.match %q: only for on %s or %s", where, w.Match, WorkflowOnRecordingFinished, WorkflowOnRecordingFile)
		}
	case WorkflowOnS3:
		if w.Bucket == "" {
			add("%s.bucket: must be set for on %s", where, w.On)
		}
		if w.Folder != "" || w.Match != "" {
			add("%s: on %s takes bucket and prefix, not folder or match", where, w.On)
		}
	default:
		add("%s.on %q: want %s, %s, %s or %s", where, w.On, WorkflowOnRecordingFinished, WorkflowOnRecordingFile, WorkflowOnFile, WorkflowOnS3)
	}
	if len(w.Tasks) == 0 {
		add("%s.tasks: list at least one task, such as {type: transcode, template: mp4-720p}", where)
	}
	for i, t := range w.Tasks {
		if !slices.Contains(jobTaskTypes, t.Type) {
			add("%s.tasks[%d].type %q: want one of %s", where, i, t.Type, strings.Join(jobTaskTypes, ", "))
		}
		if t.Template != "" && !validJobName(t.Template) {
			add("%s.tasks[%d].template %q: not a template name", where, i, t.Template)
		}
		if _, err := json.Marshal(t.Params); err != nil {
			add("%s.tasks[%d].params: %v", where, i, err)
		}
	}
	if o := w.Output; o != "" && (!filepath.IsLocal(o) || path.Clean(o) != o) {
		add("%s.output %q: must be a relative folder name without '..'", where, o)
	}
	if w.Priority < 0 || w.Priority > 4 {
		add("%s.priority %d: must be 1 (first) to 4 (last), or 0 for the default 2", where, w.Priority)
	}
	if n := w.Notify; n != nil {
		if err := checkHTTPURL(n.URL); err != nil {
			add("%s.notify.url %q: %v", where, n.URL, err)
		}
		switch n.Mode {
		case "", vod.NotifyFinish, vod.NotifyChange:
		default:
			add("%s.notify.mode %q: want %s or %s", where, n.Mode, vod.NotifyFinish, vod.NotifyChange)
		}
	}
	return errs
}

// validJobName is what template and workflow names may be: 1 to 64 of
// [A-Za-z0-9_.-], not starting with a dot.
func validJobName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// validHost accepts a host name or an IP address, without scheme, port,
// path or user.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || strings.ContainsAny(h, ":/@?#[] \t") {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return false
		}
	}
	return true
}

// within reports whether file lies inside dir (both as written, relative
// to the same working directory unless absolute).
func within(dir, file string) bool {
	d, err1 := filepath.Abs(dir)
	f, err2 := filepath.Abs(file)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, f)
	return err == nil && filepath.IsLocal(rel)
}
