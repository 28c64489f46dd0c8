package vod

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mps-dev/mps/events"
)

// Webhook headers.
const (
	HeaderEventID   = "X-MPS-Event-Id"
	HeaderEventType = "X-MPS-Event-Type"
	HeaderAttempt   = "X-MPS-Delivery-Attempt"
	HeaderSignature = "X-MPS-Signature"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// ErrNoDelivery is returned for an unknown event id.
var ErrNoDelivery = errors.New("no such webhook delivery")

// OutboxConfig configures an Outbox. Zero fields take their defaults.
type OutboxConfig struct {
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
	// MaxAttempts is how often an event is tried before it is given up
	// and marked failed (default 20).
	MaxAttempts int
	// BackoffMin is the wait after the first failed attempt; it doubles
	// after each failure (default 1 s) up to BackoffMax (default 10 min).
	BackoffMin time.Duration
	BackoffMax time.Duration
	// PollInterval is how often the database is looked at for deliveries
	// that are due (default 500 ms). Enqueue wakes the loop at once.
	PollInterval time.Duration
	// Retention is how long delivered and failed rows are kept before
	// they are deleted (default 24 h).
	Retention time.Duration
	// Workers bounds how many URLs are delivered to at once (default 16).
	Workers int
	// Client sends the requests. Nil: a client with Timeout that does
	// not follow redirects (a 3xx answer is a failed attempt).
	Client *http.Client
	Logger *slog.Logger
}

// WebhookBody is the JSON body of a webhook request: the event and its
// unique id, which receivers use to drop duplicates.
type WebhookBody struct {
	ID     string         `json:"id"`
	Type   string         `json:"type"`
	Time   time.Time      `json:"time"`
	Stream string         `json:"stream,omitempty"`
	Data   map[string]any `json:"data,omitempty"`
}

// Delivery is the state of one event's delivery to one URL.
type Delivery struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Type      string    `json:"type"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// NextAt is when a pending delivery is tried next.
	NextAt time.Time `json:"next_at"`
	// DoneAt is when it was delivered or given up.
	DoneAt *time.Time `json:"done_at,omitempty"`
}

const outboxSchema = `
CREATE TABLE IF NOT EXISTS mps_outbox (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	url TEXT NOT NULL,
	type TEXT NOT NULL,
	body TEXT NOT NULL,
	signature TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL DEFAULT 'pending',
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	done_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS mps_outbox_url ON mps_outbox (state, url, seq);
CREATE INDEX IF NOT EXISTS mps_outbox_done ON mps_outbox (state, done_at);
CREATE TABLE IF NOT EXISTS mps_outbox_lease (
	url TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
`

const (
	// asyncQueue is how many events EnqueueAsync buffers.
	asyncQueue = 4096
	// asyncWait is how long EnqueueAsync waits for room before it drops.
	asyncWait = time.Second
	// dbTimeout bounds the outbox's own database writes.
	dbTimeout = 10 * time.Second
	// pruneEvery is how often old rows are deleted.
	pruneEvery = time.Minute
	// leaseMargin is how much longer than a request a URL's lease lasts.
	leaseMargin = 30 * time.Second
)

// Outbox delivers events to webhooks through a table in the jobs
// database, so that a receiver that is down gets them later and a
// restart loses nothing.
//
// Deliveries to one URL go out one at a time in the order they were
// enqueued: event N+1 waits until N is delivered or given up. Each URL
// has its own worker, so a slow or dead receiver holds up only its own
// events. A row is marked delivered after a 2xx answer and never sent
// again; a crash between the answer and the mark can resend it once,
// and receivers drop duplicates by event id.
//
// In cluster mode several nodes share the table. A node delivers to a URL
// only while it holds the URL's lease (a row of mps_outbox_lease, taken
// and renewed atomically before each attempt, good for Timeout plus 30 s):
// one node at a time, so the order holds across nodes too. The lease of a
// node that dies runs out, and another node takes the URL over.
type Outbox struct {
	db     dbx
	owner  string // the lease owner in cluster mode; "" alone on the database
	cfg    OutboxConfig
	log    *slog.Logger
	client *http.Client

	wake chan struct{}

	mu      sync.Mutex
	running bool
	stop    chan struct{}
	active  map[string]bool // URLs with a worker
	wg      sync.WaitGroup

	// EnqueueAsync's writer.
	asyncMu     sync.RWMutex
	asyncClosed bool
	asyncOnce   sync.Once
	asyncCh     chan outboxRow
	asyncDone   chan struct{}
}

// outboxRow is one delivery.
type outboxRow struct {
	seq       int64
	id        string
	url       string
	typ       string
	body      []byte
	signature string
	attempts  int
	nextAt    int64 // unix ms
}

// NewOutbox prepares the outbox table in db, a SQLite database that no
// other process delivers from. db stays the caller's: Close does not close
// it. Call Start to begin delivering.
func NewOutbox(db *sql.DB, cfg OutboxConfig) (*Outbox, error) {
	if db == nil {
		return nil, errors.New("outbox: no database")
	}
	x := dbx{d: dialectSQLite, ex: db}
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	if err := x.execSchema(ctx, outboxSchema); err != nil {
		return nil, fmt.Errorf("webhook outbox table: %w", err)
	}
	return newOutbox(x, "", cfg), nil
}

// newOutbox delivers from db, whose tables exist. With a node id, the
// database is shared with other nodes, and deliveries to a URL take its
// lease.
func newOutbox(db dbx, node string, cfg OutboxConfig) *Outbox {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 20
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 10 * time.Minute
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 24 * time.Hour
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Timeout: cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	o := &Outbox{
		db:     db,
		cfg:    cfg,
		log:    cfg.Logger,
		client: client,
		wake:   make(chan struct{}, 1),
		active: map[string]bool{},
	}
	if node != "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.owner = node + "/" + hex.EncodeToString(b)
	}
	return o
}

// lease takes or renews the lease of a URL (cluster mode), and reports
// whether this outbox holds it.
func (o *Outbox) lease(ctx context.Context, u string) bool {
	if o.owner == "" {
		return true
	}
	now := time.Now()
	res, err := o.db.ExecContext(ctx, `INSERT INTO mps_outbox_lease (url, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (url) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE mps_outbox_lease.owner = excluded.owner OR mps_outbox_lease.expires_at < ?`,
		u, o.owner, now.Add(o.cfg.Timeout+leaseMargin).UnixMilli(), now.UnixMilli())
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("webhook outbox: lease", "url", redactURL(u), "error", err)
		}
		return false
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1
}

// unlease gives up the lease of a URL.
func (o *Outbox) unlease(ctx context.Context, u string) {
	if o.owner == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dbTimeout)
	defer cancel()
	if _, err := o.db.ExecContext(ctx, `DELETE FROM mps_outbox_lease WHERE url = ? AND owner = ?`, u, o.owner); err != nil {
		o.log.Warn("webhook outbox: lease not given up; it runs out", "url", redactURL(u), "error", err)
	}
}

// Sign returns the X-MPS-Signature header of body: "sha256=" and the hex
// HMAC-SHA256 of body with key.
func Sign(key string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is the signature of body with key.
func Verify(key string, body []byte, header string) bool {
	h, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(h)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func newEventID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "evt_" + hex.EncodeToString(b)
}

// prepare checks the URL and freezes the event into a row: its body is
// marshalled now, so later changes to ev.Data do not show.
func (o *Outbox) prepare(rawURL, key string, ev events.Event) (outboxRow, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return outboxRow{}, fmt.Errorf("webhook url %q: must be an http or https URL", rawURL)
	}
	if ev.Type == "" {
		return outboxRow{}, errors.New("webhook event: no type")
	}
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	id := newEventID()
	body, err := json.Marshal(WebhookBody{ID: id, Type: ev.Type, Time: t.UTC(), Stream: ev.Stream, Data: ev.Data})
	if err != nil {
		return outboxRow{}, fmt.Errorf("webhook event %s: %w", ev.Type, err)
	}
	r := outboxRow{id: id, url: rawURL, typ: ev.Type, body: body}
	if key != "" {
		r.signature = Sign(key, body)
	}
	return r, nil
}

func (o *Outbox) insert(ctx context.Context, r outboxRow) error {
	now := time.Now().UnixMilli()
	_, err := o.db.ExecContext(ctx, `INSERT INTO mps_outbox (id, url, type, body, signature, state, next_at, created_at)
		VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`, r.id, r.url, r.typ, string(r.body), r.signature, now, now)
	if err != nil {
		return fmt.Errorf("webhook outbox: store %s: %w", r.typ, err)
	}
	o.poke()
	return nil
}

// Enqueue stores the delivery of ev to url, signed with key when key is
// not empty, and returns the event's id. The row is in the database when
// Enqueue returns.
func (o *Outbox) Enqueue(ctx context.Context, url, key string, ev events.Event) (eventID string, err error) {
	r, err := o.prepare(url, key, ev)
	if err != nil {
		return "", err
	}
	if err := o.insert(ctx, r); err != nil {
		return "", err
	}
	return r.id, nil
}

// EnqueueAsync is Enqueue for callers that must not wait on the database,
// such as event bus subscribers: the body is made at once and stored by a
// background writer, in call order. When the writer is more than a few
// thousand events behind, it waits up to a second and then drops the
// event with a logged error. Errors are logged, not returned.
func (o *Outbox) EnqueueAsync(url, key string, ev events.Event) (eventID string) {
	r, err := o.prepare(url, key, ev)
	if err != nil {
		o.log.Error("webhook event not queued", "type", ev.Type, "url", redactURL(url), "error", err)
		return ""
	}
	o.asyncOnce.Do(func() {
		o.asyncCh = make(chan outboxRow, asyncQueue)
		o.asyncDone = make(chan struct{})
		go o.writeLoop()
	})
	o.asyncMu.RLock()
	defer o.asyncMu.RUnlock()
	if o.asyncClosed {
		// Closed: store it directly, briefly.
		ctx, cancel := context.WithTimeout(context.Background(), asyncWait)
		defer cancel()
		if err := o.insert(ctx, r); err != nil {
			o.log.Error("webhook event not queued", "event_id", r.id, "type", r.typ, "url", redactURL(url), "error", err)
			return ""
		}
		return r.id
	}
	select {
	case o.asyncCh <- r:
		return r.id
	default:
	}
	t := time.NewTimer(asyncWait)
	defer t.Stop()
	select {
	case o.asyncCh <- r:
		return r.id
	case <-t.C:
		o.log.Error("webhook event dropped: outbox writer is behind", "event_id", r.id, "type", r.typ, "url", redactURL(url))
		return ""
	}
}

func (o *Outbox) writeLoop() {
	defer close(o.asyncDone)
	for r := range o.asyncCh {
		ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
		if err := o.insert(ctx, r); err != nil {
			o.log.Error("webhook event not queued", "event_id", r.id, "type", r.typ, "url", redactURL(r.url), "error", err)
		}
		cancel()
	}
}

// Sink returns a subscriber for the events bus that queues the events
// keep accepts (all when keep is nil) for url, signed with key. It never
// blocks for long (see EnqueueAsync).
func (o *Outbox) Sink(url, key string, keep func(events.Event) bool) func(events.Event) {
	return func(e events.Event) {
		if keep != nil && !keep(e) {
			return
		}
		o.EnqueueAsync(url, key, e)
	}
}

// Pending returns how many deliveries are neither delivered nor given up.
func (o *Outbox) Pending(ctx context.Context) (int, error) {
	var n int
	err := o.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mps_outbox WHERE state = 'pending'`).Scan(&n)
	return n, err
}

// Status returns the delivery of an event.
func (o *Outbox) Status(ctx context.Context, eventID string) (Delivery, error) {
	var d Delivery
	var created, next, done int64
	err := o.db.QueryRowContext(ctx, `SELECT id, url, type, state, attempts, last_error, created_at, next_at, done_at
		FROM mps_outbox WHERE id = ?`, eventID).Scan(&d.ID, &d.URL, &d.Type, &d.State, &d.Attempts, &d.LastError, &created, &next, &done)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("webhook event %q: %w", eventID, ErrNoDelivery)
	}
	if err != nil {
		return d, err
	}
	d.CreatedAt = time.UnixMilli(created).UTC()
	d.NextAt = time.UnixMilli(next).UTC()
	if done != 0 {
		t := time.UnixMilli(done).UTC()
		d.DoneAt = &t
	}
	return d, nil
}

// Start delivers in the background until Close or until ctx ends. Rows
// left pending by an earlier run are picked up. Cancelling ctx also
// aborts the requests in flight (they are tried again later); Close lets
// them finish.
func (o *Outbox) Start(ctx context.Context) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.running {
		return
	}
	o.running = true
	o.stop = make(chan struct{})
	o.wg.Add(1)
	go o.loop(ctx, o.stop)
}

