package storage

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidKey(t *testing.T) {
	good := []string{
		"a", "recordings/live/cam1/2026-11-26/x.mp4", "a/b.c/d", ".hidden", "a/..b", "a/b..", "...",
		"é/ü.mp4", "with space/x", strings.Repeat("k", MaxKeyLen),
	}
	bad := []string{
		"", "/a", "a/", "a//b", "..", "../a", "a/..", "a/../b", ".", "./a", "a/./b",
		"a\\b", "..\\a", "a\x00b", "a\nb", "a\x7fb", "\xff", strings.Repeat("k", MaxKeyLen+1),
	}
	for _, k := range good {
		if err := ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range bad {
		if err := ValidKey(k); err == nil {
			t.Errorf("ValidKey(%q) = nil, want an error", k)
		}
	}
}

var keySeeds = []string{
	"", "a", "a/b", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", "..", ".", "...",
	"a\\..\\b", "a\x00", "C:/x", "C:\\x", "~/x", "$HOME/x", "a/.mps-put-1", "é/ü", "\xff\xfe",
	"recordings/live/cam1/2026-11-26/x.mp4", strings.Repeat("a/", 600),
}

// FuzzValidKey: a key that passes ValidKey maps to a path strictly below
// the store's directory, and back to the same key.
func FuzzValidKey(f *testing.F) {
	for _, s := range keySeeds {
		f.Add(s)
	}
	dir := filepath.Join(os.TempDir(), "mps-fuzz-root")
	l := &Local{Dir: dir}
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidKey(key)
		p, perr := l.path(key)
		if err != nil {
			if perr == nil {
				t.Fatalf("path accepted invalid key %q", key)
			}
			return
		}
		if strings.Contains(key, "..") && (key == ".." || strings.HasPrefix(key, "../") || strings.HasSuffix(key, "/..") || strings.Contains(key, "/../")) {
			t.Fatalf("ValidKey accepted %q", key)
		}
		if perr != nil {
			if !strings.Contains(key, tmpPrefix) {
				t.Fatalf("path refused valid key %q: %v", key, perr)
			}
			return
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			t.Fatalf("key %q maps outside %s: %s", key, dir, p)
		}
		if filepath.ToSlash(rel) != key {
			t.Fatalf("key %q maps to %q, which is key %q", key, p, filepath.ToSlash(rel))
		}
		if filepath.Clean(p) != p {
			t.Fatalf("key %q maps to unclean %q", key, p)
		}
	})
}

// FuzzLocalKeyPath writes each valid key through Local and checks that the
// only file created is the key's, below Dir, and that List finds it.
func FuzzLocalKeyPath(f *testing.F) {
	for _, s := range keySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidKey(key) != nil {
			return
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "store")
		l := &Local{Dir: dir}
		ctx := context.Background()
		if err := l.Put(ctx, key, strings.NewReader("v"), 1); err != nil {
			return // refused (reserved name) or too long for the file system
		}
		var files []string
		filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
		want := filepath.Join(dir, filepath.FromSlash(key))
		if len(files) != 1 || files[0] != want {
			t.Fatalf("key %q: files %v, want [%s]", key, files, want)
		}
		got, err := l.List(ctx, "")
		if err != nil || len(got) != 1 || got[0].Key != key {
			t.Fatalf("key %q: list %v %v", key, got, err)
		}
		if err := l.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("key %q: delete left %v", key, ents)
		}
	})
}

// FuzzParseEndpoint: no panic; an accepted endpoint is a bare host[:port].
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"127.0.0.1:9000", "http://127.0.0.1:9000", "https://s3.example.com", "https://s3.example.com/", "ftp://x", "http://x/path", "", "http://[::1]:9000", "::", "http://%zz", "//", "/", "http://", "a b:1", "http://u:p@h:1", "h:1?x"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, ep string, tls bool) {
		host, _, err := parseEndpoint(ep, tls)
		if err != nil {
			return
		}
		if host == "" || strings.ContainsAny(host, "/?#@ ") {
			t.Fatalf("endpoint %q gave host %q", ep, host)
		}
	})
}
