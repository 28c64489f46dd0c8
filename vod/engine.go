package vod

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/speech"
	"github.com/mps-dev/mps/summary"
	"github.com/mps-dev/mps/transcoder"
)

// Job event types.
const (
	EventJobCreated  = "job.created"
	EventJobProgress = "job.progress"
	EventJobFinished = "job.finished"
)

// Errors of the engine.
var (
	ErrInvalidJob = errors.New("invalid job")  // 400
	ErrNotRunning = errors.New("job finished") // 409: nothing to cancel
	ErrCancelled  = errors.New("job cancelled")
)

// Config configures an Engine.
type Config struct {
	// DBPath is the SQLite database of jobs and the queue.
	DBPath string
	// Postgres, when set, is the DSN of a PostgreSQL database that holds
	// the jobs and the queue instead of DBPath (cluster mode): every node
	// on it takes jobs from one queue. Job outputs (Dir) and inputs must
	// then be on storage that every node reaches.
	Postgres string
	// NodeID names this node among the nodes on Postgres (River's client
	// id, and what DeadNodes reports). Default: the host name and a random
	// suffix.
	NodeID string
	// DeadNodes, in cluster mode, returns the ids of the nodes that are
	// gone (the cluster's membership). Every 2 s the jobs that a dead node
	// was running are queued again, and another node finishes them,
	// skipping their tasks that succeeded. Nil: such jobs wait for River's
	// rescuer (JobTimeout plus a minute).
	DeadNodes func(ctx context.Context) ([]string, error)
	// Dir is where job outputs go, one folder per job.
	Dir string
	// Inputs resolves job inputs to local files.
	Inputs *Inputs
	// Workers is how many jobs run at once (0: the default, 1). Negative
	// runs none: the node takes submissions and serves the API, and the
	// cluster's worker nodes run the jobs.
	Workers int
	// JobTimeout bounds one attempt of a job (default 6 h).
	JobTimeout time.Duration
	// MaxAttempts bounds the attempts of a job that fails for a reason
	// other than bad input (default 3).
	MaxAttempts int
	FFmpeg      string
	FFprobe     string
	Caps        *transcoder.Capabilities
	// Runners run the task types.
	Runners map[string]Runner
	// Speech are the recognition engines of captions and summary tasks,
	// by name.
	Speech map[string]speech.Engine
	// Chat, when set, is the chat-completions endpoint of LLM summaries.
	Chat *summary.Chat
	// Presets are the built-in templates: task type -> name -> params.
	Presets map[string]map[string]json.RawMessage
	// Workflows are the configured (read-only) workflows.
	Workflows []Workflow
	// WatchInterval is how often watched folders are scanned (default 5 s).
	WatchInterval time.Duration
	// Bus carries the engine's events and the recording events that
	// trigger workflows.
	Bus *events.Bus
	// Outbox configures webhook delivery.
	Outbox OutboxConfig
	// Webhooks receive every bus event of the types they ask for.
	Webhooks []Webhook
	Logger   *slog.Logger
}

// Webhook is a receiver of bus events.
type Webhook struct {
	URL string `json:"url"`
	// Key signs each body (see Notify.Key).
	Key string `json:"key,omitempty"`
	// Events are the event types, or prefixes ending in ".", such as
	// "recording." or "job."; empty means every event.
	Events []string `json:"events,omitempty"`
}

// wants reports whether the webhook asked for events of typ.
func (w Webhook) wants(typ string) bool {
	if len(w.Events) == 0 {
		return true
	}
	for _, e := range w.Events {
		if e == typ || (strings.HasSuffix(e, ".") && strings.HasPrefix(typ, e)) {
			return true
		}
	}
	return false
}

// runArgs is the River job that runs one MPS job.
type runArgs struct {
	JobID string `json:"job_id"`
}

func (runArgs) Kind() string { return "mps_job" }