// Close stops delivering: it waits for the requests in flight (each at
// most Timeout) and for the events given to EnqueueAsync to be stored.
// It does not close the database. Pending rows stay for the next Start.
func (o *Outbox) Close() {
	o.mu.Lock()
	if o.running {
		close(o.stop)
		o.running = false
	}
	o.mu.Unlock()
	o.wg.Wait()

	o.asyncMu.Lock()
	started := o.asyncCh != nil && !o.asyncClosed
	o.asyncClosed = true
	if started {
		close(o.asyncCh)
	}
	o.asyncMu.Unlock()
	if started {
		<-o.asyncDone
	}
}

func (o *Outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *Outbox) loop(ctx context.Context, stop chan struct{}) {
	defer o.wg.Done()
	t := time.NewTicker(o.cfg.PollInterval)
	defer t.Stop()
	var lastPrune time.Time
	for {
		if time.Since(lastPrune) >= pruneEvery {
			o.prune(ctx)
			lastPrune = time.Now()
		}
		o.dispatch(ctx, stop)
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-o.wake:
		case <-t.C:
		}
	}
}

// dispatch starts a worker for each URL whose oldest pending delivery is
// due and that has none.
func (o *Outbox) dispatch(ctx context.Context, stop chan struct{}) {
	type head struct {
		url    string
		nextAt int64
	}
	rows, err := o.db.QueryContext(ctx, `SELECT o.url, o.seq, o.next_at FROM mps_outbox o
		JOIN (SELECT MIN(seq) AS s FROM mps_outbox WHERE state = 'pending' GROUP BY url) h ON o.seq = h.s
		ORDER BY o.seq`)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("webhook outbox: read", "error", err)
		}
		return
	}
	var heads []head
	for rows.Next() {
		var h head
		var seq int64
		if err := rows.Scan(&h.url, &seq, &h.nextAt); err != nil {
			o.log.Error("webhook outbox: read", "error", err)
			break
		}
		heads = append(heads, h)
	}
	_ = rows.Close()
	now := time.Now().UnixMilli()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, h := range heads {
		if len(o.active) >= o.cfg.Workers {
			return
		}
		if h.nextAt > now || o.active[h.url] {
			continue
		}
		o.active[h.url] = true
		o.wg.Add(1)
		go o.deliverURL(ctx, stop, h.url)
	}
}

