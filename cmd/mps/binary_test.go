package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The built binary takes its ports and token from the environment, logs
// where it listens, and exits cleanly on SIGTERM.
func TestBinaryServeWithEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "mps")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	httpAddr, rtmpAddr := freePort(t), freePort(t)
	cmd := exec.Command(bin, "serve")
	cmd.Dir = t.TempDir() // no configs/mps.yaml here: built-in defaults
	cmd.Env = append(os.Environ(),
		"MPS_HTTP_ADDRESS="+httpAddr,
		"MPS_RTMP_ADDRESS="+rtmpAddr,
		"MPS_API_TOKEN=env-token",
		"MPS_LOG_LEVEL=debug",
	)
	logs := &testutil.LogBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := "http://" + httpAddr
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, err := client().Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer on %s: %v\n%s", httpAddr, err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get(t, base+"/api/v1/streams"); code != http.StatusUnauthorized {
		t.Errorf("API without the token from MPS_API_TOKEN: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/streams", nil)
	req.Header.Set("Authorization", "Bearer env-token")
	resp, err := client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("API with the token: %d, want 200", resp.StatusCode)
	}
	conn, err := net.DialTimeout("tcp", rtmpAddr, waitTimeout)
	if err != nil {
		t.Fatalf("rtmp on %s: %v", rtmpAddr, err)
	}
	conn.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("still running %s after SIGTERM\n%s", waitTimeout, logs)
	}
	out := logs.String()
	for _, want := range []string{"http=" + httpAddr, "rtmp=" + rtmpAddr, "mps stopped", "level=DEBUG", "built-in defaults"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