// queue is the River client, on either driver.
type queue interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	Start(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

// Engine runs jobs on a persistent queue.
type Engine struct {
	cfg       Config
	log       *slog.Logger
	dialect   dialect
	db        *sql.DB
	x         dbx           // db in its dialect
	pool      *pgxpool.Pool // cluster mode
	node      string
	store     *jobStore
	templates *TemplateStore
	workflows *WorkflowStore
	outbox    *Outbox
	river     queue
	stop      context.CancelFunc
	wg        sync.WaitGroup
	closing   atomic.Bool

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc
}

// NewEngine opens the database, prepares the queue and starts working.
// Embedded, jobs that were running when the process died are queued
// again; in cluster mode, those of dead nodes are (see Config.DeadNodes).
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Workers == 0 {
		cfg.Workers = 1
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 6 * time.Hour
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Inputs == nil {
		cfg.Inputs = &Inputs{}
	}
	if cfg.WatchInterval <= 0 {
		cfg.WatchInterval = 5 * time.Second
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, node: cfg.NodeID, running: map[string]context.CancelCauseFunc{}}
	if cfg.Postgres != "" {
		pool, db, err := openPostgres(ctx, cfg.Postgres)
		if err != nil {
			return nil, fmt.Errorf("jobs database: %w", err)
		}
		e.dialect, e.pool, e.db = dialectPostgres, pool, db
		if e.node == "" {
			e.node = defaultNodeID()
		}
	} else {
		db, err := openDB(cfg.DBPath)
		if err != nil {
			return nil, fmt.Errorf("jobs database: %w", err)
		}
		e.dialect, e.db = dialectSQLite, db
		if e.node == "" {
			e.node = "local"
		}
	}
	e.x = dbx{d: e.dialect, ex: e.db}
	e.store = &jobStore{db: e.x}
	if err := e.start(ctx); err != nil {
		e.closeDB()
		return nil, err
	}
	return e, nil
}

// defaultNodeID is a node id for a cluster node that was given none.
func defaultNodeID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

func (e *Engine) closeDB() {
	_ = e.db.Close()
	if e.pool != nil {
		e.pool.Close()
	}
}

// createTables creates MPS's tables (idempotent).
func createTables(ctx context.Context, x dbx) error {
	if err := (&jobStore{db: x}).migrate(ctx); err != nil {
		return fmt.Errorf("jobs table: %w", err)
	}
	for _, t := range []struct{ name, schema string }{
		{"templates", templateSchema},
		{"workflows", workflowSchema},
		{"webhook outbox", outboxSchema},
	} {
		if err := x.execSchema(ctx, t.schema); err != nil {
			return fmt.Errorf("%s table: %w", t.name, err)
		}
	}
	return nil
}

// migrateLockKey is the PostgreSQL advisory lock that serializes the
// migrations of nodes that start at once.
const migrateLockKey = 0x6d70735f766f64 // "mps_vod"

// prepare migrates the database and returns the River client.
func (e *Engine) prepare(ctx context.Context, cfg *river.Config) (queue, error) {
	quiet := &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)}
	if e.dialect == dialectPostgres {
		cfg.ID = e.node
		driver := riverpgxv5.New(e.pool)
		if err := e.migratePG(ctx, driver, quiet); err != nil {
			return nil, err
		}
		c, err := river.NewClient(driver, cfg)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		return c, nil
	}
	driver := riversqlite.New(e.db)
	migrator, err := rivermigrate.New(driver, quiet)
	if err != nil {
		return nil, fmt.Errorf("queue migrations: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("queue migrations: %w", err)
	}
	if err := createTables(ctx, e.x); err != nil {
		return nil, err
	}
	// One process owns the embedded database: whatever it was running
	// when it died is queued again.
	if _, err := e.db.ExecContext(ctx, `UPDATE river_job SET state = 'available', attempted_by = NULL WHERE state = 'running'`); err != nil {
		return nil, fmt.Errorf("requeue interrupted jobs: %w", err)
	}
	if _, err := e.db.ExecContext(ctx, `UPDATE mps_job SET owner = '', node = '' WHERE owner <> ''`); err != nil {
		return nil, fmt.Errorf("requeue interrupted jobs: %w", err)
	}
	c, err := river.NewClient(driver, cfg)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return c, nil
}

