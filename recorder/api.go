package recorder

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"
)

// defaultPage and maxPage bound List pages.
const (
	defaultPage = 100
	maxPage     = 1000
)

// List returns one page of the recordings that match f, oldest first.
func (r *Recorder) List(f Filter) (Page, error) {
	if f.Offset < 0 || f.Limit < 0 {
		return Page{}, fmt.Errorf("%w: negative offset or limit", ErrInvalidOptions)
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return Page{}, fmt.Errorf("%w: to is before from", ErrInvalidRange)
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultPage
	}
	limit = min(limit, maxPage)
	all := r.cat.all(func(rec *Recording) bool {
		return (f.Stream == "" || rec.Stream == f.Stream) &&
			(f.From.IsZero() || !rec.End.Before(f.From)) &&
			(f.To.IsZero() || !rec.Start.After(f.To))
	})
	p := Page{Total: len(all), Recordings: []Recording{}}
	if f.Offset < len(all) {
		end := min(len(all), f.Offset+limit)
		p.Recordings = all[f.Offset:end]
		if end < len(all) {
			p.NextOffset = end
		}
	}
	return p, nil
}

// Get returns one recording's metadata.
func (r *Recorder) Get(id string) (Recording, error) {
	_, rec, ok := r.cat.get(id)
	if !ok {
		return Recording{}, fmt.Errorf("recording %q: %w", id, ErrNoRecording)
	}
	return rec, nil
}

// Delete removes a recording's files. An archive being written cannot be
// deleted: stop the recording first.
func (r *Recorder) Delete(id string) error {
	e, rec, ok := r.cat.get(id)
	if !ok {
		return fmt.Errorf("recording %q: %w", id, ErrNoRecording)
	}
	if rec.State == StateRecording {
		return fmt.Errorf("recording %q: %w", id, ErrBusy)
	}
	r.delete(e, "api")
	return nil
}

// Download is a recording's file, ready for http.ServeContent.
type Download struct {
	File    io.ReadSeekCloser
	Name    string
	ModTime time.Time
	Size    int64
}

// OpenDownload opens a recording for download: its faststart MP4 when it
// was finalized, else the fragmented MP4 (an HLS recording's init segment
// and segments, which together are one fragmented MP4).
func (r *Recorder) OpenDownload(id string) (*Download, error) {
	e, rec, ok := r.cat.get(id)
	if !ok {
		return nil, fmt.Errorf("recording %q: %w", id, ErrNoRecording)
	}
	name := path.Base(rec.Path)
	if rec.Format == FormatHLS {
		name = path.Base(path.Dir(rec.Path)) + ".mp4"
	}
	if rec.Finalized != "" {
		f, err := os.Open(filepath.Join(r.cfg.Dir, filepath.FromSlash(rec.Finalized)))
		if err == nil {
			fi, err := f.Stat()
			if err == nil {
				return &Download{File: f, Name: path.Base(rec.Finalized), ModTime: fi.ModTime(), Size: fi.Size()}, nil
			}
			_ = f.Close()
		}
	}
	m, err := openMedia(e.abs, rec.Format)
	if err != nil {
		return nil, fmt.Errorf("open recording %q: %w", id, err)
	}
	return &Download{File: m, Name: name, ModTime: m.mod, Size: m.size}, nil
}

// ArchiveFile returns the file a job reads for a recording: its faststart
// MP4 when finalized, else the fragmented MP4, or an HLS recording's
// playlist.
func (r *Recorder) ArchiveFile(id string) (string, error) {
	e, rec, ok := r.cat.get(id)
	if !ok {
		return "", fmt.Errorf("recording %q: %w", id, ErrNoRecording)
	}
	if rec.Finalized != "" {
		p := filepath.Join(r.cfg.Dir, filepath.FromSlash(rec.Finalized))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if rec.Format == FormatHLS {
		return filepath.Join(e.abs, "index.m3u8"), nil
	}
	return e.abs, nil
}
