package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// admissionCall is what the webhook received.
type admissionCall struct {
	Stream     string              `json:"stream"`
	App        string              `json:"app"`
	Protocol   string              `json:"protocol"`
	RemoteAddr string              `json:"remote_addr"`
	Params     map[string][]string `json:"params"`
}

// TestAdmissionWebhook runs mps with an admission webhook that picks a
// ladder for one stream and refuses another: the first gets its
// renditions, the second's publisher is turned away with the webhook's
// reason logged, and a third publishes untouched. A fourth, which the
// webhook admits without a ladder, gets one from a ladder rule.
func TestAdmissionWebhook(t *testing.T) {
	var mu sync.Mutex
	var calls []admissionCall
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c admissionCall
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		switch c.Stream {
		case "live/hooked":
			fmt.Fprint(w, `{"ladder": "test3"}`)
		case "live/banned":
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"reason": "camera banned by the webhook"}`)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer hook.Close()

	s := startServer(t, serverOptions{Config: ladderConfig(fmt.Sprintf("admission:\n  url: %s/admit\n  timeout: 5s\nladder_rules:\n  - match: live/ruled-*\n    ladder: test3\n", hook.URL))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	plain := ffmpegPublish(t, ctx, s.RTMPURL("live/plain"), pubOptions{})
	hooked := publishLadderSource(t, ctx, s, "live/hooked", "", 0)
	ruled := publishLadderSource(t, ctx, s, "live/ruled-1", "", 0)
	banned := ffmpegPublish(t, ctx, s.RTMPURL("live/banned"), pubOptions{Duration: 30 * time.Second})

	expectRefused(t, banned, "publisher the webhook refuses")
	line := s.waitLog(t, 10*time.Second, "publish refused", "stream=live/banned")
	for _, want := range []string{`reason="refused by admission"`, "camera banned by the webhook"} {
		if !strings.Contains(line, want) {
			t.Errorf("refusal line lacks %s:\n%s", want, line)
		}
	}

	waitRenditions(t, s, "live/hooked", ladderResolutions, 1, 60*time.Second)
	if li, ok := s.ladder(t, "live/hooked"); !ok || li.Template != "test3" {
		t.Errorf("live/hooked ladder = %+v, %v; want test3 picked by the webhook", li, ok)
	}

	waitRenditions(t, s, "live/ruled-1", ladderResolutions, 1, 60*time.Second)
	if li, ok := s.ladder(t, "live/ruled-1"); !ok || li.Template != "test3" {
		t.Errorf("live/ruled-1 ladder = %+v, %v; want test3 from the rule", li, ok)
	}

	waitForPlaylist(t, s, "live/plain", 2)
	if _, ok := s.ladder(t, "live/plain"); ok {
		t.Error("live/plain got a ladder; the webhook gave none")
	}
	for _, p := range []*proc{plain, hooked, ruled} {
		if !p.Running() {
			t.Errorf("an admitted publisher exited: %v", p.err)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	seen := map[string]admissionCall{}
	for _, c := range calls {
		seen[c.Stream] = c
	}
	for _, name := range []string{"live/plain", "live/hooked", "live/banned"} {
		c, ok := seen[name]
		if !ok {
			t.Errorf("the webhook was not asked about %s", name)
			continue
		}
		if c.App != "live" || c.Protocol != "rtmp" || c.RemoteAddr == "" {
			t.Errorf("webhook request for %s = %+v", name, c)
		}
	}
}