// deliverURL sends the due deliveries of one URL in order, and returns
// at the first that fails (the dispatcher comes back when it is due). In
// cluster mode it returns when another node holds the URL's lease.
func (o *Outbox) deliverURL(ctx context.Context, stop chan struct{}, u string) {
	leased := false
	defer func() {
		if leased {
			o.unlease(ctx, u)
		}
		o.mu.Lock()
		delete(o.active, u)
		o.mu.Unlock()
		if leased {
			// Another node's lease waits for the next poll, not for a poke.
			o.poke()
		}
		o.wg.Done()
	}()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		if !o.lease(ctx, u) {
			return
		}
		leased = true
		// Read after the lease: the head may have been delivered by the
		// node that held it before.
		r, ok := o.head(ctx, u)
		if !ok || r.nextAt > time.Now().UnixMilli() {
			return
		}
		if !o.attempt(ctx, r) {
			return
		}
	}
}

// head returns the oldest pending delivery of a URL.
func (o *Outbox) head(ctx context.Context, u string) (outboxRow, bool) {
	r := outboxRow{url: u}
	var body string
	err := o.db.QueryRowContext(ctx, `SELECT seq, id, type, body, signature, attempts, next_at FROM mps_outbox
		WHERE state = 'pending' AND url = ? ORDER BY seq LIMIT 1`, u).
		Scan(&r.seq, &r.id, &r.typ, &body, &r.signature, &r.attempts, &r.nextAt)
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) && ctx.Err() == nil {
			o.log.Error("webhook outbox: read", "url", redactURL(u), "error", err)
		}
		return r, false
	}
	r.body = []byte(body)
	return r, true
}

