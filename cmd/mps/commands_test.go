package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// runCommand runs mps in-process and returns its standard output.
func runCommand(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := tryCommand(args...)
	if err != nil {
		t.Fatalf("mps %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func tryCommand(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := newRootCommand("v9.9.9-test", &o, &e)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return o.String(), e.String(), err
}

func TestVersion(t *testing.T) {
	out := runCommand(t, "version")
	if !strings.HasPrefix(out, "mps v9.9.9-test (go") {
		t.Errorf("version printed %q", out)
	}
}

func TestSignKeyIsAcceptedByThePolicy(t *testing.T) {
	const secret = "a-long-enough-signing-secret"
	out, errOut, err := tryCommand("sign-key", "live/cam1", "--secret", secret, "--ttl", "2h")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	if strings.Contains(key, "\n") || key == "" {
		t.Fatalf("stdout %q, want the key alone", out)
	}
	if !strings.Contains(errOut, "cam1?key="+key) {
		t.Errorf("stderr %q does not show how to use the key", errOut)
	}

	cfg := config.Default()
	cfg.Applications[0].SigningSecret = secret
	policy := authPolicy(cfg.Applications)
	remote := netip.MustParseAddr("198.51.100.1")
	if _, err := policy.AuthorizePublish("live/cam1", key, remote); err != nil {
		t.Errorf("signed key refused: %v", err)
	}
	if _, err := policy.AuthorizePublish("live/cam2", key, remote); err == nil {
		t.Error("key for live/cam1 accepted for live/cam2")
	}
	policy.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
	if _, err := policy.AuthorizePublish("live/cam1", key, remote); err == nil {
		t.Error("key accepted after its ttl")
	}
}

func TestSignKeyReadsTheSecretFromTheConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mps.yaml")
	body := "applications:\n  - name: studio\n    signing_secret: studio-secret-0123456789\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(runCommand(t, "sign-key", "studio/a", "--config", path))
	policy := &auth.Policy{Apps: []auth.App{{Name: "studio", SigningSecret: "studio-secret-0123456789"}}}
	if _, err := policy.AuthorizePublish("studio/a", key, netip.MustParseAddr("198.51.100.1")); err != nil {
		t.Errorf("key signed with the configured secret refused: %v", err)
	}

	_, _, err := tryCommand("sign-key", "live/a", "--config", path)
	if err == nil || !strings.Contains(err.Error(), `application "live" is not in `+path) {
		t.Errorf("unknown application: %v", err)
	}
}

func TestSignKeyRejectsBadInput(t *testing.T) {
	for args, want := range map[string]string{
		"sign-key cam1 --secret 0123456789abcdef":                "needs an application and a stream",
		"sign-key live/../x --secret 0123456789abcdef":           "invalid stream name",
		"sign-key live/cam1 --secret 0123456789abcdef --ttl -1h": "--ttl",
		"sign-key": "accepts 1 arg",
	} {
		_, _, err := tryCommand(strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("mps %s: error %v, want one containing %q", args, err, want)
		}
	}
}

func TestServeRejectsABadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mps.yaml")
	if err := os.WriteFile(path, []byte("http:\n  adress: \":8080\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := tryCommand("serve", "--config", path)
	if err == nil || !strings.Contains(err.Error(), `unknown key "http.adress"`) {
		t.Errorf("serve with a typo: %v", err)
	}
	_, _, err = tryCommand("serve", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("serve with a missing file: %v", err)
	}
}
