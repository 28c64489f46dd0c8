// Package pgtest starts a real PostgreSQL server for tests: a private data
// folder, a private loopback port, trust authentication and fsync off.
//
// initdb and postgres refuse to run as root. When the tests run as root
// (as they do on the CI machine), the server runs as the "postgres" user
// (or "nobody" when there is none): the child processes get that user's
// credentials through exec.Cmd's SysProcAttr, and the data folder is owned
// by it.
//
// A package's tests either start a server per test (Start without
// RunShared) or share one server per test binary:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunShared(m.Run)) }
//
// Each test then takes a fresh database with CreateDB.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres means the PostgreSQL server binaries were not found.
var ErrNoPostgres = errors.New("postgresql binaries (initdb, postgres) not found")

// startTimeout bounds initdb plus the server's start. It is a hang
// detector: a healthy start takes about two seconds.
const startTimeout = 60 * time.Second

// Server is a running PostgreSQL server.
type Server struct {
	// Host and Port are where it listens (TCP on loopback).
	Host string
	Port int
	// User is the superuser role; authentication is "trust".
	User string
	// Dir holds the data folder, the unix socket and the server log.
	Dir string

	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// shared is the server of a test binary that called RunShared.
var shared struct {
	mu      sync.Mutex
	enabled bool
	srv     *Server
	err     error
}

// RunShared runs run (usually m.Run, or a leak-checking wrapper around it)
// with one server shared by every Start of the test binary, started on
// first use, and stops that server afterwards. It returns run's result.
func RunShared(run func() int) int {
	shared.mu.Lock()
	shared.enabled = true
	shared.mu.Unlock()
	code := run()
	shared.mu.Lock()
	srv := shared.srv
	shared.srv, shared.enabled, shared.err = nil, false, nil
	shared.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
	return code
}

// Start returns a running server: the test binary's shared one under
// RunShared, else a new one that is stopped when the test ends. When the
// PostgreSQL binaries are missing the test is skipped, or fails when the
// environment has CI=true.
func Start(tb testing.TB) *Server {
	tb.Helper()
	shared.mu.Lock()
	if shared.enabled {
		defer shared.mu.Unlock()
		if shared.srv == nil && shared.err == nil {
			shared.srv, shared.err = Launch()
		}
		if shared.err != nil {
			fail(tb, shared.err)
		}
		return shared.srv
	}
	shared.mu.Unlock()
	s, err := Launch()
	if err != nil {
		fail(tb, err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func fail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CI") != "true" {
		tb.Skipf("pgtest: %v (install Debian's postgresql; under CI=true this fails)", err)
	}
	tb.Fatalf("pgtest: %v", err)
}

// Launch starts a server outside of any test; the caller stops it with Stop.
func Launch() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	runAs, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mps-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if runAs != nil {
		if err := os.Chown(dir, int(runAs.Uid), int(runAs.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: chown %s: %w", dir, err)
		}
	}
	data := filepath.Join(dir, "data")
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--no-instructions")
	initdb.Env = serverEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: runAs}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}

	// The port is free a moment before postgres binds it; another process
	// may take it in between, so a failed start is retried on a new port.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Host: "127.0.0.1", Port: port, User: "postgres", Dir: dir}
		if err := s.run(ctx, bin, runAs); err != nil {
			lastErr = err
			continue
		}
		ok = true
		return s, nil
	}
	return nil, lastErr
}

func (s *Server) run(ctx context.Context, bin string, runAs *syscall.Credential) error {
	logPath := filepath.Join(s.Dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", filepath.Join(s.Dir, "data"),
		"-p", strconv.Itoa(s.Port),
		"-k", s.Dir,
		"-c", "listen_addresses="+s.Host,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
	)
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig stops the server (immediate shutdown) if the test binary
	// dies without calling Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	for {
		c, err := pgx.Connect(ctx, s.DSN("postgres"))
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres exited at start:\n%s", tail(string(log), 20))
		case <-ctx.Done():
			s.kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres not ready after %s: %v\n%s", startTimeout, err, tail(string(log), 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DSN returns the connection string of database db.
func (s *Server) DSN(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(s.User),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDB creates a fresh, empty database, dropped when the test ends
// (after the cleanups registered later, so after its users closed), and
// returns its DSN.
func (s *Server) CreateDB(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		select {
		case <-s.exited:
			return // stopped already
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// Log returns the server's log so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 10 s) and
// removes its folder. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.exited:
			case <-time.After(10 * time.Second):
				s.kill()
			}
		}
		os.RemoveAll(s.Dir)
	})
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// findBin returns the folder holding initdb and postgres: the environment's
// PGTEST_BIN, the newest /usr/lib/postgresql/*/bin, or the folder of the
// initdb found in PATH.
func findBin() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("PGTEST_BIN"); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%w in PGTEST_BIN=%s", ErrNoPostgres, dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	return "", fmt.Errorf("%w (looked in PGTEST_BIN, /usr/lib/postgresql/*/bin and PATH)", ErrNoPostgres)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// serverCredential returns the user to run the server as: nil (the current
// one) unless that is root, else "postgres" or, failing that, "nobody".
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: false, Groups: []uint32{}}, nil
	}
	return nil, errors.New("pgtest: running as root and neither a postgres nor a nobody user exists to run PostgreSQL as (initdb refuses root)")
}

func serverEnv() []string {
	env := []string{"LC_ALL=C", "LANG=C", "TZ=UTC", "PATH=" + os.Getenv("PATH")}
	if os.Geteuid() == 0 {
		env = append(env, "HOME=/tmp")
	} else if h := os.Getenv("HOME"); h != "" {
		env = append(env, "HOME="+h)
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