// attempt sends one delivery and records the outcome. It reports whether
// it was delivered.
func (o *Outbox) attempt(ctx context.Context, r outboxRow) bool {
	n := r.attempts + 1
	log := o.log.With("event_id", r.id, "type", r.typ, "url", redactURL(r.url), "attempt", n)
	failure, retryAfter := o.send(ctx, r, n)
	// Record the outcome even when ctx ends now: a 2xx must be marked.
	dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dbTimeout)
	defer cancel()
	now := time.Now()
	if failure == "" {
		_, err := o.db.ExecContext(dbctx, `UPDATE mps_outbox SET state = 'delivered', attempts = ?, last_error = '', done_at = ?
			WHERE seq = ? AND state = 'pending'`, n, now.UnixMilli(), r.seq)
		if err != nil {
			log.Error("webhook delivered but not marked; it may be sent again", "error", err)
			return false
		}
		log.Debug("webhook delivered")
		return true
	}
	if ctx.Err() != nil {
		// Stopped in flight: not the receiver's fault, not an attempt.
		return false
	}
	if n >= o.cfg.MaxAttempts {
		_, err := o.db.ExecContext(dbctx, `UPDATE mps_outbox SET state = 'failed', attempts = ?, last_error = ?, done_at = ?
			WHERE seq = ? AND state = 'pending'`, n, failure, now.UnixMilli(), r.seq)
		if err != nil {
			log.Error("webhook outbox: write", "error", err)
		}
		log.Warn("webhook delivery failed; given up", "attempts", n, "error", failure)
		return false
	}
	wait := o.backoff(n)
	if retryAfter > wait {
		wait = min(retryAfter, o.cfg.BackoffMax)
	}
	_, err := o.db.ExecContext(dbctx, `UPDATE mps_outbox SET attempts = ?, last_error = ?, next_at = ?
		WHERE seq = ? AND state = 'pending'`, n, failure, now.Add(wait).UnixMilli(), r.seq)
	if err != nil {
		log.Error("webhook outbox: write", "error", err)
	}
	log.Info("webhook delivery failed; will retry", "error", failure, "retry_in", wait.Round(time.Millisecond))
	return false
}

