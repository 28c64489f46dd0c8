package vod

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/events"
)

// Workflow triggers.
const (
	// OnRecordingFinished submits a job for the last archive of a
	// recording session that ends.
	OnRecordingFinished = "recording.finished"
	// OnRecordingFile submits a job for every completed archive.
	OnRecordingFile = "recording.file_completed"
	// OnFile submits a job for every new file in a watched folder.
	OnFile = "file"
	// OnS3 submits a job for every new object below a prefix of a bucket.
	OnS3 = "s3"
)

// Workflow errors.
var (
	ErrNoWorkflow      = errors.New("no such workflow")
	ErrInvalidWorkflow = errors.New("invalid workflow")
)

// Workflow submits a job when something happens.
type Workflow struct {
	Name string `json:"name"`
	// On is OnRecordingFinished, OnRecordingFile or OnFile.
	On string `json:"on"`
	// Match is a path.Match glob on the stream name (recording triggers).
	Match string `json:"match,omitempty"`
	// Folder is the watched folder, inside a media root (OnFile).
	Folder string `json:"folder,omitempty"`
	// Bucket and Prefix say which objects OnS3 watches.
	Bucket   string     `json:"bucket,omitempty"`
	Prefix   string     `json:"prefix,omitempty"`
	Tasks    []TaskSpec `json:"tasks"`
	Output   string     `json:"output,omitempty"`
	Priority int        `json:"priority,omitempty"`
	Notify   *Notify    `json:"notify,omitempty"`
	// Builtin workflows come from the configuration and are read-only.
	Builtin bool `json:"builtin"`
}

// WorkflowStore holds the configured and the user's workflows, and
// submits their jobs.
type WorkflowStore struct {
	e       *Engine
	builtin []Workflow

	mu   sync.Mutex
	seen map[string]fileState // watched files by path
}

type fileState struct {
	size int64
	mod  time.Time
}

const workflowSchema = `
CREATE TABLE IF NOT EXISTS mps_workflow (
	name TEXT PRIMARY KEY,
	body TEXT NOT NULL
);`

// newWorkflowStore keeps the user's workflows in e's mps_workflow table,
// which exists (see createTables).
//
// In cluster mode every node watches the folders and takes the recording
// events of its own recorder; a trigger's session id makes its job
// unique in the shared database, so that two nodes that see one file
// submit one job.
func newWorkflowStore(e *Engine, builtin []Workflow) (*WorkflowStore, error) {
	ws := &WorkflowStore{e: e, seen: map[string]fileState{}}
	for _, w := range builtin {
		w.Builtin = true
		if err := ws.check(w); err != nil {
			return nil, fmt.Errorf("workflow %q: %w", w.Name, err)
		}
		ws.builtin = append(ws.builtin, w)
	}
	return ws, nil
}

func (ws *WorkflowStore) check(w Workflow) error {
	if !validName(w.Name) {
		return fmt.Errorf("%w: name %q: use 1 to 64 letters, digits, '_', '-' or '.'", ErrInvalidWorkflow, w.Name)
	}
	switch w.On {
	case OnRecordingFinished, OnRecordingFile:
		if w.Match == "" || w.Folder != "" {
			return fmt.Errorf("%w: %s workflows need match (a stream glob such as live/*) and no folder", ErrInvalidWorkflow, w.On)
		}
		if _, err := path.Match(w.Match, ""); err != nil {
			return fmt.Errorf("%w: match %q: %v", ErrInvalidWorkflow, w.Match, err)
		}
	case OnS3:
		if w.Bucket == "" || w.Folder != "" || w.Match != "" {
			return fmt.Errorf("%w: s3 workflows need bucket (and prefix), and no folder or match", ErrInvalidWorkflow)
		}
		if ws.e.cfg.Inputs.S3List == nil {
			return fmt.Errorf("%w: s3 workflows need S3 storage (storage.type s3)", ErrInvalidWorkflow)
		}
	case OnFile:
		if w.Folder == "" || w.Match != "" {
			return fmt.Errorf("%w: file workflows need folder (inside a media root) and no match", ErrInvalidWorkflow)
		}
		if _, err := ws.e.cfg.Inputs.localDir(w.Folder); err != nil {
			return fmt.Errorf("%w: folder %q: %v", ErrInvalidWorkflow, w.Folder, err)
		}
	default:
		return fmt.Errorf("%w: on %q: want %s, %s, %s or %s", ErrInvalidWorkflow, w.On, OnRecordingFinished, OnRecordingFile, OnFile, OnS3)
	}
	spec := JobSpec{Input: JobInput{Path: "x"}, Tasks: w.Tasks, Output: w.Output, Priority: w.Priority, Notify: w.Notify}
	if err := ws.e.validate(spec); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidWorkflow, strings.TrimPrefix(err.Error(), ErrInvalidJob.Error()+": "))
	}
	return nil
}

