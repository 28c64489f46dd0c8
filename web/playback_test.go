package web

import (
	"net/http"
	"testing"
)

func TestPlaybackFallsThrough(t *testing.T) {
	var gotPath string
	playback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = w.Write([]byte("#EXTM3U\n"))
	})
	f := newFixture(t, "token-for-the-api", playback)

	// Playback is not behind the API token, and allows other origins.
	resp := f.do(t, request{path: "/live/cam1/index.m3u8", remote: remoteAddr, header: http.Header{"Origin": {"https://player.example"}}})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || b != "#EXTM3U\n" || gotPath != "/live/cam1/index.m3u8" {
		t.Fatalf("playback: %d %q at %q", resp.StatusCode, b, gotPath)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
	}

	// API paths never reach playback.
	gotPath = ""
	f.do(t, request{path: "/api/v1/streams"})
	f.do(t, request{path: "/metrics"})
	if gotPath != "" {
		t.Errorf("API request reached playback at %q", gotPath)
	}
}

func TestPlaybackKeepsItsOwnCORS(t *testing.T) {
	playback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "https://only.example")
		w.Header().Set("Access-Control-Allow-Methods", "GET")
		w.WriteHeader(http.StatusNoContent)
	})
	f := newFixture(t, "", playback)
	resp := f.do(t, request{method: http.MethodOptions, path: "/live/cam1/index.m3u8",
		header: http.Header{"Origin": {"https://only.example"}, "Access-Control-Request-Method": {"GET"}}})
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("preflight status %d, want the playback handler's 204", resp.StatusCode)
	}
	if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "https://only.example" {
		t.Errorf("Access-Control-Allow-Origin = %q, want the playback handler's own", got)
	}
	if got := resp.Header.Get("Access-Control-Allow-Methods"); got != "GET" {
		t.Errorf("Access-Control-Allow-Methods = %q, want GET", got)
	}
}

func TestNoPlaybackHandler(t *testing.T) {
	f := newFixture(t, "", nil)
	if resp := f.do(t, request{path: "/live/cam1/index.m3u8"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}
