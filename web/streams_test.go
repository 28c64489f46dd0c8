package web

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
)

func TestListStreams(t *testing.T) {
	f := newFixture(t, "", nil)

	resp := f.do(t, request{path: "/api/v1/streams"})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || b != "[]\n" {
		t.Fatalf("empty hub: %d %q, want 200 []", resp.StatusCode, b)
	}

	f.publish(t, "live/cam2")
	f.publish(t, "live/cam1")
	var list []stream.Info
	decode(t, f.do(t, request{path: "/api/v1/streams"}), http.StatusOK, &list)
	if len(list) != 2 || list[0].Name != "live/cam1" || list[1].Name != "live/cam2" {
		t.Fatalf("list = %+v, want live/cam1 and live/cam2 in order", list)
	}
}

func TestGetStream(t *testing.T) {
	f := newFixture(t, "", nil)
	f.publish(t, "live/cam1")

	var in stream.Info
	decode(t, f.do(t, request{path: "/api/v1/streams/live/cam1"}), http.StatusOK, &in)
	if in.Name != "live/cam1" || in.State != stream.StateLive || in.Protocol != "rtmp" || in.Session != 1 {
		t.Errorf("info = %+v", in)
	}
	if len(in.Tracks) != 1 {
		t.Fatalf("tracks = %+v, want one", in.Tracks)
	}
	tr := in.Tracks[0]
	if tr.Kind != "video" || tr.Codec != "h264" || tr.Width != 352 || tr.Height != 288 || tr.Frames != 31 {
		t.Errorf("track = %+v, want h264 352x288 with 31 frames", tr)
	}
	if tr.FPS < 29 || tr.FPS > 31 || tr.Bitrate < 200_000 || tr.Bitrate > 300_000 {
		t.Errorf("track fps %v bitrate %d, want about 30 fps and 240 kbit/s", tr.FPS, tr.Bitrate)
	}
	if in.BytesIn != 31_000 {
		t.Errorf("bytes_in = %d, want 31000", in.BytesIn)
	}
}

func TestGetStreamNotFound(t *testing.T) {
	f := newFixture(t, "", nil)
	f.publish(t, "live/cam1")
	wantError(t, f.do(t, request{path: "/api/v1/streams/live/cam9"}), http.StatusNotFound, `stream "live/cam9" not found`)
	wantError(t, f.do(t, request{path: "/api/v1/streams/live"}), http.StatusNotFound, "not found")
}

func TestInvalidStreamName(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, path := range []string{
		"/api/v1/streams/live/..",
		"/api/v1/streams/live/../cam1",
		"/api/v1/streams/live//cam1",
		"/api/v1/streams/live/cam1/",
		"/api/v1/streams/",
		"/api/v1/streams/live/cam%201",
		"/api/v1/streams/live/%2e%2e",
	} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			t.Run(method+" "+path, func(t *testing.T) {
				wantError(t, f.do(t, request{method: method, path: path}), http.StatusBadRequest, "invalid stream name")
			})
		}
	}
}

func TestKickStream(t *testing.T) {
	f := newFixture(t, "", nil)
	p := f.publish(t, "live/cam1")

	resp := f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam1"})
	if b := body(t, resp); resp.StatusCode != http.StatusNoContent || b != "" {
		t.Fatalf("DELETE: %d %q, want 204 and no body", resp.StatusCode, b)
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("publisher was not told to leave")
	}
	if !errors.Is(p.Err(), stream.ErrKicked) {
		t.Errorf("publisher error %v, want ErrKicked", p.Err())
	}
	p.Close(p.Err())

	// The stream now waits for its publisher: it is still listed, and
	// there is no one left to kick.
	var in stream.Info
	decode(t, f.do(t, request{path: "/api/v1/streams/live/cam1"}), http.StatusOK, &in)
	if in.State != stream.StateReconnecting {
		t.Errorf("state after kick = %s, want reconnecting", in.State)
	}
	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam1"}),
		http.StatusNotFound, "no publisher connected")
	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam9"}),
		http.StatusNotFound, `stream "live/cam9" not found`)
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, "", nil)
	resp := f.do(t, request{method: http.MethodPost, path: "/api/v1/streams"})
	wantError(t, resp, http.StatusMethodNotAllowed, "method POST is not allowed on /api/v1/streams")
	if allow := resp.Header.Get("Allow"); allow == "" {
		t.Error("405 without an Allow header")
	}
	resp = f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1"})
	wantError(t, resp, http.StatusMethodNotAllowed, "allowed:")
}

func TestUnknownAPIPath(t *testing.T) {
	f := newFixture(t, "", nil)
	wantError(t, f.do(t, request{path: "/api/v1/nothing"}), http.StatusNotFound, "no API endpoint /api/v1/nothing")
	wantError(t, f.do(t, request{path: "/api"}), http.StatusNotFound, "no API endpoint")
}

func TestHealth(t *testing.T) {
	f := newFixture(t, "secret-token", nil)
	var h map[string]string
	decode(t, f.do(t, request{path: "/healthz", remote: remoteAddr}), http.StatusOK, &h)
	if h["status"] != "ok" {
		t.Errorf("healthz = %v", h)
	}
}

func TestRequestLogAtDebug(t *testing.T) {
	f := newFixture(t, "", nil)
	f.do(t, request{path: "/api/v1/streams/live/none"})
	logs := f.logs.String()
	for _, want := range []string{"level=DEBUG", `msg="http request"`, "method=GET", "path=/api/v1/streams/live/none", "status=404"} {
		if !contains(logs, want) {
			t.Errorf("log %q lacks %q", logs, want)
		}
	}
}
