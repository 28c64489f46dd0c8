package vod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/riverqueue/river"
)

// progressInterval throttles progress writes and events.
const progressInterval = 500 * time.Millisecond

// work runs one attempt of a job: its tasks in order, skipping those that
// succeeded in an earlier attempt.
func (e *Engine) work(ctx context.Context, rj *river.Job[runArgs]) error {
	j, err := e.store.get(ctx, rj.Args.JobID)
	if err != nil {
		return river.JobCancel(err)
	}
	if j.finished() {
		return nil // cancelled while queued
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.mu.Lock()
	e.running[j.ID] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, j.ID)
		e.mu.Unlock()
	}()

	log := e.log.With("job", j.ID)
	now := time.Now().UTC()
	j.State, j.Attempts, j.Error = StateRunning, rj.Attempt, ""
	if j.StartedAt == nil {
		j.StartedAt = &now
	}
	if err := e.store.update(ctx, j); err != nil {
		return err
	}
	log.Info("job started", "attempt", rj.Attempt, "tasks", len(j.Tasks))
	err = e.runTasks(ctx, j)
	return e.finish(j, rj, err, context.Cause(ctx))
}

// finish records how an attempt ended and tells River whether to retry.
func (e *Engine) finish(j *Job, rj *river.Job[runArgs], err, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().UTC()
	switch {
	case err == nil:
		j.State, j.Progress, j.FinishedAt = StateSucceeded, 1, &now
	case errors.Is(cause, ErrCancelled):
		// Cancel already stored the state.
		if cur, gerr := e.store.get(ctx, j.ID); gerr == nil {
			*j = *cur
		}
		e.log.Info("job cancelled", "job", j.ID)
		return river.JobCancel(ErrCancelled)
	case errors.Is(err, ErrBadInput) || rj.Attempt >= rj.MaxAttempts:
		j.State, j.Error, j.FinishedAt = StateFailed, err.Error(), &now
	default:
		j.State, j.Error = StateQueued, fmt.Sprintf("attempt %d failed, retrying: %v", rj.Attempt, err)
	}
	if uerr := e.store.update(ctx, j); uerr != nil {
		e.log.Warn("job state not stored", "job", j.ID, "error", uerr)
	}
	switch j.State {
	case StateSucceeded:
		e.log.Info("job succeeded", "job", j.ID)
		e.emit(EventJobFinished, j)
		return nil
	case StateFailed:
		e.log.Warn("job failed", "job", j.ID, "error", err)
		e.emit(EventJobFinished, j)
		return river.JobCancel(err)
	}
	e.log.Warn("job attempt failed", "job", j.ID, "attempt", rj.Attempt, "error", err)
	return err
}

// runTasks resolves the input and runs each task not yet done.
func (e *Engine) runTasks(ctx context.Context, j *Job) error {
	workDir := e.jobDir(j)
	if err := ensureDir(workDir); err != nil {
		return fmt.Errorf("output folder: %w", err)
	}
	path, err := e.cfg.Inputs.Resolve(ctx, j.Spec.Input, workDir)
	if err != nil {
		return err
	}
	env := Env{FFmpeg: e.cfg.FFmpeg, FFprobe: e.cfg.FFprobe, Caps: e.cfg.Caps, Logger: e.log.With("job", j.ID),
		Speech: e.cfg.Speech, Chat: e.cfg.Chat}
	media, err := Probe(ctx, env, path)
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	j.Input = &media
	for i := range j.Tasks {
		ts := &j.Tasks[i]
		if ts.State == StateSucceeded {
			continue
		}
		if err := e.runTask(ctx, j, i, env, media); err != nil {
			ts.State, ts.Error = StateFailed, err.Error()
			return fmt.Errorf("task %d (%s): %w", i+1, ts.Type, err)
		}
	}
	return nil
}

func (e *Engine) runTask(ctx context.Context, j *Job, i int, env Env, media Media) error {
	spec := j.Spec.Tasks[i]
	ts := &j.Tasks[i]
	params, err := e.params(spec)
	if err != nil {
		return err
	}
	if params, err = e.resolveWatermark(params); err != nil {
		return err
	}
	if spec.Type == TaskQuality {
		if params, media, err = e.qualityInputs(ctx, j, i, env, media, params); err != nil {
			return err
		}
	}
	env.OutDir = e.taskDir(j, i)
	env.Previous = e.previousTasks(j, i)
	if err := os.RemoveAll(env.OutDir); err != nil {
		return err
	}
	if err := ensureDir(env.OutDir); err != nil {
		return err
	}
	ts.State, ts.Progress, ts.Error, ts.Outputs = StateRunning, 0, "", []Output{}
	_ = e.store.update(ctx, j)
	var last time.Time
	env.Progress = func(f float64) {
		// Throttled, but a step of a tenth or more is always kept, so that
		// the phases of a task (encode, then packaging) show.
		if f <= ts.Progress || (time.Since(last) < progressInterval && f-ts.Progress < 0.1) {
			return
		}
		last = time.Now()
		ts.Progress = f
		j.updateProgress()
		if err := e.store.update(ctx, j); err == nil {
			e.emit(EventJobProgress, j)
		}
	}
	outputs, err := e.cfg.Runners[spec.Type].Run(ctx, env, media, params)
	if err != nil {
		return err
	}
	rel := filepath.Base(env.OutDir)
	for k := range outputs {
		outputs[k].Path = filepath.ToSlash(filepath.Join(j.OutputDir, rel, outputs[k].Path))
	}
	ts.State, ts.Progress, ts.Outputs = StateSucceeded, 1, outputs
	e.refreshSizes(j, i)
	j.updateProgress()
	return e.store.update(ctx, j)
}

