package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// tmpPrefix starts the name of the temporary file a Put writes before it
// renames it into place. Keys with a segment starting with it are refused,
// and List skips such files.
const tmpPrefix = ".mps-put-"

// Local stores objects as files below Dir: key "a/b/c.mp4" is the file
// Dir/a/b/c.mp4. Put writes a temporary file in the target directory,
// syncs it and renames it into place, so readers never see a partial
// object.
type Local struct {
	Dir string
}

var _ Store = (*Local)(nil)

// Name returns "local".
func (l *Local) Name() string { return "local" }

// path maps a key to its file below l.Dir, refusing keys that are not
// valid or that could name a Put's temporary file.
func (l *Local) path(key string) (string, error) {
	if l.Dir == "" {
		return "", errors.New("local store: no directory")
	}
	if err := ValidKey(key); err != nil {
		return "", err
	}
	for _, seg := range strings.Split(key, "/") {
		if strings.HasPrefix(seg, tmpPrefix) {
			return "", fmt.Errorf("invalid key %q: segment starts with reserved %q", key, tmpPrefix)
		}
	}
	return filepath.Join(l.Dir, filepath.FromSlash(key)), nil
}

// Put writes the object atomically (temporary file, fsync, rename). When
// size >= 0, reading a different number of bytes from r is an error and
// nothing is stored.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	p, err := l.path(key)
	if err != nil {
		return fmt.Errorf("local put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local put %s: %w", key, err)
	}
	f, err := createTemp(filepath.Dir(p))
	if err != nil {
		return fmt.Errorf("local put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("local put %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("local put %s: read %d bytes, expected %d", key, n, size)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("local put %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("local put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("local put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("local put %s: %w", key, err)
	}
	return nil
}

// createTemp creates the temporary file of a Put in dir, making dir first.
// A concurrent Delete may remove the empty directory between the two
// steps, so that is retried.
func createTemp(dir string) (*os.File, error) {
	for i := 0; ; i++ {
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			var f *os.File
			if f, err = os.CreateTemp(dir, tmpPrefix+"*"); err == nil {
				return f, nil
			}
		}
		if i == 10 || !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (l *Local) open(op, key string) (*os.File, Info, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, Info{}, fmt.Errorf("local %s: %w", op, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, Info{}, l.mapErr(op, key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, Info{}, l.mapErr(op, key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, Info{}, fmt.Errorf("local %s %s: %w", op, key, ErrNotFound)
	}
	return f, Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

func (l *Local) mapErr(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
		return fmt.Errorf("local %s %s: %w", op, key, ErrNotFound)
	}
	return fmt.Errorf("local %s %s: %w", op, key, err)
}

// isNotDir reports an ENOTDIR-style failure: a file stands where the key
// needs a directory, so the key does not exist.
func isNotDir(err error) bool {
	return errors.Is(err, syscall.ENOTDIR)
}

// Get opens the object's file.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, Info{}, fmt.Errorf("local get %s: %w", key, err)
	}
	f, info, err := l.open("get", key)
	if err != nil {
		return nil, Info{}, err
	}
	return f, info, nil
}

// GetRange opens n bytes from offset off (n < 0: to the end).
func (l *Local) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("local get range %s: negative offset %d", key, off)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local get range %s: %w", key, err)
	}
	f, info, err := l.open("get range", key)
	if err != nil {
		return nil, err
	}
	if off > info.Size {
		f.Close()
		return nil, fmt.Errorf("local get range %s: offset %d past the end (%d bytes)", key, off, info.Size)
	}
	if n < 0 || off+n > info.Size {
		n = info.Size - off
	}
	return sectionReadCloser{io.NewSectionReader(f, off, n), f}, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	io.Closer
}

// Stat describes the object.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	p, err := l.path(key)
	if err != nil {
		return Info{}, fmt.Errorf("local stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("local stat %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, l.mapErr("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("local stat %s: %w", key, ErrNotFound)
	}
	return Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()}, nil
}

// List walks the directory that holds prefix and returns the regular files
// whose key starts with prefix, ordered by key.
func (l *Local) List(ctx context.Context, prefix string) ([]Info, error) {
	if l.Dir == "" {
		return nil, errors.New("local list: no directory")
	}
	if err := validPrefix(prefix); err != nil {
		return nil, fmt.Errorf("local list: %w", err)
	}
	root := l.Dir
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		root = filepath.Join(l.Dir, filepath.FromSlash(prefix[:i]))
	}
	var out []Info
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && (errors.Is(err, fs.ErrNotExist) || isNotDir(err)) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(l.Dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			// Skip directories that cannot hold a matching key.
			if p != root && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), tmpPrefix) || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		out = append(out, Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("local list %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object's file, then the directories it leaves empty
// (up to Dir). A missing object is not an error.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return fmt.Errorf("local delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotDir(err) {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	root := filepath.Clean(l.Dir)
	for dir := filepath.Dir(p); dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil { // not empty (or gone): stop
			break
		}
	}
	return nil
}

// URL returns "": local objects have no presigned URL.
func (l *Local) URL(ctx context.Context, key string, expiry time.Duration) (string, error) {
	if _, err := l.path(key); err != nil {
		return "", fmt.Errorf("local url: %w", err)
	}
	return "", nil
}
