package vod

import (
	"encoding/json"
	"time"
)

// Job states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
)

// JobSpec is what a client submits.
type JobSpec struct {
	Input JobInput `json:"input"`
	// Output names the job's output folder below the jobs folder; empty
	// means the job id.
	Output string     `json:"output,omitempty"`
	Tasks  []TaskSpec `json:"tasks"`
	// Priority from 1 (first) to 4 (last); 0 means 2.
	Priority int `json:"priority,omitempty"`
	// SessionID is an idempotency key: submitting it again returns the
	// job it first made.
	SessionID string `json:"session_id,omitempty"`
	// SessionContext is echoed back in every event of the job.
	SessionContext json.RawMessage `json:"session_context,omitempty"`
	// Notify, when set, sends the job's events to a webhook.
	Notify *Notify `json:"notify,omitempty"`
}

// Notify modes.
const (
	NotifyFinish = "finish" // job.finished only
	NotifyChange = "change" // job.created, job.progress and job.finished
)

// Notify is where a job's events are delivered.
type Notify struct {
	URL string `json:"url"`
	// Mode is NotifyFinish (the default) or NotifyChange.
	Mode string `json:"mode,omitempty"`
	// Key signs each body: X-MPS-Signature is "sha256=" and the hex
	// HMAC-SHA256 of the body with it.
	Key string `json:"key,omitempty"`
}

// JobInput is a job's input: exactly one of its fields.
type JobInput struct {
	// Path is a file inside one of the configured media roots.
	Path string `json:"path,omitempty"`
	// Recording is the id of a recording.
	Recording string `json:"recording,omitempty"`
	// URL is an http(s) URL, allowed by the configuration.
	URL string `json:"url,omitempty"`
}

// TaskSpec is one task of a job: a template of its type, with fields
// overridden by Params.
type TaskSpec struct {
	Type     string          `json:"type"`
	Template string          `json:"template,omitempty"`
	Params   json.RawMessage `json:"params,omitempty"`
}

// TaskStatus is a task's progress and results.
type TaskStatus struct {
	Type     string   `json:"type"`
	Template string   `json:"template,omitempty"`
	State    string   `json:"state"`
	Progress float64  `json:"progress"`
	Outputs  []Output `json:"outputs"`
	Error    string   `json:"error,omitempty"`
}

// Job is a submitted job and its progress.
type Job struct {
	ID       string       `json:"id"`
	Spec     JobSpec      `json:"spec"`
	State    string       `json:"state"`
	Progress float64      `json:"progress"`
	Tasks    []TaskStatus `json:"tasks"`
	Error    string       `json:"error,omitempty"`
	Attempts int          `json:"attempts"`
	// Node is the cluster node that runs the job, or ran it last (cluster
	// mode only).
	Node string `json:"node,omitempty"`
	// OutputDir is the job's output folder, relative to the jobs folder.
	OutputDir  string     `json:"output_dir"`
	Input      *Media     `json:"input_media,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// finished reports whether the job has reached a final state.
func (j *Job) finished() bool {
	return j.State == StateSucceeded || j.State == StateFailed || j.State == StateCancelled
}

// updateProgress sets the job's progress from its tasks'.
func (j *Job) updateProgress() {
	if len(j.Tasks) == 0 {
		return
	}
	var sum float64
	for _, t := range j.Tasks {
		sum += t.Progress
	}
	j.Progress = sum / float64(len(j.Tasks))
}
