package rtmp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

func authPolicy() *auth.Policy {
	return &auth.Policy{Apps: []auth.App{
		{Name: "live", Keys: []string{"good"}},
		{Name: "open", AllowLoopbackWithoutKey: true, AllowLadderParam: true},
		{Name: "signed", SigningSecret: "sign-me"},
	}}
}

// Every refusal reaches the client as an error and is logged on one line
// with the stream name, the remote address and the reason.
func TestPublishRefusals(t *testing.T) {
	e := newEnv(t, authPolicy())
	expired := auth.SignKey("sign-me", "signed/cam1", time.Now().Add(-time.Minute))
	otherName := auth.SignKey("sign-me", "signed/cam2", time.Now().Add(time.Hour))

	for _, tc := range []struct {
		target, stream, reason string
	}{
		{"live/cam1", "live/cam1", "missing key"},
		{"live/cam1?key=bad", "live/cam1", "wrong key"},
		{"live#cam1?key=bad", "live/cam1", "wrong key"},
		{"live/cam1?key=goodx", "live/cam1", "wrong key"},
		{"signed/cam1?key=" + expired, "signed/cam1", "expired key"},
		{"signed/cam1?key=" + otherName, "signed/cam1", "wrong key"},
		{"nope/cam1", "nope/cam1", "unknown application"},
		{"open", "open", "invalid stream name"},
		{"open/..", "open/..", "invalid stream name"},
		{"open#..", "open/..", "invalid stream name"},
		{"open/%2e%2e", "open/..", "invalid stream name"},
		{"open/%2E%2e/x", "open/../x", "invalid stream name"},
		{"open/a%2f..%2fb", "open/a/../b", "invalid stream name"},
		{"open//cam1", "open//cam1", "invalid stream name"},
		{"open/cam%20one", `"open/cam one"`, "invalid stream name"},
		{"open/cam1%00", `"open/cam1\x00"`, "invalid stream name"},
		{"open/" + strings.Repeat("x", stream.MaxNameLength), "open/xxx", "invalid stream name"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			before := len(e.logs.Lines("publish refused"))
			_, err := dialPublish(t, e.url(tc.target))
			if err == nil {
				t.Fatal("publish accepted")
			}
			lines := e.logs.Lines("publish refused")
			if len(lines) != before+1 {
				t.Fatalf("%d new refusal lines, want 1:\n%s", len(lines)-before, strings.Join(lines[before:], "\n"))
			}
			line := lines[len(lines)-1]
			for _, want := range []string{"stream=" + tc.stream, "remote=127.0.0.1:", fmt.Sprintf("reason=%q", tc.reason)} {
				if !strings.Contains(line, want) {
					t.Fatalf("refusal line lacks %s:\n%s", want, line)
				}
			}
			if _, err := e.hub.Get(tc.stream); err == nil {
				t.Fatal("refused publisher created a hub stream")
			}
		})
	}
}

