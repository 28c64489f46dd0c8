package vod

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

const schema = `
CREATE TABLE IF NOT EXISTS mps_job (
	id TEXT PRIMARY KEY,
	session_id TEXT UNIQUE,
	state TEXT NOT NULL,
	created_at TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mps_job_state ON mps_job (state);
CREATE INDEX IF NOT EXISTS mps_job_created ON mps_job (created_at);
`

// jobStore keeps jobs as JSON rows with their state and idempotency key
// in columns.
type jobStore struct{ db *sql.DB }

func (s *jobStore) migrate(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, schema)
	return err
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

func (s *jobStore) get(ctx context.Context, id string) (*Job, error) {
	var body string
	err := s.db.QueryRowContext(ctx, `SELECT body FROM mps_job WHERE id = ?`, id).Scan(&body)
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