// migratePG runs River's migrations and creates MPS's tables while it
// holds an advisory lock, so that nodes that start at once take turns:
// DDL of two sessions at once collides in PostgreSQL. A node that dies
// holding the lock drops it with its connection.
func (e *Engine) migratePG(ctx context.Context, driver *riverpgxv5.Driver, cfg *rivermigrate.Config) error {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLockKey)); err != nil {
		return fmt.Errorf("migrations lock: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey)); err != nil {
			// Never hand a connection that may hold the lock back to the pool.
			_ = conn.Conn().Close(uctx)
		}
	}()
	migrator, err := rivermigrate.New(driver, cfg)
	if err != nil {
		return fmt.Errorf("queue migrations: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("queue migrations: %w", err)
	}
	return createTables(ctx, e.x)
}

func (e *Engine) start(ctx context.Context) error {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(e.work))
	var err error
	var queues map[string]river.QueueConfig
	if e.cfg.Workers > 0 {
		queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: e.cfg.Workers}}
	}
	e.river, err = e.prepare(ctx, &river.Config{
		Queues:               queues,
		Workers:              workers,
		JobTimeout:           e.cfg.JobTimeout,
		MaxAttempts:          e.cfg.MaxAttempts,
		RescueStuckJobsAfter: e.cfg.JobTimeout + time.Minute,
		FetchPollInterval:    200 * time.Millisecond,
		FetchCooldown:        10 * time.Millisecond,
		Logger:               slog.New(slog.DiscardHandler),
		RetryPolicy:          retryPolicy{},
	})
	if err != nil {
		return err
	}
	e.templates = newTemplateStore(e.x, e.cfg.Presets, e.cfg.Runners)
	if e.workflows, err = newWorkflowStore(e, e.cfg.Workflows); err != nil {
		return err
	}
	outboxNode := ""
	if e.dialect == dialectPostgres {
		outboxNode = e.node
	}
	e.outbox = newOutbox(e.x, outboxNode, e.cfg.Outbox)
	if e.dialect == dialectPostgres {
		// What an earlier process of this node left running.
		if err := e.rescueNodes(ctx, []string{e.node}); err != nil {
			return fmt.Errorf("requeue interrupted jobs: %w", err)
		}
	}
	if e.cfg.Workers > 0 {
		if err := e.river.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("queue: %w", err)
		}
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stop = stop
	e.outbox.Start(bg)
	if e.dialect == dialectPostgres && e.cfg.DeadNodes != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.rescueLoop(bg)
		}()
	}
	for _, w := range e.cfg.Webhooks {
		if e.cfg.Bus != nil {
			cancel := e.cfg.Bus.Subscribe(e.outbox.Sink(w.URL, w.Key, func(ev events.Event) bool { return w.wants(ev.Type) }))
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				<-bg.Done()
				cancel()
			}()
		}
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.workflows.watch(bg, e.cfg.WatchInterval)
	}()
	if e.cfg.Bus != nil {
		triggers := make(chan events.Event, 256)
		cancel := e.cfg.Bus.Subscribe(func(ev events.Event) {
			if ev.Type != OnRecordingFinished && ev.Type != OnRecordingFile {
				return
			}
			select {
			case triggers <- ev:
			default:
				e.log.Warn("workflow trigger dropped: too many at once", "event", ev.Type, "stream", ev.Stream)
			}
		})
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer cancel()
			for {
				select {
				case <-bg.Done():
					// Triggers that arrived before the stop still count.
					for {
						select {
						case ev := <-triggers:
							e.workflows.onEvent(ev)
						default:
							return
						}
					}
				case ev := <-triggers:
					e.workflows.onEvent(ev)
				}
			}
		}()
	}
	return nil
}

// Workflows are the engine's workflows.
func (e *Engine) Workflows() *WorkflowStore { return e.workflows }

// Close stops taking jobs, cancels the running ones (they run again on
// the next start, or at once on another node in cluster mode) and closes
// the database.
func (e *Engine) Close() {
	e.closing.Store(true)
	e.stop()
	e.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.cfg.Workers > 0 {
		if err := e.river.StopAndCancel(ctx); err != nil {
			e.log.Warn("job queue stop", "error", err)
		}
	}
	e.outbox.Close()
	e.closeDB()
}

func newJobID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "job_" + hex.EncodeToString(b)
}