func TestPublishAccepted(t *testing.T) {
	infos := make(chan PublishInfo, 10)
	e := newEnv(t, authPolicy(), func(s *Server) { s.OnPublish = func(pi PublishInfo) { infos <- pi } })
	valid := auth.SignKey("sign-me", "signed/cam1", time.Now().Add(time.Hour))

	for _, tc := range []struct {
		target, stream, params string
	}{
		{"live/cam1?key=good", "live/cam1", ""},
		{"live#cam1?key=good", "live/cam1", ""},
		{"live?key=good#cam1", "live/cam1", ""},
		{"signed/cam1?key=" + valid, "signed/cam1", ""},
		{"open/cam1", "open/cam1", ""},
		{"open/a/b.c_d-e", "open/a/b.c_d-e", ""},
		// ladder is allowed on "open", record is not: dropped, not refused.
		{"open/cam1?ladder=hd&record=1", "open/cam1", "ladder=hd"},
		{"live/cam1?key=good&ladder=hd&record=1", "live/cam1", ""},
	} {
		t.Run(tc.target, func(t *testing.T) {
			c, err := dialPublish(t, e.url(tc.target))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			w, track := newFakeAACWriter(t, c)
			if err := writeFakeAAC(w, track, 0, 150); err != nil {
				t.Fatal(err)
			}
			st := e.waitLive(tc.stream, 5*time.Second)
			var pi PublishInfo
			select {
			case pi = <-infos:
			case <-time.After(5 * time.Second):
				t.Fatal("OnPublish not called")
			}
			if got := pi.Params.Encode(); got != tc.params || pi.Name != tc.stream || pi.Publisher.Stream() != st {
				t.Fatalf("OnPublish got %q params %q, want %q %q", pi.Name, got, tc.stream, tc.params)
			}
			c.Close()
			select {
			case <-st.Ended():
			case <-time.After(5 * time.Second):
				t.Fatal("stream did not end after the client left")
			}
		})
	}
	if len(infos) != 0 {
		t.Fatalf("OnPublish called %d extra times", len(infos))
	}
	if n := len(e.logs.Lines("publish refused")); n != 0 {
		t.Fatalf("%d refusals logged", n)
	}
}

// A refused publisher, with a wrong key or for a live name, does not disturb
// the stream that is live.
func TestRefusedPublishersDoNotDisturbLiveStream(t *testing.T) {
	e := newEnv(t, authPolicy())
	good := push(t, e.url("live/good?key=good"), 9*time.Second, avInput, avCodecs)
	st := e.waitLive("live/good", 10*time.Second)

	got := make(chan *received, 1)
	go func() { got <- readFor(t, st, 5*time.Second) }()

	wrongKey := push(t, e.url("live/bad?key=nope"), 3*time.Second, avInput, avCodecs)
	sameNameWrongKey := push(t, e.url("live/good?key=nope"), 3*time.Second, avInput, avCodecs)
	second := push(t, e.url("live/good?key=good"), 3*time.Second, avInput, avCodecs)
	for name, p := range map[string]*pusher{"wrong key": wrongKey, "same name, wrong key": sameNameWrongKey, "second publisher": second} {
		if err := p.wait(t, 10*time.Second); err == nil {
			t.Errorf("%s: ffmpeg exited 0; want a refusal", name)
		}
	}
	if !strings.Contains(wrongKey.stderr.String(), "wrong key") {
		t.Errorf("ffmpeg does not show the reason:\n%s", wrongKey.stderr.String())
	}
	if len(e.logs.Lines("publish refused", "stream=live/good", `reason="already publishing"`)) != 1 {
		t.Errorf("second publisher refusal not logged once")
	}
	if len(e.logs.Lines("publish refused", "stream=live/bad", `reason="wrong key"`)) != 1 {
		t.Errorf("wrong key refusal not logged once")
	}

	rc := <-got
	rc.continuous(t, map[string]int{"h264": 75, "aac": 100}) // 5 s: 150 and 215 nominal
	if rc.session.ID != 1 {
		t.Fatalf("live stream is in session %d, want its first", rc.session.ID)
	}
	if err := good.wait(t, 15*time.Second); err != nil {
		t.Fatalf("good publisher failed: %v\n%s", err, good.stderr.String())
	}
}