// List returns every workflow, configured ones first.
func (ws *WorkflowStore) List(ctx context.Context) ([]Workflow, error) {
	out := slices.Clone(ws.builtin)
	rows, err := ws.e.x.QueryContext(ctx, `SELECT body FROM mps_workflow ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var w Workflow
		if err := json.Unmarshal([]byte(body), &w); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	if out == nil {
		out = []Workflow{}
	}
	return out, rows.Err()
}

// Get returns one workflow.
func (ws *WorkflowStore) Get(ctx context.Context, name string) (Workflow, error) {
	for _, w := range ws.builtin {
		if w.Name == name {
			return w, nil
		}
	}
	var body string
	err := ws.e.x.QueryRowContext(ctx, `SELECT body FROM mps_workflow WHERE name = ?`, name).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return Workflow{}, fmt.Errorf("workflow %q: %w", name, ErrNoWorkflow)
	}
	if err != nil {
		return Workflow{}, err
	}
	var w Workflow
	err = json.Unmarshal([]byte(body), &w)
	return w, err
}

// Put creates or replaces a user workflow.
func (ws *WorkflowStore) Put(ctx context.Context, w Workflow) (created bool, err error) {
	if cur, err := ws.Get(ctx, w.Name); err == nil && cur.Builtin {
		return false, fmt.Errorf("workflow %q: %w", w.Name, ErrReadOnly)
	}
	w.Builtin = false
	if err := ws.check(w); err != nil {
		return false, err
	}
	body, err := json.Marshal(w)
	if err != nil {
		return false, err
	}
	_, getErr := ws.Get(ctx, w.Name)
	created = errors.Is(getErr, ErrNoWorkflow)
	_, err = ws.e.x.ExecContext(ctx, `INSERT INTO mps_workflow (name, body) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET body = excluded.body`, w.Name, string(body))
	return created, err
}

// Delete removes a user workflow.
func (ws *WorkflowStore) Delete(ctx context.Context, name string) error {
	if cur, err := ws.Get(ctx, name); err == nil && cur.Builtin {
		return fmt.Errorf("workflow %q: %w", name, ErrReadOnly)
	}
	res, err := ws.e.x.ExecContext(ctx, `DELETE FROM mps_workflow WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("workflow %q: %w", name, ErrNoWorkflow)
	}
	return nil
}

// submit queues a workflow's job for input. The session id makes it
// idempotent: the same trigger never submits twice, across restarts too.
func (ws *WorkflowStore) submit(ctx context.Context, w Workflow, in JobInput, key string, context map[string]any) {
	sc, _ := json.Marshal(context)
	spec := JobSpec{
		Input: in, Tasks: w.Tasks, Output: w.Output, Priority: w.Priority, Notify: w.Notify,
		SessionID: "workflow:" + w.Name + ":" + key, SessionContext: sc,
	}
	j, created, err := ws.e.Submit(ctx, spec)
	if err != nil {
		ws.e.log.Warn("workflow job not submitted", "workflow", w.Name, "error", err)
		return
	}
	if created {
		ws.e.log.Info("workflow submitted a job", "workflow", w.Name, "job", j.ID)
	}
}

