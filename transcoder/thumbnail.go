package transcoder

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mps-dev/mps/stream"
)

// ThumbnailSink receives the JPEG thumbnails a ladder's FFmpeg child makes
// from the decode it already does, and those KeyframeThumbnailer makes for
// streams without a ladder. Thumbnails implements it.
type ThumbnailSink interface {
	// Put stores jpeg as the latest thumbnail of the stream name.
	Put(name string, jpeg []byte)
}

// ErrUnsafeThumbnailPath is returned (and logged) when a stream name would
// place a stored thumbnail outside Thumbnails.StorePath.
var ErrUnsafeThumbnailPath = errors.New("thumbnail path escapes the store folder")

// thumbnailTimeFormat names stored thumbnail files, in UTC.
const thumbnailTimeFormat = "20060102T150405Z"

// Thumbnails keeps the latest JPEG thumbnail of each stream in memory,
// serves it over HTTP, and can also store one to disk every StoreInterval.
// It implements ThumbnailSink; the zero value keeps thumbnails in memory
// only. It is safe for concurrent use; set the fields before the first Put.
type Thumbnails struct {
	// StorePath is the folder stored thumbnails go to, as
	// StorePath/{stream name}/{UTC time, 20060102T150405Z}.jpg.
	StorePath string
	// StoreInterval is how often a stream's latest thumbnail is written to
	// StorePath. Zero (or an empty StorePath) stores nothing.
	StoreInterval time.Duration
	Logger        *slog.Logger

	mu     sync.Mutex
	thumbs map[string]*thumbnail
}

type thumbnail struct {
	jpeg    []byte
	at      time.Time
	stored  time.Time // when the last stored file was written, zero if none
	storing bool      // a write is running
}

// Put stores a copy of jpeg as the latest thumbnail of name, and writes it
// to StorePath when StoreInterval has passed since the last file of that
// stream. A failed write (a full disk, say) is logged and changes nothing
// else.
func (t *Thumbnails) Put(name string, jpeg []byte) {
	if len(jpeg) == 0 {
		return
	}
	img := append([]byte(nil), jpeg...)
	now := time.Now()
	t.mu.Lock()
	if t.thumbs == nil {
		t.thumbs = make(map[string]*thumbnail)
	}
	th := t.thumbs[name]
	if th == nil {
		th = &thumbnail{}
		t.thumbs[name] = th
	}
	th.jpeg, th.at = img, now
	store := t.StorePath != "" && t.StoreInterval > 0 && !th.storing &&
		(th.stored.IsZero() || now.Sub(th.stored) >= t.StoreInterval)
	if store {
		// Counted from the attempt, so a failing disk is retried once per
		// interval, not on every thumbnail.
		th.stored, th.storing = now, true
	}
	t.mu.Unlock()
	if !store {
		return
	}
	err := t.store(name, img, now)
	t.mu.Lock()
	th.storing = false
	t.mu.Unlock()
	if err != nil {
		t.logger().Warn("thumbnail not stored", "stream", name, "error", err)
	}
}

// store writes img to StorePath/name/{at}.jpg through a temporary file, so
// a reader never sees half a JPEG.
func (t *Thumbnails) store(name string, img []byte, at time.Time) error {
	path, err := t.storedPath(name, at)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("store thumbnail: %w", err)
	}
	f, err := os.CreateTemp(dir, ".thumb-*.tmp")
	if err != nil {
		return fmt.Errorf("store thumbnail: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store thumbnail %s: %w", path, err)
	}
	return nil
}

// storedPath returns where the thumbnail of name taken at at is stored. It
// refuses a name that is not a valid stream name, or not a plain relative
// path inside StorePath.
func (t *Thumbnails) storedPath(name string, at time.Time) (string, error) {
	rel := filepath.FromSlash(name)
	if stream.ValidateName(name) != nil || !filepath.IsLocal(rel) || filepath.Clean(rel) != rel {
		return "", fmt.Errorf("stream %q: %w", name, ErrUnsafeThumbnailPath)
	}
	root := filepath.Clean(t.StorePath)
	path := filepath.Join(root, rel, at.UTC().Format(thumbnailTimeFormat)+".jpg")
	if r, err := filepath.Rel(root, path); err != nil || !filepath.IsLocal(r) {
		return "", fmt.Errorf("stream %q: %w", name, ErrUnsafeThumbnailPath)
	}
	return path, nil
}

// Latest returns the latest thumbnail of name and when it was made. The
// bytes must not be modified.
func (t *Thumbnails) Latest(name string) (jpeg []byte, at time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	th := t.thumbs[name]
	if th == nil {
		return nil, time.Time{}, false
	}
	return th.jpeg, th.at, true
}

// Forget drops the thumbnail of name, when its stream ends. Files already
// stored stay.
func (t *Thumbnails) Forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.thumbs, name)
}

// Serve answers a request for the latest thumbnail of name: image/jpeg with
// Last-Modified and an ETag, to be revalidated on every use (no-cache), so
// a player polling it gets 304 until the next thumbnail. It answers 404
// when the stream has none. It handles GET and HEAD (the caller routes).
func (t *Thumbnails) Serve(w http.ResponseWriter, r *http.Request, name string) {
	img, at, ok := t.Latest(name)
	w.Header().Set("Cache-Control", "no-cache")
	if !ok {
		http.Error(w, "no thumbnail for this stream", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("ETag", `"`+strconv.FormatInt(at.UnixNano(), 36)+`"`)
	http.ServeContent(w, r, "", at, bytes.NewReader(img))
}

func (t *Thumbnails) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}
