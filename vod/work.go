package vod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"
)

// progressInterval throttles progress writes and events.
const progressInterval = 500 * time.Millisecond

// Timing of cluster mode.
const (
	// claimWait is how long a job whose row another attempt owns waits
	// before it tries again (without using up an attempt).
	claimWait = 2 * time.Second
	// watchInterval is how often a running attempt looks at its row in
	// cluster mode, for a cancel made on another node or a take-over.
	watchInterval = time.Second
	// rescueInterval is how often the jobs of dead nodes are queued again.
	rescueInterval = 2 * time.Second
)

// errTakenOver stops an attempt whose job was queued again and taken by
// another attempt: its node was taken for dead.
var errTakenOver = errors.New("job taken over by another attempt")

// attempt is one run of a job on this node. It owns the job's row while
// it runs, and writes the row only while it does.
type attempt struct {
	e      *Engine
	tok    string
	cancel context.CancelCauseFunc
}

// save stores j. When the attempt no longer owns the job, or the job was
// cancelled, it stores nothing, stops the attempt and returns why.
func (a *attempt) save(ctx context.Context, j *Job) error {
	ok, err := a.e.store.save(ctx, j, a.tok)
	if err != nil || ok {
		return err
	}
	cause := a.lost(ctx, j.ID)
	a.cancel(cause)
	return cause
}

// lost says why the attempt may no longer write its job: ErrCancelled or
// errTakenOver.
func (a *attempt) lost(ctx context.Context, id string) error {
	if state, _, err := a.e.store.owner(ctx, id); err == nil && state == StateCancelled {
		return ErrCancelled
	}
	return errTakenOver
}