// Submit validates spec and queues a job. A spec whose session id was
// seen before returns that job, and created is false.
func (e *Engine) Submit(ctx context.Context, spec JobSpec) (job *Job, created bool, err error) {
	if err := e.validate(spec); err != nil {
		return nil, false, err
	}
	j := &Job{ID: newJobID(), Spec: spec, State: StateQueued, CreatedAt: time.Now().UTC()}
	j.OutputDir = spec.Output
	if j.OutputDir == "" {
		j.OutputDir = j.ID
	}
	for _, t := range spec.Tasks {
		j.Tasks = append(j.Tasks, TaskStatus{Type: t.Type, Template: t.Template, State: StateQueued, Outputs: []Output{}})
	}
	stored, created, err := e.store.insert(ctx, j)
	if err != nil || !created {
		return stored, false, err
	}
	prio := spec.Priority
	if prio == 0 {
		prio = 2
	}
	if _, err := e.river.Insert(ctx, runArgs{JobID: j.ID}, &river.InsertOpts{Priority: prio}); err != nil {
		j.State, j.Error = StateFailed, "could not be queued: "+err.Error()
		_ = e.store.update(ctx, j)
		return j, true, fmt.Errorf("queue job: %w", err)
	}
	e.emit(EventJobCreated, j)
	return j, true, nil
}

// validate checks a spec before it is queued: one input, known task
// types and templates, a safe output name.
func (e *Engine) validate(spec JobSpec) error {
	in := spec.Input
	n := 0
	for _, s := range []string{in.Path, in.Recording, in.URL} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%w: input: set exactly one of path, recording and url", ErrInvalidJob)
	}
	if len(spec.Tasks) == 0 {
		return fmt.Errorf("%w: tasks: at least one task is needed", ErrInvalidJob)
	}
	if spec.Priority < 0 || spec.Priority > 4 {
		return fmt.Errorf("%w: priority %d: must be 1 (first) to 4 (last)", ErrInvalidJob, spec.Priority)
	}
	if o := spec.Output; o != "" && (!filepath.IsLocal(o) || path.Clean(o) != o) {
		return fmt.Errorf("%w: output %q: must be a relative folder name without '..'", ErrInvalidJob, o)
	}
	if n := spec.Notify; n != nil {
		if u, err := url.Parse(n.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: notify.url %q: want an http or https URL", ErrInvalidJob, n.URL)
		}
		if n.Mode != "" && n.Mode != NotifyFinish && n.Mode != NotifyChange {
			return fmt.Errorf("%w: notify.mode %q: want %s or %s", ErrInvalidJob, n.Mode, NotifyFinish, NotifyChange)
		}
	}
	for i, t := range spec.Tasks {
		if _, ok := e.cfg.Runners[t.Type]; !ok {
			return fmt.Errorf("%w: tasks[%d].type %q: unknown task type", ErrInvalidJob, i, t.Type)
		}
		if t.Template != "" {
			if _, ok := e.template(t.Type, t.Template); !ok {
				return fmt.Errorf("%w: tasks[%d].template %q: no %s template of that name", ErrInvalidJob, i, t.Template, t.Type)
			}
		}
		if len(t.Params) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(t.Params, &obj); err != nil {
				return fmt.Errorf("%w: tasks[%d].params: must be a JSON object", ErrInvalidJob, i)
			}
		}
		// The template with the task's overrides, checked as the runner
		// will read it, so that a bad field is refused now, not when the
		// job runs.
		if c, ok := e.cfg.Runners[t.Type].(ParamsChecker); ok {
			merged, err := e.params(t)
			if err == nil {
				err = c.CheckParams(merged)
			}
			if err != nil {
				return fmt.Errorf("%w: tasks[%d] (%s): %s", ErrInvalidJob, i, t.Type, strings.TrimPrefix(err.Error(), ErrBadInput.Error()+": "))
			}
		}
	}
	return nil
}

func (e *Engine) template(taskType, name string) (json.RawMessage, bool) {
	t, err := e.templates.Get(context.Background(), taskType, name)
	if err != nil {
		return nil, false
	}
	return t.Params, true
}

// Templates are the engine's task templates.
func (e *Engine) Templates() *TemplateStore { return e.templates }