// With Takeover, a second publisher replaces the first.
func TestTakeover(t *testing.T) {
	e := newEnv(t, &auth.Policy{Apps: []auth.App{{Name: "live", AllowLoopbackWithoutKey: true, Takeover: true}}})
	first := push(t, e.url("live/cam"), 30*time.Second, avInput, avCodecs)
	st := e.waitLive("live/cam", 10*time.Second)
	firstRemote := st.Session().RemoteAddr

	second := push(t, e.url("live/cam"), 4*time.Second, avInput, avCodecs)
	deadline := time.Now().Add(10 * time.Second)
	for st.Session().ID != 2 {
		if time.Now().After(deadline) {
			t.Fatal("second publisher did not take over")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Session().RemoteAddr == firstRemote {
		t.Fatal("session 2 has the first publisher's address")
	}
	if err := first.wait(t, 10*time.Second); err == nil {
		t.Fatal("first publisher exited 0 after being taken over")
	}
	if err := second.wait(t, 15*time.Second); err != nil {
		t.Fatalf("second publisher failed: %v\n%s", err, second.stderr.String())
	}
	if len(e.logs.Lines("unpublish", "live/cam", stream.ErrTakenOver.Error())) == 0 {
		t.Fatal("takeover not logged")
	}
}

// The default policy lets loopback publish without a key, but not a
// publisher on another address.
func TestDefaultPolicyDemandsKeyFromNetwork(t *testing.T) {
	ip := nonLoopbackIP(t)
	e := newEnv(t, nil, func(s *Server) { s.Addr = net.JoinHostPort(ip.String(), "0") })
	target := fmt.Sprintf("rtmp://%s/live/remote", e.srv.ListenAddr())
	if _, err := dialPublish(t, target); err == nil {
		t.Fatal("publish without a key from a network address accepted")
	}
	line := e.waitLog(5*time.Second, "publish refused", "stream=live/remote")
	if !strings.Contains(line, `reason="missing key"`) || !strings.Contains(line, "remote="+ip.String()+":") {
		t.Fatalf("refusal line: %s", line)
	}
}

// nonLoopbackIP returns an address of this machine that is not loopback.
func nonLoopbackIP(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(pn.IP); ok && !ip.Unmap().IsLoopback() && ip.Unmap().Is4() {
				return ip.Unmap()
			}
		}
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return netip.Addr{}
}

// The admission hook sees each authorised publisher before its media: it
// can refuse it, with its reason logged, or change its parameters.
func TestAdmission(t *testing.T) {
	infos := make(chan PublishInfo, 10)
	var seen []auth.PublishRequest
	var mu sync.Mutex
	e := newEnv(t, authPolicy(), func(s *Server) {
		s.OnPublish = func(pi PublishInfo) { infos <- pi }
		s.Admit = func(ctx context.Context, req auth.PublishRequest) (url.Values, error) {
			mu.Lock()
			seen = append(seen, req)
			mu.Unlock()
			if req.Name == "open/banned" {
				return nil, fmt.Errorf("%w: camera is banned", auth.ErrAdmissionRefused)
			}
			p := url.Values{"ladder": {"from-hook"}}
			return p, nil
		}
	})

	if _, err := dialPublish(t, e.url("open/banned")); err == nil {
		t.Fatal("refused publisher accepted")
	}
	line := e.waitLog(5*time.Second, "publish refused", "stream=open/banned")
	if !strings.Contains(line, `reason="refused by admission"`) || !strings.Contains(line, "camera is banned") {
		t.Fatalf("refusal line: %s", line)
	}
	if _, err := e.hub.Get("open/banned"); err == nil {
		t.Fatal("refused publisher created a hub stream")
	}

	// A wrong key is refused before the hook is asked.
	if _, err := dialPublish(t, e.url("live/cam1?key=bad")); err == nil {
		t.Fatal("wrong key accepted")
	}

	c, err := dialPublish(t, e.url("open/cam1?ladder=mine"))
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	w, track := newFakeAACWriter(t, c)
	if err := writeFakeAAC(w, track, 0, 150); err != nil {
		t.Fatal(err)
	}
	e.waitLive("open/cam1", 5*time.Second)
	select {
	case pi := <-infos:
		if got := pi.Params.Get("ladder"); got != "from-hook" {
			t.Fatalf("OnPublish params ladder = %q, want the hook's", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnPublish not called")
	}
	c.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("hook asked %d times, want 2 (not for the wrong key): %+v", len(seen), seen)
	}
	if r := seen[1]; r.Name != "open/cam1" || r.Protocol != Protocol || r.Params.Get("ladder") != "mine" || !strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") {
		t.Fatalf("hook request = %+v", r)
	}
}
