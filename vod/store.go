package vod

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// ErrNoJob is returned for an unknown job id.
var ErrNoJob = errors.New("no such job")

// openDB opens (and creates) the SQLite database at path. One connection:
// SQLite allows one writer, and River shares it.
func openDB(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// pgConnectTimeout bounds the first connection to PostgreSQL.
const pgConnectTimeout = 5 * time.Second

// openPostgres connects to PostgreSQL: a pgx pool for the queue, and a
// database/sql handle on the same pool for MPS's tables. An unreachable
// server is an error naming its address within pgConnectTimeout.
func openPostgres(ctx context.Context, dsn string) (*pgxpool.Pool, *sql.DB, error) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres dsn: %w", err) // pgx leaves the password out
	}
	addr := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port)))
	if pc.ConnConfig.ConnectTimeout <= 0 || pc.ConnConfig.ConnectTimeout > pgConnectTimeout {
		pc.ConnConfig.ConnectTimeout = pgConnectTimeout
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// River, the workers' job rows and the webhook outbox share it.
		pc.MaxConns = 24
	}
	cctx, cancel := context.WithTimeout(ctx, pgConnectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, pc)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres %s: %w", addr, err)
	}
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			// The server answered: a wrong password, a missing database.
			return nil, nil, fmt.Errorf("postgres %s: %w", addr, err)
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, nil, fmt.Errorf("postgres %s unreachable: no answer within %s: %w", addr, pgConnectTimeout, err)
		}
		return nil, nil, fmt.Errorf("postgres %s unreachable: %w", addr, err)
	}
	return pool, stdlib.OpenDBFromPool(pool), nil
}

const schema = `
CREATE TABLE IF NOT EXISTS mps_job (
	id TEXT PRIMARY KEY,
	session_id TEXT UNIQUE,
	state TEXT NOT NULL,
	created_at TEXT NOT NULL,
	body TEXT NOT NULL,
	owner TEXT NOT NULL DEFAULT '',
	node TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS mps_job_state ON mps_job (state);
CREATE INDEX IF NOT EXISTS mps_job_created ON mps_job (created_at);
`

// jobOwnerIndex comes after the owner columns, which older databases
// get by migration.
const jobOwnerIndex = `CREATE INDEX IF NOT EXISTS mps_job_node ON mps_job (node);`

// jobStore keeps jobs as JSON rows with their state and idempotency key
// in columns.
//
// The attempt that runs a job owns its row: owner is the attempt's token
// (node, River job and attempt) and node the node that runs it, both
// empty when no attempt runs it. A worker claims the row before it runs
// the job and writes it only while it owns it, so that two attempts
// never run one job at once, on one node or on two.
type jobStore struct{ db dbx }

func (s *jobStore) migrate(ctx context.Context) error {
	if err := s.db.execSchema(ctx, schema); err != nil {
		return err
	}
	if err := s.db.addColumn(ctx, "mps_job", "owner", "TEXT NOT NULL DEFAULT ''"); err != nil {
		return err
	}
	if err := s.db.addColumn(ctx, "mps_job", "node", "TEXT NOT NULL DEFAULT ''"); err != nil {
		return err
	}
	return s.db.execSchema(ctx, jobOwnerIndex)
}

// claim makes the attempt tok on node the owner of job id, unless another
// attempt owns it.
func (s *jobStore) claim(ctx context.Context, id, node, tok string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mps_job SET owner = ?, node = ? WHERE id = ? AND owner = ''`, tok, node, id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// release gives up the ownership of attempt tok.
func (s *jobStore) release(ctx context.Context, id, tok string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE mps_job SET owner = '', node = '' WHERE id = ? AND owner = ?`, id, tok)
	return err
}

// save stores j for the attempt tok that owns it. It reports false, and
// stores nothing, when the attempt no longer owns the job or the job was
// cancelled meanwhile.
func (s *jobStore) save(ctx context.Context, j *Job, tok string) (bool, error) {
	body, err := json.Marshal(j)
	if err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE mps_job SET state = ?, body = ? WHERE id = ? AND owner = ? AND state <> ?`,
		j.State, string(body), j.ID, tok, StateCancelled)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// owner returns the state and owner of a job.
func (s *jobStore) owner(ctx context.Context, id string) (state, owner string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT state, owner FROM mps_job WHERE id = ?`, id).Scan(&state, &owner)
	return state, owner, err
}

// insert stores a new job; with a session id that exists, it returns the
// stored job and false.
func (s *jobStore) insert(ctx context.Context, j *Job) (*Job, bool, error) {
	body, err := json.Marshal(j)
	if err != nil {
		return nil, false, err
	}
	var sid any
	if j.Spec.SessionID != "" {
		sid = j.Spec.SessionID
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO mps_job (id, session_id, state, created_at, body) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (session_id) DO NOTHING`, j.ID, sid, j.State, j.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000000Z"), string(body))
	if err != nil {
		return nil, false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var id string
		if err := s.db.QueryRowContext(ctx, `SELECT id FROM mps_job WHERE session_id = ?`, sid).Scan(&id); err != nil {
			return nil, false, err
		}
		old, err := s.get(ctx, id)
		return old, false, err
	}
	return j, true, nil
}

func (s *jobStore) get(ctx context.Context, id string) (*Job, error) { return loadJob(ctx, s.db, id) }

// loadJob reads a job from a database or a transaction.
func loadJob(ctx context.Context, x dbx, id string) (*Job, error) {
	var body string
	err := x.QueryRowContext(ctx, `SELECT body FROM mps_job WHERE id = ?`, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("job %q: %w", id, ErrNoJob)
	}
	if err != nil {
		return nil, err
	}
	var j Job
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return nil, fmt.Errorf("job %q: %w", id, err)
	}
	return &j, nil
}

func (s *jobStore) update(ctx context.Context, j *Job) error {
	body, err := json.Marshal(j)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `UPDATE mps_job SET state = ?, body = ? WHERE id = ?`, j.State, string(body), j.ID)
	return err
}

// list returns jobs newest first, optionally of one state.
func (s *jobStore) list(ctx context.Context, state string, offset, limit int) ([]*Job, int, error) {
	where, args := "", []any{}
	if state != "" {
		where, args = "WHERE state = ?", append(args, state)
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM mps_job `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM mps_job `+where+` ORDER BY created_at DESC, id LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, 0, err
		}
		var j Job
		if err := json.Unmarshal([]byte(body), &j); err != nil {
			return nil, 0, err
		}
		out = append(out, &j)
	}
	return out, total, rows.Err()
}
