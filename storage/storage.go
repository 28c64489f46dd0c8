// Package storage is the one interface behind everything in MPS that writes
// or reads media objects (segments, recordings, job inputs and outputs,
// snapshots, captions), with a local-disk backend (Local), an S3-compatible
// backend (S3), and a Spool that uploads files complete on local disk to a
// Store in order, buffering while the store is unreachable.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Store holds media objects under keys such as
// "recordings/live/cam1/2026-11-26/x.mp4": slash-separated, no leading
// slash, no "." or ".." segment (see ValidKey).
type Store interface {
	// Put stores the object read from r. size is its length, or -1 when
	// unknown. A reader of key never sees a partial object.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object; the error wraps ErrNotFound when it is missing.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// GetRange opens n bytes of the object from offset off (n < 0: to the
	// end). The error wraps ErrNotFound when it is missing.
	GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)
	// Stat describes the object; the error wraps ErrNotFound when it is missing.
	Stat(ctx context.Context, key string) (Info, error)
	// List returns the objects whose key starts with prefix (a plain string
	// prefix, as in S3), ordered by key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes the object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// URL returns a presigned GET URL valid for expiry (S3), or "" when the
	// backend has none (Local).
	URL(ctx context.Context, key string, expiry time.Duration) (string, error)
	// Name describes the store for logs: "local" or "s3://bucket/prefix".
	Name() string
}

// Info describes one stored object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

// ErrNotFound is wrapped by the errors of Get, GetRange and Stat when the
// object does not exist.
var ErrNotFound = errors.New("object not found")

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// ValidKey checks that key is a usable object key: not empty, at most
// MaxKeyLen bytes of UTF-8, no leading or trailing slash, no empty ("//"),
// "." or ".." segment, no NUL, no other control character and no backslash.
// Keys that pass map to a path below any directory without escaping it.
func ValidKey(key string) error {
	switch {
	case key == "":
		return errors.New("invalid key: empty")
	case len(key) > MaxKeyLen:
		return fmt.Errorf("invalid key: longer than %d bytes", MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("invalid key %q: not UTF-8", key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("invalid key %q: leading slash", key)
	case strings.HasSuffix(key, "/"):
		return fmt.Errorf("invalid key %q: trailing slash", key)
	case strings.Contains(key, "//"):
		return fmt.Errorf("invalid key %q: empty segment", key)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("invalid key %q: backslash", key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("invalid key %q: control character", key)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("invalid key %q: %q segment", key, seg)
		}
	}
	return nil
}

// validPrefix checks a List prefix: "" (everything), a valid key, or a
// valid key followed by "/".
func validPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	p := strings.TrimSuffix(prefix, "/")
	if err := ValidKey(p); err != nil {
		return fmt.Errorf("invalid prefix %q: %w", prefix, err)
	}
	return nil
}
