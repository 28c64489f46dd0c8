package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// testStore runs the behaviour every Store must have.
func testStore(t *testing.T, st Store) {
	ctx := context.Background()
	put := func(key, body string) {
		t.Helper()
		if err := st.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	read := func(rc io.ReadCloser) string {
		t.Helper()
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(b)
	}

	t.Run("PutGet", func(t *testing.T) {
		put("rec/cam1/a.mp4", "hello world")
		rc, info, err := st.Get(ctx, "rec/cam1/a.mp4")
		if err != nil {
			t.Fatal(err)
		}
		if got := read(rc); got != "hello world" {
			t.Fatalf("got %q", got)
		}
		if info.Key != "rec/cam1/a.mp4" || info.Size != 11 || info.Modified.IsZero() {
			t.Fatalf("info %+v", info)
		}
		if d := time.Since(info.Modified); d > time.Hour || d < -time.Hour {
			t.Fatalf("modified %v is not about now", info.Modified)
		}
		// Overwrite.
		put("rec/cam1/a.mp4", "second")
		rc, _, err = st.Get(ctx, "rec/cam1/a.mp4")
		if err != nil {
			t.Fatal(err)
		}
		if got := read(rc); got != "second" {
			t.Fatalf("after overwrite got %q", got)
		}
	})

	t.Run("UnknownSize", func(t *testing.T) {
		body := strings.Repeat("x", 100000)
		if err := st.Put(ctx, "rec/unknown.bin", strings.NewReader(body), -1); err != nil {
			t.Fatal(err)
		}
		info, err := st.Stat(ctx, "rec/unknown.bin")
		if err != nil || info.Size != int64(len(body)) {
			t.Fatalf("stat %+v %v", info, err)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		put("rec/empty", "")
		rc, info, err := st.Get(ctx, "rec/empty")
		if err != nil || info.Size != 0 {
			t.Fatalf("get empty: %+v %v", info, err)
		}
		if got := read(rc); got != "" {
			t.Fatalf("got %q", got)
		}
	})

	t.Run("Range", func(t *testing.T) {
		put("rng/x", "0123456789")
		for _, c := range []struct {
			off, n int64
			want   string
		}{
			{0, 3, "012"}, {4, 2, "45"}, {7, -1, "789"}, {0, -1, "0123456789"},
			{8, 10, "89"}, {3, 0, ""}, {9, 1, "9"},
		} {
			rc, err := st.GetRange(ctx, "rng/x", c.off, c.n)
			if err != nil {
				t.Fatalf("range %d+%d: %v", c.off, c.n, err)
			}
			if got := read(rc); got != c.want {
				t.Fatalf("range %d+%d: got %q, want %q", c.off, c.n, got, c.want)
			}
		}
		if _, err := st.GetRange(ctx, "rng/missing", 0, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("range of missing: %v", err)
		}
		if _, err := st.GetRange(ctx, "rng/x", -1, 1); err == nil {
			t.Fatal("negative offset accepted")
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		if _, _, err := st.Get(ctx, "nope/x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get: %v", err)
		}
		if _, err := st.Stat(ctx, "nope/x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("stat: %v", err)
		}
		if err := st.Delete(ctx, "nope/x"); err != nil {
			t.Fatalf("delete of missing: %v", err)
		}
		// A "directory" is not an object.
		put("dir/sub/f", "f")
		if _, err := st.Stat(ctx, "dir/sub"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("stat of a prefix: %v", err)
		}
		// Below a file.
		if _, err := st.Stat(ctx, "dir/sub/f/g"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("stat below a file: %v", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		keys := []string{"ls/b/2.ts", "ls/a/1.ts", "ls/a/10.ts", "ls/a/2.ts", "ls/ab", "ls/c", "lsx/other"}
		for _, k := range keys {
			put(k, k)
		}
		check := func(prefix string, want ...string) {
			t.Helper()
			got, err := st.List(ctx, prefix)
			if err != nil {
				t.Fatalf("list %q: %v", prefix, err)
			}
			var names []string
			for _, i := range got {
				names = append(names, i.Key)
				if i.Size != int64(len(i.Key)) {
					t.Fatalf("list %q: %s has size %d", prefix, i.Key, i.Size)
				}
			}
			if strings.Join(names, ",") != strings.Join(want, ",") {
				t.Fatalf("list %q:\n got %v\nwant %v", prefix, names, want)
			}
		}
		check("ls/", "ls/a/1.ts", "ls/a/10.ts", "ls/a/2.ts", "ls/ab", "ls/b/2.ts", "ls/c")
		check("ls/a", "ls/a/1.ts", "ls/a/10.ts", "ls/a/2.ts", "ls/ab")
		check("ls/a/", "ls/a/1.ts", "ls/a/10.ts", "ls/a/2.ts")
		check("ls/a/1", "ls/a/1.ts", "ls/a/10.ts")
		check("ls", "ls/a/1.ts", "ls/a/10.ts", "ls/a/2.ts", "ls/ab", "ls/b/2.ts", "ls/c", "lsx/other")
		check("none/")
		check("ls/c/")
		all, err := st.List(ctx, "")
		if err != nil || len(all) < len(keys) {
			t.Fatalf("list all: %d, %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if all[i-1].Key >= all[i].Key {
				t.Fatalf("list not ordered: %q before %q", all[i-1].Key, all[i].Key)
			}
		}
		if _, err := st.List(ctx, "../"); err == nil {
			t.Fatal("list of ../ accepted")
		}
	})

	t.Run("Delete", func(t *testing.T) {
		put("del/a/x", "x")
		put("del/a/y", "y")
		if err := st.Delete(ctx, "del/a/x"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Stat(ctx, "del/a/x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("stat after delete: %v", err)
		}
		if _, err := st.Stat(ctx, "del/a/y"); err != nil {
			t.Fatalf("sibling gone: %v", err)
		}
		if err := st.Delete(ctx, "del/a/y"); err != nil {
			t.Fatal(err)
		}
		got, err := st.List(ctx, "del/")
		if err != nil || len(got) != 0 {
			t.Fatalf("list after delete: %v %v", got, err)
		}
		put("del/a/z", "z") // the emptied folder can be used again
	})

	t.Run("BadKeys", func(t *testing.T) {
		for _, k := range []string{"", "/abs", "a/../b", "..", "a//b", "a\\b", "a\x00b", "a/"} {
			if err := st.Put(ctx, k, bytes.NewReader(nil), 0); err == nil {
				t.Errorf("put %q accepted", k)
			}
			if _, _, err := st.Get(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
				t.Errorf("get %q: %v", k, err)
			}
			if err := st.Delete(ctx, k); err == nil {
				t.Errorf("delete %q accepted", k)
			}
			if _, err := st.URL(ctx, k, time.Minute); err == nil {
				t.Errorf("url %q accepted", k)
			}
		}
	})

	t.Run("SizeMismatch", func(t *testing.T) {
		if err := st.Put(ctx, "mm/short", strings.NewReader("abc"), 10); err == nil {
			t.Fatal("short body accepted")
		}
		if _, err := st.Stat(ctx, "mm/short"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a failed put left an object: %v", err)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := st.Put(cctx, "cancel/x", strings.NewReader("x"), 1); err == nil {
			t.Fatal("put with a canceled context succeeded")
		}
	})
}
