package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLocal(t *testing.T) {
	testStore(t, &Local{Dir: t.TempDir()})
}

func TestLocalLayoutAndName(t *testing.T) {
	dir := t.TempDir()
	l := &Local{Dir: dir}
	ctx := context.Background()
	if err := l.Put(ctx, "recordings/live/cam1/x.mp4", strings.NewReader("mp4"), 3); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "recordings", "live", "cam1", "x.mp4"))
	if err != nil || string(b) != "mp4" {
		t.Fatalf("file: %q %v", b, err)
	}
	if l.Name() != "local" {
		t.Fatalf("name %q", l.Name())
	}
	if u, err := l.URL(ctx, "recordings/live/cam1/x.mp4", 0); u != "" || err != nil {
		t.Fatalf("url %q %v", u, err)
	}
	// Delete removes the folders it empties, not Dir.
	if err := l.Delete(ctx, "recordings/live/cam1/x.mp4"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "recordings")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty folders left: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("dir removed: %v", err)
	}
	// The temporary names of Put are reserved.
	if err := l.Put(ctx, "a/"+tmpPrefix+"x", strings.NewReader(""), 0); err == nil {
		t.Fatal("reserved name accepted")
	}
	if err := (&Local{}).Put(ctx, "a", strings.NewReader(""), 0); err == nil {
		t.Fatal("put without a directory accepted")
	}
}

// failingReader returns some data, then an error.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("source broke")
	}
	n := min(len(p), f.n)
	for i := range n {
		p[i] = 'x'
	}
	f.n -= n
	return n, nil
}

// A Put that fails midway leaves the previous object and no temporary file.
func TestLocalPutAtomic(t *testing.T) {
	dir := t.TempDir()
	l := &Local{Dir: dir}
	ctx := context.Background()
	if err := l.Put(ctx, "seg/1.m4s", strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	if err := l.Put(ctx, "seg/1.m4s", &failingReader{n: 100000}, 200000); err == nil {
		t.Fatal("put from a broken reader succeeded")
	}
	b, err := os.ReadFile(filepath.Join(dir, "seg", "1.m4s"))
	if err != nil || string(b) != "old" {
		t.Fatalf("after failed put: %q %v", b, err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "seg"))
	if len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

// Readers racing with writers see a whole old or a whole new object, never
// a partial one.
func TestLocalConcurrentReaders(t *testing.T) {
	l := &Local{Dir: t.TempDir()}
	ctx := context.Background()
	bodies := [][]byte{bytes.Repeat([]byte("a"), 300000), bytes.Repeat([]byte("b"), 500000)}
	if err := l.Put(ctx, "k", bytes.NewReader(bodies[0]), int64(len(bodies[0]))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Go(func() {
		for i := range 40 {
			b := bodies[i%2]
			if err := l.Put(ctx, "k", bytes.NewReader(b), int64(len(b))); err != nil {
				errc <- err
				return
			}
		}
	})
	for range 2 {
		wg.Go(func() {
			for range 100 {
				rc, _, err := l.Get(ctx, "k")
				if err != nil {
					errc <- err
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(b, bodies[0]) && !bytes.Equal(b, bodies[1]) {
					errc <- fmt.Errorf("partial object: %d bytes", len(b))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// Concurrent Puts and Deletes in one folder: Delete's removal of emptied
// folders must not break a Put.
func TestLocalPutDeleteRace(t *testing.T) {
	l := &Local{Dir: t.TempDir()}
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("a/b/c/%d-%d", w, i)
				if err := l.Put(ctx, key, strings.NewReader("x"), 1); err != nil {
					errc <- err
					return
				}
				if err := l.Delete(ctx, key); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// Temporary files of Puts in progress are not listed.
func TestLocalListSkipsTemp(t *testing.T) {
	dir := t.TempDir()
	l := &Local{Dir: dir}
	ctx := context.Background()
	if err := l.Put(ctx, "p/a", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p", tmpPrefix+"123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := l.List(ctx, "p/")
	if err != nil || len(got) != 1 || got[0].Key != "p/a" {
		t.Fatalf("list: %v %v", got, err)
	}
}

func TestContentType(t *testing.T) {
	for key, want := range map[string]string{
		"recordings/a/index.m3u8":  "application/vnd.apple.mpegurl",
		"jobs/x/01-snapshot/a.JPG": "image/jpeg",
		"a/seg_00001.m4s":          "video/iso.segment",
		"noext":                    "application/octet-stream",
	} {
		if got := ContentType(key); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", key, got, want)
		}
	}
}