// watch stops the attempt when its job is cancelled on another node or
// taken over, until ctx ends. It returns a function that stops it and
// waits for it.
func (a *attempt) watch(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(watchInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			state, owner, err := a.e.store.owner(ctx, id)
			switch {
			case err != nil:
				// The database is away; the next write tells.
			case state == StateCancelled:
				a.cancel(ErrCancelled)
				return
			case owner != a.tok:
				a.cancel(errTakenOver)
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// work runs one attempt of a job: its tasks in order, skipping those that
// succeeded in an earlier attempt.
func (e *Engine) work(ctx context.Context, rj *river.Job[runArgs]) error {
	j, err := e.store.get(ctx, rj.Args.JobID)
	if errors.Is(err, ErrNoJob) {
		return river.JobCancel(err)
	}
	if err != nil {
		return err
	}
	if j.finished() {
		return nil // cancelled while queued
	}
	log := e.log.With("job", j.ID)
	a := &attempt{e: e, tok: fmt.Sprintf("%s/%d/%d", e.node, rj.ID, rj.Attempt)}
	ok, err := e.store.claim(ctx, j.ID, e.node, a.tok)
	if err != nil {
		return err
	}
	if !ok {
		// Another attempt still runs it: one that was cancelled and has
		// not stopped yet, or one on a node that died and is not rescued
		// yet. Come back without using up an attempt.
		log.Info("job is still run by another attempt; waiting", "attempt", rj.Attempt)
		return river.JobSnooze(claimWait)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := e.store.release(rctx, j.ID, a.tok); err != nil {
			log.Warn("job row not released", "error", err)
		}
	}()
	// Read it again: it may have changed before the claim.
	if j, err = e.store.get(ctx, rj.Args.JobID); err != nil {
		return err
	}
	if j.finished() {
		return nil
	}
	if e.dialect == dialectPostgres {
		j.Node = e.node
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	a.cancel = cancel
	if e.dialect == dialectPostgres {
		defer a.watch(ctx, j.ID)()
	}
	e.mu.Lock()
	e.running[j.ID] = cancel
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, j.ID)
		e.mu.Unlock()
	}()

	now := time.Now().UTC()
	j.State, j.Attempts, j.Error = StateRunning, rj.Attempt, ""
	if j.StartedAt == nil {
		j.StartedAt = &now
	}
	if err := a.save(ctx, j); err != nil {
		return e.finish(j, rj, a, err, context.Cause(ctx))
	}
	log.Info("job started", "attempt", rj.Attempt, "tasks", len(j.Tasks), "node", e.node)
	err = e.runTasks(ctx, j, a)
	return e.finish(j, rj, a, err, context.Cause(ctx))
}

// finish records how an attempt ended and tells River whether to retry.
func (e *Engine) finish(j *Job, rj *river.Job[runArgs], a *attempt, err, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().UTC()
	switch {
	case errors.Is(cause, errTakenOver):
		e.log.Warn("job taken over by another attempt; this one stops", "job", j.ID, "attempt", rj.Attempt)
		return nil
	case err == nil:
		j.State, j.Progress, j.FinishedAt = StateSucceeded, 1, &now
	case errors.Is(cause, ErrCancelled):
		return e.cancelled(ctx, j)
	case errors.Is(err, ErrBadInput) || rj.Attempt >= rj.MaxAttempts:
		j.State, j.Error, j.FinishedAt = StateFailed, err.Error(), &now
	case e.dialect == dialectPostgres && e.closing.Load():
		// This node shuts down: not the job's fault. It goes back to the
		// queue without using up an attempt, for another node to take.
		j.State, j.Error = StateQueued, ""
		for i := range j.Tasks {
			if ts := &j.Tasks[i]; ts.State != StateSucceeded {
				ts.State, ts.Error, ts.Progress = StateQueued, "", 0
			}
		}
		j.updateProgress()
		if ok, uerr := e.store.save(ctx, j, a.tok); uerr != nil || !ok {
			e.log.Warn("job state not stored", "job", j.ID, "error", uerr)
		}
		e.log.Info("job handed back to the queue: node stops", "job", j.ID)
		return river.JobSnooze(0)
	default:
		j.State, j.Error = StateQueued, fmt.Sprintf("attempt %d failed, retrying: %v", rj.Attempt, err)
	}
	ok, uerr := e.store.save(ctx, j, a.tok)
	if uerr != nil {
		e.log.Warn("job state not stored", "job", j.ID, "error", uerr)
	} else if !ok {
		if errors.Is(a.lost(ctx, j.ID), ErrCancelled) {
			return e.cancelled(ctx, j)
		}
		e.log.Warn("job taken over by another attempt; this one stops", "job", j.ID, "attempt", rj.Attempt)
		return nil
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

// cancelled ends an attempt whose job was cancelled: Cancel stored the
// state already.
func (e *Engine) cancelled(ctx context.Context, j *Job) error {
	if cur, gerr := e.store.get(ctx, j.ID); gerr == nil {
		*j = *cur
	}
	e.log.Info("job cancelled", "job", j.ID)
	return river.JobCancel(ErrCancelled)
}

// rescueLoop queues again, every rescueInterval until ctx ends, the jobs
// that dead nodes were running (cluster mode).
func (e *Engine) rescueLoop(ctx context.Context) {
	t := time.NewTicker(rescueInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.rescue(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("jobs of dead nodes not rescued", "error", err)
		}
	}
}

// rescueLockKey is the advisory lock of one rescue pass: one node at a
// time rescues.
const rescueLockKey = 0x6d70735f726573 // "mps_res"

// rescue queues again the jobs that the nodes DeadNodes reports were
// running (see rescueNodes).
func (e *Engine) rescue(ctx context.Context) error {
	dead, err := e.cfg.DeadNodes(ctx)
	if err != nil {
		return fmt.Errorf("dead nodes: %w", err)
	}
	// This node is alive, whatever the membership says.
	dead = slices.DeleteFunc(slices.Clone(dead), func(n string) bool { return n == "" || n == e.node })
	return e.rescueNodes(ctx, dead)
}

// rescueNodes queues again the jobs that the nodes dead were running
// (cluster mode): their River rows (running, last attempted by a dead node) are
// made available, and their MPS rows go back to queued, their unfinished
// tasks too, without an owner. The next attempt skips the tasks that
// succeeded. A job whose last attempt it was is failed instead, as
// River's own rescuer would: a job that kills its nodes must not go round
// the cluster for ever. All in one transaction.
//
// A node that starts rescues its own id's jobs: what they hold is left
// from an earlier process of the node, since River allows one process
// per client id.
func (e *Engine) rescueNodes(ctx context.Context, dead []string) error {
	if len(dead) == 0 {
		return nil
	}
	var finished []*Job
	err := inTx(ctx, e.dialect, e.db, func(tx dbx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(rescueLockKey)); err != nil {
			return err
		}
		// The MPS rows first, in id order, as every rescuer locks them.
		owned := map[string]string{} // job id -> dead node
		rows, err := tx.QueryContext(ctx, `SELECT id, node FROM mps_job WHERE node = ANY(?) ORDER BY id FOR UPDATE`, dead)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, node string
			if err := rows.Scan(&id, &node); err != nil {
				_ = rows.Close()
				return err
			}
			owned[id] = node
		}
		if err := rows.Close(); err != nil {
			return err
		}
		type rescued struct {
			node, state string
			attempt     int
		}
		queue := map[string]rescued{}
		rows, err = tx.QueryContext(ctx, `UPDATE river_job SET
			state = (CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END)::river_job_state,
			finalized_at = CASE WHEN attempt >= max_attempts THEN now() END,
			scheduled_at = now(),
			errors = array_append(errors, jsonb_build_object('at', now(), 'attempt', attempt,
				'error', 'node ' || attempted_by[array_upper(attempted_by, 1)] || ' died while it ran the job', 'trace', ''))
			WHERE state = 'running' AND kind = ? AND attempted_by[array_upper(attempted_by, 1)] = ANY(?)
			RETURNING args->>'job_id', attempted_by[array_upper(attempted_by, 1)], state::text, attempt`, runArgs{}.Kind(), dead)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var r rescued
			if err := rows.Scan(&id, &r.node, &r.state, &r.attempt); err != nil {
				_ = rows.Close()
				return err
			}
			queue[id] = r
		}
		if err := rows.Close(); err != nil {
			return err
		}
		ids := slices.Sorted(maps.Keys(owned))
		for id := range queue {
			if _, ok := owned[id]; !ok {
				ids = append(ids, id)
			}
		}
		now := time.Now().UTC()
		for _, id := range ids {
			j, err := loadJob(ctx, tx, id)
			if errors.Is(err, ErrNoJob) {
				continue
			}
			if err != nil {
				return err
			}
			r, inQueue := queue[id]
			node, ownedByDead := owned[id]
			lastAttempt := inQueue && r.state == "discarded"
			if !ownedByDead {
				// The dead node took the job from the queue but had not
				// claimed its row: only a last attempt changes it.
				node = r.node
				var owner string
				if err := tx.QueryRowContext(ctx, `SELECT owner FROM mps_job WHERE id = ? FOR UPDATE`, id).Scan(&owner); err != nil {
					return err
				}
				if owner != "" || !lastAttempt {
					continue
				}
			}
			if !j.finished() {
				if lastAttempt {
					j.State, j.FinishedAt = StateFailed, &now
					j.Error = fmt.Sprintf("node %s died during attempt %d, the last", node, r.attempt)
					finished = append(finished, j)
				} else {
					j.State, j.Error = StateQueued, fmt.Sprintf("node %s died during the job; queued again", node)
				}
				for i := range j.Tasks {
					ts := &j.Tasks[i]
					switch {
					case ts.State != StateRunning:
					case lastAttempt:
						ts.State, ts.Error = StateFailed, j.Error
					default:
						ts.State, ts.Progress = StateQueued, 0
					}
				}
				j.updateProgress()
			}
			body, err := json.Marshal(j)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE mps_job SET state = ?, body = ?, owner = '', node = '' WHERE id = ?`, j.State, string(body), id); err != nil {
				return err
			}
			e.log.Warn("job of a dead node rescued", "job", id, "dead_node", node, "state", j.State)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, j := range finished {
		e.emit(EventJobFinished, j)
	}
	return nil
}

// runTasks resolves the input and runs each task not yet done.
func (e *Engine) runTasks(ctx context.Context, j *Job, a *attempt) error {
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
		if err := e.runTask(ctx, j, i, env, media, a); err != nil {
			ts.State, ts.Error = StateFailed, err.Error()
			return fmt.Errorf("task %d (%s): %w", i+1, ts.Type, err)
		}
	}
	return nil
}

func (e *Engine) runTask(ctx context.Context, j *Job, i int, env Env, media Media, a *attempt) error {
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
	if err := a.save(ctx, j); errors.Is(err, ErrCancelled) || errors.Is(err, errTakenOver) {
		return err
	}
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
		if err := a.save(ctx, j); err == nil {
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
	return a.save(ctx, j)
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