// Get returns a job.
func (e *Engine) Get(ctx context.Context, id string) (*Job, error) { return e.store.get(ctx, id) }

// List returns jobs newest first, with the total that match.
func (e *Engine) List(ctx context.Context, state string, offset, limit int) ([]*Job, int, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return e.store.list(ctx, state, max(offset, 0), limit)
}

// Cancel stops a job: a running one at once (its ffmpeg is killed), a
// queued one before it starts.
func (e *Engine) Cancel(ctx context.Context, id string) (*Job, error) {
	j, err := e.store.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.finished() {
		return j, fmt.Errorf("job %s is %s: %w", id, j.State, ErrNotRunning)
	}
	e.mu.Lock()
	cancel := e.running[id]
	e.mu.Unlock()
	if cancel != nil {
		cancel(ErrCancelled)
	}
	// Mark it now; a running worker sees the state and stops as well.
	j.State = StateCancelled
	j.Error = "cancelled"
	now := time.Now().UTC()
	j.FinishedAt = &now
	for i := range j.Tasks {
		if j.Tasks[i].State == StateQueued || j.Tasks[i].State == StateRunning {
			j.Tasks[i].State = StateCancelled
		}
	}
	if err := e.store.update(ctx, j); err != nil {
		return nil, err
	}
	e.emit(EventJobFinished, j)
	return j, nil
}

// Retry queues a failed or cancelled job again; the tasks that succeeded
// keep their outputs.
func (e *Engine) Retry(ctx context.Context, id string) (*Job, error) {
	j, err := e.store.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.State != StateFailed && j.State != StateCancelled {
		return j, fmt.Errorf("%w: job %s is %s; only failed or cancelled jobs can be retried", ErrInvalidJob, id, j.State)
	}
	j.State, j.Error, j.FinishedAt = StateQueued, "", nil
	for i := range j.Tasks {
		if j.Tasks[i].State != StateSucceeded {
			j.Tasks[i].State, j.Tasks[i].Error, j.Tasks[i].Progress = StateQueued, "", 0
		}
	}
	j.updateProgress()
	if err := e.store.update(ctx, j); err != nil {
		return nil, err
	}
	if _, err := e.river.Insert(ctx, runArgs{JobID: j.ID}, &river.InsertOpts{Priority: max(1, j.Spec.Priority)}); err != nil {
		return nil, fmt.Errorf("queue job: %w", err)
	}
	return j, nil
}

func (e *Engine) emit(typ string, j *Job) {
	data := map[string]any{"id": j.ID, "state": j.State, "progress": j.Progress}
	if j.Error != "" {
		data["error"] = j.Error
	}
	if len(j.Spec.SessionContext) > 0 {
		data["session_context"] = j.Spec.SessionContext
	}
	if j.Spec.SessionID != "" {
		data["session_id"] = j.Spec.SessionID
	}
	if typ == EventJobFinished {
		data["tasks"] = j.Tasks
		data["output_dir"] = j.OutputDir
	}
	ev := events.Event{Type: typ, Time: time.Now(), Data: data}
	if n := j.Spec.Notify; n != nil && (typ == EventJobFinished || n.Mode == NotifyChange) {
		// Stored before the job goes on, so that a crash loses no event.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := e.outbox.Enqueue(ctx, n.URL, n.Key, ev); err != nil {
			e.log.Error("job event not queued for its webhook", "job", j.ID, "event", typ, "error", err)
		}
		cancel()
	}
	if e.cfg.Bus != nil {
		e.cfg.Bus.Publish(ev)
	}
}

// retryPolicy retries a failed attempt after 1 s, 4 s, 9 s, ... (capped at
// 5 min).
type retryPolicy struct{}

func (retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	n := time.Duration(len(job.Errors) + 1)
	return time.Now().Add(min(5*time.Minute, n*n*time.Second))
}

// jobDir is the absolute output folder of a job.
func (e *Engine) jobDir(j *Job) string {
	return filepath.Join(e.cfg.Dir, filepath.FromSlash(j.OutputDir))
}

func ensureDir(dir string) error { return os.MkdirAll(dir, 0o755) }
