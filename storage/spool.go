package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrSpoolFull is returned by Spool.Add when the queued bytes would pass
// the spool's bound.
var ErrSpoolFull = errors.New("upload spool full")

// ErrSpoolClosed is returned by Spool.Add and Spool.Wait after Close.
var ErrSpoolClosed = errors.New("upload spool closed")

// Backoff of the Spool while its store fails: from backoffMin doubling up
// to backoffMax.
const (
	backoffMin = 200 * time.Millisecond
	backoffMax = 10 * time.Second
)

// SpoolStats reports a Spool's state.
type SpoolStats struct {
	Queued      int   // entries waiting (including the one uploading)
	QueuedBytes int64 // their size when added
	Uploaded    int64 // entries uploaded since NewSpool
	Dropped     int64 // entries given up since NewSpool (local file gone or unreadable)
	Failing     bool  // the last upload attempt failed and the spool is retrying
	LastError   string
}

// spoolEntry is one queued upload, stored as the marker file
// <seq>.json in the spool directory.
type spoolEntry struct {
	Seq         uint64    `json:"seq"`
	Path        string    `json:"path"`
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	RemoveAfter bool      `json:"remove_after"`
	Added       time.Time `json:"added"`
}

const (
	markerExt    = ".json"
	markerTmpExt = ".tmp"
)

// Spool uploads files that are complete on local disk to a Store, one at a
// time in the order they were added, retrying with exponential backoff
// (200 ms doubling to 10 s) while the store fails. Each queued upload is a
// marker file in the spool directory, written atomically, so the queue
// survives restarts: NewSpool on the same directory resumes it. The local
// files themselves stay where they are until uploaded (and are then removed
// when added with removeAfter); the queued bytes are bounded by maxBytes.
type Spool struct {
	dir      string
	dst      Store
	maxBytes int64
	log      *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	queue   []*spoolEntry
	bytes   int64
	nextSeq uint64
	stats   SpoolStats
	closed  bool
	changed chan struct{} // closed and replaced whenever the state changes
}

// NewSpool opens (or creates) the spool in dir, loads what is queued there
// and starts uploading to dst. maxBytes bounds the queued bytes (<= 0: no
// bound). log may be nil.
func NewSpool(dir string, dst Store, maxBytes int64, log *slog.Logger) (*Spool, error) {
	if dst == nil {
		return nil, errors.New("spool: no store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s := &Spool{
		dir:      dir,
		dst:      dst,
		maxBytes: maxBytes,
		log:      log.With("spool", dir, "store", dst.Name()),
		done:     make(chan struct{}),
		changed:  make(chan struct{}),
		nextSeq:  1,
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if len(s.queue) > 0 {
		s.log.Info("spool resumed", "queued", len(s.queue), "bytes", s.bytes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx)
	return s, nil
}

// load reads the marker files, in sequence order, and removes leftovers of
// interrupted marker writes.
func (s *Spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	for _, de := range ents {
		name := de.Name()
		if strings.HasSuffix(name, markerTmpExt) {
			os.Remove(filepath.Join(s.dir, name))
			continue
		}
		if !strings.HasSuffix(name, markerExt) || !de.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, markerExt), 10, 64)
		if err != nil {
			continue // not ours
		}
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			return fmt.Errorf("spool %s: %w", s.dir, err)
		}
		var e spoolEntry
		if err := json.Unmarshal(b, &e); err != nil || e.Seq != seq || ValidKey(e.Key) != nil || e.Path == "" {
			s.log.Error("spool: unreadable queue entry, set aside", "file", name, "err", err)
			os.Rename(filepath.Join(s.dir, name), filepath.Join(s.dir, name+".bad"))
			continue
		}
		s.queue = append(s.queue, &e)
		s.bytes += e.Size
		if seq >= s.nextSeq {
			s.nextSeq = seq + 1
		}
	}
	sort.Slice(s.queue, func(i, j int) bool { return s.queue[i].Seq < s.queue[j].Seq })
	return nil
}

func (s *Spool) markerPath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, markerExt))
}

