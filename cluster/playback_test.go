package cluster

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/pgtest"
)

// echo is a node's local playback: it answers with the node's name, the
// path and query it got, and whether the request was forwarded. A path
// ending in "slow.m4s" sends a first chunk, then waits for release before
// the rest, to show the proxy streams without buffering.
func echo(node string, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s?%s fwd=%s\n", node, r.URL.Path, r.URL.RawQuery, r.Header.Get(HeaderForwarded))
		if strings.HasSuffix(r.URL.Path, "slow.m4s") {
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, "rest\n")
		}
	})
}

type playbackNodes struct {
	a, b       *testNode
	srvA, srvB *httptest.Server
	release    chan struct{}
}

// startPlayback runs nodes A and B, each with an HTTP server whose handler
// is its PlaybackHandler over echo, and publishes live/cam1 and
// live/cam1/720p on A and live/b1 on B.
func startPlayback(t *testing.T, mode string) *playbackNodes {
	t.Helper()
	dsn := pgtest.Start(t).CreateDB(t)
	p := &playbackNodes{release: make(chan struct{})}
	// The servers exist before the nodes so that their addresses can be
	// registered; the handlers are set once the nodes run.
	var handlerA, handlerB http.Handler
	p.srvA = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handlerA.ServeHTTP(w, r) }))
	p.srvB = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handlerB.ServeHTTP(w, r) }))
	t.Cleanup(p.srvA.Close)
	t.Cleanup(p.srvB.Close)
	t.Cleanup(func() {
		select {
		case <-p.release:
		default:
			close(p.release)
		}
	})
	p.a = newNode(t, dsn, "node-a", p.srvA.URL)
	p.b = newNode(t, dsn, "node-b", p.srvB.URL)
	handlerA = p.a.PlaybackHandler(echo("A", p.release), mode)
	handlerB = p.b.PlaybackHandler(echo("B", p.release), mode)
	publish(t, p.a.hub, "live/cam1", "rtmp")
	publish(t, p.a.hub, "live/cam1/720p", "transcoder")
	publish(t, p.b.hub, "live/b1", "rtmp")
	eventually(t, "B to list A's streams", func() (bool, string) {
		all := streamsOf(t, p.b.Cluster)
		_, ok1 := findStream(all, "live/cam1", "node-a")
		_, ok2 := findStream(all, "live/cam1/720p", "node-a")
		return ok1 && ok2, fmt.Sprint(all)
	})
	return p
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: noRedirect}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// B proxies playback of A's streams to A, query strings included, and
// serves locally what it has, what nobody has, and what was forwarded.
func TestPlaybackProxy(t *testing.T) {
	p := startPlayback(t, ModeProxy)

	resp, body := get(t, p.srvB.URL+"/live/cam1/index.m3u8?_HLS_msn=3&_HLS_part=1", nil)
	want := "A /live/cam1/index.m3u8?_HLS_msn=3&_HLS_part=1 fwd=node-b\n"
	if resp.StatusCode != 200 || body != want || resp.Header.Get(HeaderNode) != "node-a" {
		t.Fatalf("B proxying A's playlist: %d %q (X-MPS-Node %q), want %q",
			resp.StatusCode, body, resp.Header.Get(HeaderNode), want)
	}
	// A rendition belongs to its own stream name, also on A.
	_, body = get(t, p.srvB.URL+"/live/cam1/720p/t0.m3u8", nil)
	if body != "A /live/cam1/720p/t0.m3u8? fwd=node-b\n" {
		t.Fatalf("rendition through B: %q", body)
	}
	for _, tc := range []struct {
		path   string
		header http.Header
		want   string
	}{
		{"/live/b1/index.m3u8", nil, "B /live/b1/index.m3u8? fwd=\n"},         // B's own stream
		{"/live/nobody/index.m3u8", nil, "B /live/nobody/index.m3u8? fwd=\n"}, // unknown: local 404s it
		{"/live/cam1/index.m3u8", http.Header{HeaderForwarded: {"node-x"}}, "B /live/cam1/index.m3u8? fwd=node-x\n"},
		{"/index.html", nil, "B /index.html? fwd=\n"},
	} {
		resp, body := get(t, p.srvB.URL+tc.path, tc.header)
		if body != tc.want || resp.Header.Get(HeaderNode) != "" {
			t.Errorf("GET %s on B: %q (X-MPS-Node %q), want %q", tc.path, body, resp.Header.Get(HeaderNode), tc.want)
		}
	}
	// A serves its own streams locally.
	if _, body := get(t, p.srvA.URL+"/live/cam1/index.m3u8", nil); body != "A /live/cam1/index.m3u8? fwd=\n" {
		t.Fatalf("A's own stream on A: %q", body)
	}

	// Streaming: the first chunk reaches the client before A finishes.
	resp, err := http.Get(p.srvB.URL + "/live/cam1/seg1.slow.m4s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("A /live/cam1/seg1.slow.m4s? fwd=node-b\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	close(p.release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(first)+string(rest) != "A /live/cam1/seg1.slow.m4s? fwd=node-b\nrest\n" {
		t.Fatalf("streamed answer %q%q, %v", first, rest, err)
	}
}

// Redirect mode answers 302 with A's URL (query kept) for A's streams.
func TestPlaybackRedirect(t *testing.T) {
	p := startPlayback(t, ModeRedirect)
	resp, _ := get(t, p.srvB.URL+"/live/cam1/index.m3u8?_HLS_msn=3", nil)
	loc := p.srvA.URL + "/live/cam1/index.m3u8?_HLS_msn=3"
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != loc || resp.Header.Get(HeaderNode) != "node-a" {
		t.Fatalf("redirect: %d Location %q X-MPS-Node %q, want 302 %q", resp.StatusCode,
			resp.Header.Get("Location"), resp.Header.Get(HeaderNode), loc)
	}
	// Following it plays from A.
	r2, err := http.Get(p.srvB.URL + "/live/cam1/index.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if string(body) != "A /live/cam1/index.m3u8? fwd=\n" {
		t.Fatalf("after the redirect: %q", body)
	}
	if _, body := get(t, p.srvB.URL+"/live/b1/index.m3u8", nil); body != "B /live/b1/index.m3u8? fwd=\n" {
		t.Fatalf("B's own stream: %q", body)
	}
}

// A node the registry names but that is gone answers 502 through the
// proxy; once it is deregistered, the request is served locally again.
func TestPlaybackOwnerGone(t *testing.T) {
	p := startPlayback(t, ModeProxy)
	p.srvA.Close()
	resp, _ := get(t, p.srvB.URL+"/live/cam1/index.m3u8", nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("proxy to a closed server: %d", resp.StatusCode)
	}
	p.a.Close()
	eventually(t, "B to serve locally", func() (bool, string) {
		_, body := get(t, p.srvB.URL+"/live/cam1/index.m3u8", nil)
		return strings.HasPrefix(body, "B "), body
	})
}

func TestStreamName(t *testing.T) {
	for path, want := range map[string]string{
		"/live/cam1/index.m3u8":               "live/cam1",
		"/live/cam1/720p/t0.m3u8":             "live/cam1/720p",
		"/live/cam1/manifest.mpd":             "live/cam1",
		"/app/x/y/z/seg-1.2.m4s":              "app/x/y/z",
		"/live/../etc/passwd":                 "etc", // cleaned like any router would
		"/live//cam1/index.m3u8":              "live/cam1",
		"/live/cam1/":                         "live/cam1",
		"/index.m3u8":                         "",
		"live/cam1/index.m3u8":                "",
		"/live/c m/index.m3u8":                "",
		"/" + strings.Repeat("a", 250) + "/x": "",
	} {
		got, ok := StreamName(path)
		if ok != (want != "") || got != want {
			t.Errorf("StreamName(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
}

func FuzzStreamName(f *testing.F) {
	for _, s := range []string{"/live/cam1/index.m3u8", "/a/b/c/d.m4s", "/../x/y", "//", "/a/./b/c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, ok := StreamName(p)
		if !ok {
			if name != "" {
				t.Fatalf("StreamName(%q) = %q but not ok", p, name)
			}
			return
		}
		if err := stream.ValidateName(name); err != nil {
			t.Fatalf("StreamName(%q) = %q: %v", p, name, err)
		}
	})
}
