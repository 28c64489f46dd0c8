package transcoder

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// thumbJPEG is not a real JPEG: Thumbnails stores bytes as they are.
var thumbJPEG = []byte("\xff\xd8\xff\xe0 first thumbnail")

func TestThumbnailStoreLatestAndForget(t *testing.T) {
	var th Thumbnails // the zero value works, in memory only
	if _, _, ok := th.Latest("live/a"); ok {
		t.Fatal("thumbnail before any Put")
	}
	buf := append([]byte(nil), thumbJPEG...)
	before := time.Now()
	th.Put("live/a", buf)
	buf[0] = 0 // Put keeps a copy
	img, at, ok := th.Latest("live/a")
	if !ok || !bytes.Equal(img, thumbJPEG) || at.Before(before) || at.After(time.Now()) {
		t.Fatalf("Latest = %q, %v, %v", img, at, ok)
	}
	th.Put("live/a", nil) // an empty thumbnail is ignored
	if img, _, _ := th.Latest("live/a"); !bytes.Equal(img, thumbJPEG) {
		t.Errorf("empty Put replaced the thumbnail")
	}
	th.Put("live/a", []byte("second"))
	if img, _, _ := th.Latest("live/a"); string(img) != "second" {
		t.Errorf("Latest = %q after a second Put", img)
	}
	th.Forget("live/a")
	if _, _, ok := th.Latest("live/a"); ok {
		t.Error("thumbnail kept after Forget")
	}
	th.Forget("live/none") // no-op
}

func TestThumbnailServe(t *testing.T) {
	th := &Thumbnails{}
	get := func(method, name string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/live/"+name+"/thumbnail.jpg", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		rec := httptest.NewRecorder()
		th.Serve(rec, req, name)
		return rec
	}
	if rec := get(http.MethodGet, "live/unknown"); rec.Code != http.StatusNotFound {
		t.Errorf("unknown stream: %d", rec.Code)
	}
	th.Put("live/cam", thumbJPEG)
	rec := get(http.MethodGet, "live/cam")
	h := rec.Header()
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), thumbJPEG) || h.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("GET: %d %q %v", rec.Code, rec.Body.Bytes(), h)
	}
	if h.Get("Cache-Control") != "no-cache" || h.Get("Last-Modified") == "" || h.Get("ETag") == "" {
		t.Errorf("headers: %v", h)
	}
	if lm, err := http.ParseTime(h.Get("Last-Modified")); err != nil || time.Since(lm) > time.Minute {
		t.Errorf("Last-Modified %q: %v", h.Get("Last-Modified"), err)
	}
	etag := h.Get("ETag")
	if rec := get(http.MethodGet, "live/cam", "If-None-Match", etag); rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: %d", rec.Code)
	}
	if rec := get(http.MethodHead, "live/cam"); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}
	time.Sleep(time.Millisecond)
	th.Put("live/cam", []byte("\xff\xd8 newer"))
	rec = get(http.MethodGet, "live/cam", "If-None-Match", etag)
	if rec.Code != http.StatusOK || rec.Body.String() != "\xff\xd8 newer" || rec.Header().Get("ETag") == etag {
		t.Errorf("after a new thumbnail: %d %q", rec.Code, rec.Body.String())
	}
	th.Forget("live/cam")
	if rec := get(http.MethodGet, "live/cam"); rec.Code != http.StatusNotFound {
		t.Errorf("after Forget: %d", rec.Code)
	}
}

// thumbFiles lists the .jpg files under dir, relative to it.
func thumbFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestThumbnailStorage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "thumbs")
	th := &Thumbnails{StorePath: dir, StoreInterval: time.Hour}
	th.Put("live/cam1", thumbJPEG)
	th.Put("live/cam1", []byte("within the interval: not stored"))
	files := thumbFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("files %q, want one", files)
	}
	_, at, _ := th.Latest("live/cam1")
	name := files[0]
	if !strings.HasPrefix(name, "live/cam1/") || !strings.HasSuffix(name, ".jpg") {
		t.Fatalf("stored as %q", name)
	}
	stamp, err := time.Parse("20060102T150405Z", strings.TrimSuffix(strings.TrimPrefix(name, "live/cam1/"), ".jpg"))
	if err != nil || at.Sub(stamp) < 0 || at.Sub(stamp) > 2*time.Second {
		t.Errorf("file %q for a thumbnail made at %v: %v", name, at.UTC(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name))); err != nil || !bytes.Equal(b, thumbJPEG) {
		t.Errorf("stored %q, %v", b, err)
	}
	for _, d := range []string{filepath.Join(dir, "live"), filepath.Join(dir, "live", "cam1")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("folder %s: %v %v", d, fi.Mode(), err)
		}
	}

	// Once the interval has passed, the next thumbnail is stored too.
	th.StoreInterval = time.Nanosecond
	th.Put("live/cam1/720p", []byte("rendition"))
	th.Put("live/cam1", []byte("later"))
	files = thumbFiles(t, dir)
	var later, rendition bool
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		later = later || strings.HasPrefix(f, "live/cam1/2") && string(b) == "later"
		rendition = rendition || strings.HasPrefix(f, "live/cam1/720p/") && string(b) == "rendition"
	}
	if !later || !rendition {
		t.Errorf("files after the interval: %q", files)
	}
	for _, f := range files {
		if strings.Contains(f, ".tmp") {
			t.Errorf("temporary file left: %s", f)
		}
	}
}

func TestThumbnailStorageRefusesEscapes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	var logs bytes.Buffer
	th := &Thumbnails{StorePath: dir, StoreInterval: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	bad := []string{"../evil", "live/../../evil", "/abs/evil", "live//x", "live/./x", "..", ".", "", "live/x/", `..\evil`}
	for _, name := range bad {
		if _, err := th.storedPath(name, time.Now()); !errors.Is(err, ErrUnsafeThumbnailPath) {
			t.Errorf("storedPath(%q) = %v, want ErrUnsafeThumbnailPath", name, err)
		}
		th.Put(name, thumbJPEG)
		if _, _, ok := th.Latest(name); !ok {
			t.Errorf("%q: not kept in memory", name)
		}
	}
	if files := thumbFiles(t, root); len(files) != 0 {
		t.Errorf("files written for unsafe names: %q", files)
	}
	if n := strings.Count(logs.String(), "thumbnail not stored"); n != len(bad) {
		t.Errorf("%d warnings for %d refused names:\n%s", n, len(bad), logs.String())
	}
}

func TestThumbnailStorageWriteErrorIsLogged(t *testing.T) {
	// StorePath is a file: every write fails, as on a full or broken disk.
	file := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	th := &Thumbnails{StorePath: file, StoreInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	th.Put("live/cam1", thumbJPEG)
	th.Put("live/cam1", []byte("second"))
	if img, _, ok := th.Latest("live/cam1"); !ok || string(img) != "second" {
		t.Errorf("Latest = %q, %v", img, ok)
	}
	// Retried once per interval, not on every thumbnail.
	if n := strings.Count(logs.String(), "thumbnail not stored"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "stream=live/cam1") {
		t.Errorf("warning without the stream name: %s", logs.String())
	}
}