// onEvent submits the jobs of the recording workflows an event matches.
func (ws *WorkflowStore) onEvent(e events.Event) {
	if e.Type != OnRecordingFinished && e.Type != OnRecordingFile {
		return
	}
	id, _ := e.Data["id"].(string)
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := ws.List(ctx)
	if err != nil {
		ws.e.log.Warn("workflows", "error", err)
		return
	}
	for _, w := range all {
		if w.On != e.Type {
			continue
		}
		if ok, _ := path.Match(w.Match, e.Stream); !ok {
			continue
		}
		ws.submit(ctx, w, JobInput{Recording: id}, id, map[string]any{"workflow": w.Name, "event": e.Type, "stream": e.Stream, "recording": id})
	}
}

// scan submits jobs for files that appeared in watched folders and kept
// their size since the previous scan (so half-copied files wait).
func (ws *WorkflowStore) scan(ctx context.Context) {
	all, err := ws.List(ctx)
	if err != nil {
		return
	}
	for _, w := range all {
		if w.On == OnS3 {
			ws.scanS3(ctx, w)
			continue
		}
		if w.On != OnFile {
			continue
		}
		dir, err := ws.e.cfg.Inputs.localDir(w.Folder)
		if err != nil {
			continue
		}
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name()[0] == '.' {
				return nil
			}
			fi, err := d.Info()
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			st := fileState{size: fi.Size(), mod: fi.ModTime()}
			if !ws.settled(p, st) {
				return nil
			}
			key := fmt.Sprintf("%s:%d:%d", p, st.size, st.mod.UnixNano())
			ws.submit(ctx, w, JobInput{Path: p}, key, map[string]any{"workflow": w.Name, "event": "file", "path": p})
			return nil
		})
	}
}

// settled notes what a scan saw of a file or object, and reports whether
// it is unchanged since the previous scan (and not empty), so that a file
// still being copied or uploaded waits.
func (ws *WorkflowStore) settled(id string, st fileState) bool {
	ws.mu.Lock()
	prev, ok := ws.seen[id]
	ws.seen[id] = st
	ws.mu.Unlock()
	return ok && prev == st && st.size > 0
}

// scanS3 submits jobs for the objects below a workflow's prefix that kept
// their size and time since the previous scan.
func (ws *WorkflowStore) scanS3(ctx context.Context, w Workflow) {
	objs, err := ws.e.cfg.Inputs.S3List(ctx, w.Bucket, w.Prefix)
	if err != nil {
		ws.e.log.Warn("s3 workflow: listing failed", "workflow", w.Name, "bucket", w.Bucket, "prefix", w.Prefix, "error", err)
		return
	}
	for _, o := range objs {
		u := "s3://" + w.Bucket + "/" + o.Key
		st := fileState{size: o.Size, mod: o.Modified}
		if !ws.settled(u, st) {
			continue
		}
		key := fmt.Sprintf("%s:%d:%d", u, st.size, st.mod.UnixNano())
		ws.submit(ctx, w, JobInput{URL: u}, key, map[string]any{"workflow": w.Name, "event": "s3", "url": u})
	}
}

// watch scans the watched folders every interval until ctx ends.
func (ws *WorkflowStore) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ws.scan(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// localDir checks that dir is a folder inside a media root.
func (in *Inputs) localDir(dir string) (string, error) {
	for _, root := range in.MediaRoots {
		rootAbs, err := filepath.Abs(root)
		if err != nil {
			continue
		}
		candidate := dir
		if !filepath.IsAbs(dir) {
			candidate = filepath.Join(rootAbs, dir)
		}
		if err := os.MkdirAll(candidate, 0o755); err != nil {
			continue
		}
		real, err1 := filepath.EvalSymlinks(candidate)
		realRoot, err2 := filepath.EvalSymlinks(rootAbs)
		if err1 != nil || err2 != nil {
			continue
		}
		if rel, err := filepath.Rel(realRoot, real); err == nil && (rel == "." || filepath.IsLocal(rel)) {
			return real, nil
		}
	}
	return "", errors.New("not inside a media root")
}
