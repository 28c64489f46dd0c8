package vod

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestURLInputs(t *testing.T) {
	dir := t.TempDir()
	media := makeInput(t, dir, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing.mp4" {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, media)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	host := u.Hostname()
	ctx := context.Background()
	work := t.TempDir()

	refusing := &Inputs{AllowedHosts: []string{"*"}}
	if _, err := refusing.Resolve(ctx, JobInput{URL: srv.URL + "/in.mp4"}, work); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "private or loopback") {
		t.Fatalf("loopback without allow_private: %v", err)
	}
	if _, err := (&Inputs{AllowedHosts: []string{"media.example.com"}}).Resolve(ctx, JobInput{URL: srv.URL + "/in.mp4"}, work); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "not in the allowed hosts") {
		t.Fatalf("host not allowed: %v", err)
	}
	if _, err := refusing.Resolve(ctx, JobInput{URL: "file:///etc/passwd"}, work); !errors.Is(err, ErrBadInput) {
		t.Fatalf("file URL: %v", err)
	}

	allowing := &Inputs{AllowedHosts: []string{host}, AllowPrivate: true}
	p, err := allowing.Resolve(ctx, JobInput{URL: srv.URL + "/in.mp4"}, work)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := Probe(ctx, Env{}, p); err != nil || m.Video == nil {
		t.Fatalf("downloaded input: %+v %v", m, err)
	}
	if _, err := allowing.Resolve(ctx, JobInput{URL: srv.URL + "/missing.mp4"}, work); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing file: %v", err)
	}
	small := &Inputs{AllowedHosts: []string{host}, AllowPrivate: true, MaxDownload: 100}
	if _, err := small.Resolve(ctx, JobInput{URL: srv.URL + "/in.mp4"}, work); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("too large: %v", err)
	}
}

func TestLocalPathStaysInsideTheRoots(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.mp4"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.mp4"), filepath.Join(root, "link.mp4")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "ok.mp4"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := &Inputs{MediaRoots: []string{root}}
	for _, bad := range []string{"link.mp4", "../" + filepath.Base(outside) + "/secret.mp4", filepath.Join(outside, "secret.mp4"), ".", "missing.mp4"} {
		if _, err := in.localPath(bad); !errors.Is(err, ErrBadInput) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if p, err := in.localPath("ok.mp4"); err != nil || filepath.Base(p) != "ok.mp4" {
		t.Fatalf("ok.mp4: %q %v", p, err)
	}
}