// refreshSizes updates the sizes of the outputs of the tasks before i: a
// task may change an earlier one's files, as captions do when they join
// an adaptive output's manifests.
func (e *Engine) refreshSizes(j *Job, i int) {
	for k := range i {
		for n, o := range j.Tasks[k].Outputs {
			if fi, err := os.Stat(filepath.Join(e.cfg.Dir, filepath.FromSlash(o.Path))); err == nil {
				j.Tasks[k].Outputs[n].Size = fi.Size()
			}
		}
	}
}

// taskDir is the output folder of task i of j.
func (e *Engine) taskDir(j *Job, i int) string {
	return filepath.Join(e.jobDir(j), fmt.Sprintf("%02d-%s", i+1, j.Spec.Tasks[i].Type))
}

// previousTasks lists the tasks before i that succeeded, with their
// outputs relative to their folders.
func (e *Engine) previousTasks(j *Job, i int) []PreviousTask {
	var out []PreviousTask
	for k := range i {
		ts := j.Tasks[k]
		if ts.State != StateSucceeded {
			continue
		}
		dir := e.taskDir(j, k)
		prefix := filepath.ToSlash(filepath.Join(j.OutputDir, filepath.Base(dir))) + "/"
		p := PreviousTask{Type: j.Spec.Tasks[k].Type, Dir: dir}
		for _, o := range ts.Outputs {
			o.Path = strings.TrimPrefix(o.Path, prefix)
			p.Outputs = append(p.Outputs, o)
		}
		out = append(out, p)
	}
	return out
}

// params merges a task's overrides into its template (one level deep for
// objects, so {"video": {"bitrate": ...}} keeps the template's other
// video fields).
func (e *Engine) params(spec TaskSpec) (json.RawMessage, error) {
	base := json.RawMessage("{}")
	if spec.Template != "" {
		tpl, ok := e.template(spec.Type, spec.Template)
		if !ok {
			return nil, fmt.Errorf("%w: template %q: no %s template of that name", ErrBadInput, spec.Template, spec.Type)
		}
		base = tpl
	}
	if len(spec.Params) == 0 {
		return base, nil
	}
	return mergeParams(base, spec.Params)
}

func mergeParams(base, over json.RawMessage) (json.RawMessage, error) {
	var b, o map[string]json.RawMessage
	if err := json.Unmarshal(base, &b); err != nil {
		return nil, fmt.Errorf("%w: template is not a JSON object", ErrBadInput)
	}
	if err := json.Unmarshal(over, &o); err != nil {
		return nil, fmt.Errorf("%w: params must be a JSON object", ErrBadInput)
	}
	if b == nil {
		b = map[string]json.RawMessage{}
	}
	for k, v := range o {
		var bo, oo map[string]json.RawMessage
		if json.Unmarshal(b[k], &bo) == nil && bo != nil && json.Unmarshal(v, &oo) == nil && oo != nil {
			merged, err := mergeParams(b[k], v)
			if err != nil {
				return nil, err
			}
			b[k] = merged
			continue
		}
		b[k] = v
	}
	return json.Marshal(b)
}

// qualityInputs chooses what a quality task compares. With a reference in
// its params (a file inside the media roots), the job's input is
// compared against it; without one, the newest video output of an earlier
// task is compared against the job's input, its source.
func (e *Engine) qualityInputs(ctx context.Context, j *Job, i int, env Env, media Media, params json.RawMessage) (json.RawMessage, Media, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, media, fmt.Errorf("%w: params must be a JSON object", ErrBadInput)
	}
	if ref, ok := p["reference"]; ok {
		var name string
		if err := json.Unmarshal(ref, &name); err != nil {
			return nil, media, fmt.Errorf("%w: reference: want a file name", ErrBadInput)
		}
		abs, err := e.cfg.Inputs.localPath(name)
		if err != nil {
			return nil, media, fmt.Errorf("reference: %w", err)
		}
		p["reference"], _ = json.Marshal(abs)
		out, err := json.Marshal(p)
		return out, media, err
	}
	var distorted string
	for k := i - 1; k >= 0 && distorted == ""; k-- {
		for _, o := range j.Tasks[k].Outputs {
			if o.Kind == "video" {
				distorted = filepath.Join(e.cfg.Dir, filepath.FromSlash(o.Path))
			}
		}
	}
	if distorted == "" {
		return nil, media, fmt.Errorf("%w: a quality task needs params.reference, or an earlier task of the job with a video output to compare with the input", ErrBadInput)
	}
	out, err := Probe(ctx, env, distorted)
	if err != nil {
		return nil, media, err
	}
	p["reference"], _ = json.Marshal(media.Path)
	params, err = json.Marshal(p)
	return params, out, err
}

// resolveWatermark checks that a watermark image names a file inside the
// media roots, and makes its path absolute.
func (e *Engine) resolveWatermark(params json.RawMessage) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if json.Unmarshal(params, &p) != nil || p["watermark"] == nil {
		return params, nil
	}
	var wm map[string]json.RawMessage
	if json.Unmarshal(p["watermark"], &wm) != nil || wm["image"] == nil {
		return params, nil
	}
	var name string
	if err := json.Unmarshal(wm["image"], &name); err != nil || name == "" {
		return params, nil
	}
	abs, err := e.cfg.Inputs.localPath(name)
	if err != nil {
		return nil, fmt.Errorf("watermark.image: %w", err)
	}
	wm["image"], _ = json.Marshal(abs)
	p["watermark"], _ = json.Marshal(wm)
	return json.Marshal(p)
}
