// Package s3test runs a real S3 server for tests: versitygw v1.8.0 with its
// posix backend in a temporary directory, on a free loopback port, with
// fixed credentials. Install it with
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Tests that need it skip when the binary is missing, except when CI=true,
// where they fail.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Fixed credentials of the servers started here.
const (
	AccessKey = "mpstestaccess"
	SecretKey = "mpstestsecret0123456789"
	Region    = "us-east-1"
)

// startTimeout bounds the wait for a started server to answer.
const startTimeout = 30 * time.Second

// Server is a running (or stopped) versitygw.
type Server struct {
	// Endpoint is "127.0.0.1:PORT" (the form minio-go and S3Config take).
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	// Dir is the posix backend's root: one sub-directory per bucket.
	Dir string

	t   testing.TB
	bin string
	log string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	runs int
}

// Binary finds versitygw in PATH or in $(go env GOPATH)/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.SplitList(gp)...)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("versitygw not found in PATH or $(go env GOPATH)/bin; install it with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
}

// Start starts versitygw for the test and stops it when the test ends. It
// skips the test when the binary is missing, unless CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("s3test: %v", err)
		}
		t.Skipf("s3test: %v", err)
	}
	s := &Server{
		AccessKey: AccessKey,
		SecretKey: SecretKey,
		Region:    Region,
		Dir:       t.TempDir(),
		t:         t,
		bin:       bin,
		log:       filepath.Join(t.TempDir(), "versitygw.log"),
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(s.log); err == nil && len(b) > 0 {
				t.Logf("s3test: versitygw output:\n%s", tail(b, 4000))
			}
		}
	})
	// A free port can be taken between finding it and versitygw binding it:
	// try a few.
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("s3test: %v", err)
		}
		s.Endpoint = fmt.Sprintf("127.0.0.1:%d", port)
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("s3test: %v", lastErr)
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URL returns "http://" + Endpoint.
func (s *Server) URL() string { return "http://" + s.Endpoint }

// Start starts the server again (after Stop) on the same port and
// directory, and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("s3test: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("versitygw already running")
	}
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("versitygw log: %w", err)
	}
	s.runs++
	fmt.Fprintf(logf, "--- start %d on %s\n", s.runs, s.Endpoint)
	cmd := exec.Command(s.bin,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--port", s.Endpoint,
		"--quiet",
		"posix", s.Dir)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	if err := waitReady(s.URL(), done); err != nil {
		cmd.Process.Kill()
		<-done
		b, _ := os.ReadFile(s.log)
		return fmt.Errorf("versitygw on %s: %w\n%s", s.Endpoint, err, tail(b, 2000))
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady polls the endpoint until it answers HTTP (any status: an
// anonymous request gets 403), the process exits, or startTimeout passes.
func waitReady(u string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := client.Get(u + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %s: %w", startTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("exited before answering")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the server (SIGKILL, an outage as abrupt as a crash) and waits
// for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Client returns a minio-go client for the server (path-style).
func (s *Server) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("s3test: client: %v", err)
	}
	return c
}

// Bucket creates a bucket through the S3 API.
func (s *Server) Bucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("s3test: make bucket %s: %v", name, err)
	}
}