// send posts a delivery. It returns "" on a 2xx answer, else what went
// wrong and the wait the receiver asked for in Retry-After.
func (o *Outbox) send(ctx context.Context, r outboxRow, attempt int) (failure string, retryAfter time.Duration) {
	rctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, r.url, bytes.NewReader(r.body))
	if err != nil {
		return err.Error(), 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mps-webhook/1")
	req.Header.Set(HeaderEventID, r.id)
	req.Header.Set(HeaderEventType, r.typ)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	if r.signature != "" {
		req.Header.Set(HeaderSignature, r.signature)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a secret
		}
		return err.Error(), 0
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return "", 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if s := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "")); s != "" {
		msg += ": " + s
	}
	return msg, retryAfter
}

// backoff is the wait after the n-th failed attempt: BackoffMin doubled
// n-1 times, capped at BackoffMax, give or take 10 %.
func (o *Outbox) backoff(n int) time.Duration {
	d := o.cfg.BackoffMin
	for i := 1; i < n && d < o.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, o.cfg.BackoffMax)
	d = time.Duration(float64(d) * (0.9 + 0.2*mrand.Float64()))
	return min(d, o.cfg.BackoffMax)
}

// prune deletes delivered and failed rows older than Retention.
func (o *Outbox) prune(ctx context.Context) {
	cut := time.Now().Add(-o.cfg.Retention).UnixMilli()
	res, err := o.db.ExecContext(ctx, `DELETE FROM mps_outbox WHERE state IN ('delivered', 'failed') AND done_at < ?`, cut)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("webhook outbox: prune", "error", err)
		}
		return
	}
	if n, _ := res.RowsAffected(); n > 0 {
		o.log.Debug("webhook outbox pruned", "rows", n)
	}
}

// redactURL drops the query and credentials of a URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad url)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
