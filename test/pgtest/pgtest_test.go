package pgtest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(RunShared(m.Run)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Databases from CreateDB are separate: a table made in one is absent
// from the other.
func TestCreateDBIsolated(t *testing.T) {
	s := Start(t)
	a := connect(t, s.CreateDB(t))
	b := connect(t, s.CreateDB(t))
	ctx := context.Background()
	if _, err := a.Exec(ctx, "CREATE TABLE x (id int PRIMARY KEY); INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.QueryRow(ctx, "SELECT count(*) FROM x").Scan(&n); err != nil || n != 1 {
		t.Fatalf("count in a = %d, %v", n, err)
	}
	var exists bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('x') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("table x of one database is visible in another")
	}
	var version string
	if err := a.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL %s at %s", version, s.DSN("postgres"))
}

// Under RunShared every Start returns the same server.
func TestShared(t *testing.T) {
	if Start(t) != Start(t) {
		t.Fatal("Start under RunShared returned two servers")
	}
}

// The server never runs as root (initdb and postgres refuse it), and its
// settings are the fast test ones.
func TestServerUserAndSettings(t *testing.T) {
	s := Start(t)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Uid:") && strings.Fields(line)[2] == "0" {
			t.Fatalf("postgres runs as root: %s", line)
		}
	}
	c := connect(t, s.DSN("postgres"))
	var fsync string
	if err := c.QueryRow(context.Background(), "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q, %v", fsync, err)
	}
}

// A server of its own (outside the shared one) starts and stops, and its
// folder is removed.
func TestLaunchStop(t *testing.T) {
	if _, err := findBin(); err != nil {
		t.Skip(err)
	}
	s, err := Launch()
	if err != nil {
		t.Fatal(err)
	}
	connect(t, s.DSN("postgres")).Close(context.Background())
	s.Stop()
	s.Stop()
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Fatalf("folder %s still there after Stop: %v", s.Dir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx, s.DSN("postgres")); err == nil {
		c.Close(ctx)
		t.Fatal("server still answers after Stop")
	}
}
