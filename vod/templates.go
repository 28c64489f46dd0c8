package vod

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Template errors.
var (
	ErrNoTemplate      = errors.New("no such template")
	ErrInvalidTemplate = errors.New("invalid template")
	ErrReadOnly        = errors.New("built-in, read-only")
)

// Template is a named set of task params of one task type.
type Template struct {
	Type      string          `json:"type"`
	Name      string          `json:"name"`
	Params    json.RawMessage `json:"params"`
	Builtin   bool            `json:"builtin"`
	UpdatedAt time.Time       `json:"updated_at,omitzero"`
}

// ParamsChecker is implemented by runners that can check params without
// running; templates are checked with it when they are saved.
type ParamsChecker interface {
	CheckParams(params json.RawMessage) error
}

// TemplateStore holds the built-in presets and the user's templates.
type TemplateStore struct {
	db      dbx
	presets map[string]map[string]json.RawMessage // type -> name -> params
	runners map[string]Runner
}

const templateSchema = `
CREATE TABLE IF NOT EXISTS mps_template (
	type TEXT NOT NULL,
	name TEXT NOT NULL,
	params TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (type, name)
);`

// newTemplateStore serves templates from db, whose mps_template table
// exists (see createTables).
func newTemplateStore(db dbx, presets map[string]map[string]json.RawMessage, runners map[string]Runner) *TemplateStore {
	return &TemplateStore{db: db, presets: presets, runners: runners}
}

// List returns the templates of taskType ("" for every type): presets
// first, then the user's, each sorted by name.
func (s *TemplateStore) List(ctx context.Context, taskType string) ([]Template, error) {
	out := []Template{}
	for typ, byName := range s.presets {
		if taskType != "" && typ != taskType {
			continue
		}
		for name, params := range byName {
			out = append(out, Template{Type: typ, Name: name, Params: params, Builtin: true})
		}
	}
	q, args := `SELECT type, name, params, updated_at FROM mps_template`, []any{}
	if taskType != "" {
		q, args = q+` WHERE type = ?`, append(args, taskType)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var t Template
		var params, updated string
		if err := rows.Scan(&t.Type, &t.Name, &params, &updated); err != nil {
			return nil, err
		}
		t.Params = json.RawMessage(params)
		t.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Template) int {
		if a.Builtin != b.Builtin {
			if a.Builtin {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name))
	})
	return out, rows.Err()
}

// Get returns one template; a user template never hides a preset, since
// presets cannot be overwritten.
func (s *TemplateStore) Get(ctx context.Context, taskType, name string) (Template, error) {
	if p, ok := s.presets[taskType][name]; ok {
		return Template{Type: taskType, Name: name, Params: p, Builtin: true}, nil
	}
	var params, updated string
	err := s.db.QueryRowContext(ctx, `SELECT params, updated_at FROM mps_template WHERE type = ? AND name = ?`, taskType, name).Scan(&params, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Template{}, fmt.Errorf("%s template %q: %w", taskType, name, ErrNoTemplate)
	}
	if err != nil {
		return Template{}, err
	}
	t := Template{Type: taskType, Name: name, Params: json.RawMessage(params)}
	t.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
	return t, nil
}

// validName is what template and workflow names may be: 1 to 64 of
// [A-Za-z0-9_.-], not starting with a dot.
func validName(name string) bool {
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

// check validates a template before it is saved.
func (s *TemplateStore) check(t Template) error {
	runner, ok := s.runners[t.Type]
	if !ok {
		return fmt.Errorf("%w: type %q: unknown task type", ErrInvalidTemplate, t.Type)
	}
	if !validName(t.Name) {
		return fmt.Errorf("%w: name %q: use 1 to 64 letters, digits, '_', '-' or '.'", ErrInvalidTemplate, t.Name)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(t.Params, &obj); err != nil || obj == nil {
		return fmt.Errorf("%w: params: must be a JSON object", ErrInvalidTemplate)
	}
	if c, ok := runner.(ParamsChecker); ok {
		if err := c.CheckParams(t.Params); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidTemplate, err)
		}
	}
	return nil
}

// Put creates or replaces a user template.
func (s *TemplateStore) Put(ctx context.Context, t Template) (created bool, err error) {
	if _, ok := s.presets[t.Type][t.Name]; ok {
		return false, fmt.Errorf("%s template %q: %w", t.Type, t.Name, ErrReadOnly)
	}
	if err := s.check(t); err != nil {
		return false, err
	}
	compact, err := json.Marshal(t.Params)
	if err != nil {
		return false, fmt.Errorf("%w: params: %v", ErrInvalidTemplate, err)
	}
	_, getErr := s.Get(ctx, t.Type, t.Name)
	created = errors.Is(getErr, ErrNoTemplate)
	_, err = s.db.ExecContext(ctx, `INSERT INTO mps_template (type, name, params, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (type, name) DO UPDATE SET params = excluded.params, updated_at = excluded.updated_at`,
		t.Type, t.Name, string(compact), time.Now().UTC().Format(time.RFC3339Nano))
	return created, err
}

// Delete removes a user template.
func (s *TemplateStore) Delete(ctx context.Context, taskType, name string) error {
	if _, ok := s.presets[taskType][name]; ok {
		return fmt.Errorf("%s template %q: %w", taskType, name, ErrReadOnly)
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM mps_template WHERE type = ? AND name = ?`, taskType, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s template %q: %w", taskType, name, ErrNoTemplate)
	}
	return nil
}