// writeMarker writes the entry's marker atomically: a temporary file,
// fsync, rename, fsync of the directory.
func (s *Spool) writeMarker(e *spoolEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	final := s.markerPath(e.Seq)
	tmp := final + markerTmpExt
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// notify wakes whoever waits on a change. Call with s.mu held.
func (s *Spool) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Add queues the upload of the complete local file localPath as key. The
// file must not change until it is uploaded; with removeAfter, it is
// removed once uploaded. Add returns ErrSpoolFull (wrapped) when the queued
// bytes would pass the spool's bound; the file is then not queued.
func (s *Spool) Add(ctx context.Context, localPath, key string, removeAfter bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool add %s: %w", key, err)
	}
	if err := ValidKey(key); err != nil {
		return fmt.Errorf("spool add: %w", err)
	}
	abs, err := filepath.Abs(localPath)
	if err != nil {
		return fmt.Errorf("spool add %s: %w", key, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("spool add %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("spool add %s: %s is not a regular file", key, localPath)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("spool add %s: %w", key, ErrSpoolClosed)
	}
	if s.maxBytes > 0 && s.bytes+fi.Size() > s.maxBytes {
		return fmt.Errorf("spool add %s (%d bytes, %d of %d queued): %w", key, fi.Size(), s.bytes, s.maxBytes, ErrSpoolFull)
	}
	e := &spoolEntry{
		Seq:         s.nextSeq,
		Path:        abs,
		Key:         key,
		Size:        fi.Size(),
		RemoveAfter: removeAfter,
		Added:       time.Now().UTC(),
	}
	if err := s.writeMarker(e); err != nil {
		return fmt.Errorf("spool add %s: %w", key, err)
	}
	s.nextSeq++
	s.queue = append(s.queue, e)
	s.bytes += e.Size
	s.notify()
	return nil
}

// Stats returns the spool's current state.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Queued = len(s.queue)
	st.QueuedBytes = s.bytes
	return st
}

// Close stops the uploads (one in progress is abandoned) and returns once
// the worker has stopped. What is queued stays queued on disk for the next
// NewSpool on the same directory.
func (s *Spool) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.notify()
	}
	s.mu.Unlock()
	s.cancel()
	<-s.done
}

// Wait returns nil once the queue is empty, or an error when ctx ends or
// the spool is closed first.
func (s *Spool) Wait(ctx context.Context) error {
	for {
		s.mu.Lock()
		n, closed, ch := len(s.queue), s.closed, s.changed
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		if closed {
			return fmt.Errorf("spool wait: %d queued: %w", n, ErrSpoolClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("spool wait: %d queued: %w", n, ctx.Err())
		}
	}
}

// run uploads the head of the queue until ctx ends.
func (s *Spool) run(ctx context.Context) {
	defer close(s.done)
	backoff := backoffMin
	var failingSince time.Time
	var failures int
	for {
		s.mu.Lock()
		var e *spoolEntry
		if len(s.queue) > 0 {
			e = s.queue[0]
		}
		ch := s.changed
		s.mu.Unlock()
		if e == nil {
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := s.upload(ctx, e)
		if ctx.Err() != nil {
			return // closing: the entry stays queued
		}
		var perm *permanentError
		switch {
		case err == nil:
			if !failingSince.IsZero() {
				s.log.Info("spool uploads recovered", "after", time.Since(failingSince).Round(time.Millisecond), "failed_attempts", failures)
				failingSince, failures = time.Time{}, 0
			}
			backoff = backoffMin
			s.finish(e, nil)
			continue
		case errors.As(err, &perm):
			// The local file is gone or unreadable: retrying cannot help.
			s.log.Error("spool upload dropped", "key", e.Key, "path", e.Path, "err", err)
			s.finish(e, err)
			continue
		}
		failures++
		if failingSince.IsZero() {
			failingSince = time.Now()
			s.log.Warn("spool uploads failing, retrying with backoff", "key", e.Key, "queued", s.Stats().Queued, "err", err)
		}
		s.mu.Lock()
		s.stats.Failing = true
		s.stats.LastError = err.Error()
		s.notify()
		s.mu.Unlock()
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, backoffMax)
	}
}

// permanentError marks an upload that cannot succeed by retrying.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// upload puts the entry's file to the store, with a time bound that grows
// with its size so that a hung connection cannot stall the queue forever.
func (s *Spool) upload(ctx context.Context, e *spoolEntry) error {
	f, err := os.Open(e.Path)
	if err != nil {
		return &permanentError{fmt.Errorf("open local file: %w", err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &permanentError{fmt.Errorf("stat local file: %w", err)}
	}
	timeout := time.Minute + time.Duration(fi.Size()/(256<<10))*time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.dst.Put(ctx, e.Key, f, fi.Size()); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			// Not the store's fault: a local read failed.
			var pe *fs.PathError
			if errors.As(err, &pe) && pe.Path == e.Path {
				return &permanentError{err}
			}
		}
		return err
	}
	return nil
}

// finish removes an uploaded (err == nil) or dropped entry: its marker
// first, then, for an uploaded entry added with removeAfter, the local
// file. A crash in between leaves the local file behind, never an entry
// whose file is gone.
func (s *Spool) finish(e *spoolEntry, err error) {
	if rerr := os.Remove(s.markerPath(e.Seq)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		s.log.Error("spool: remove queue entry", "key", e.Key, "err", rerr)
	}
	if err == nil && e.RemoveAfter {
		if rerr := os.Remove(e.Path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			s.log.Warn("spool: remove uploaded local file", "key", e.Key, "path", e.Path, "err", rerr)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 && s.queue[0] == e {
		s.queue = s.queue[1:]
	}
	s.bytes -= e.Size
	if err == nil {
		s.stats.Uploaded++
		s.stats.Failing = false
		s.stats.LastError = ""
	} else {
		s.stats.Dropped++
		s.stats.LastError = err.Error()
	}
	s.notify()
}
