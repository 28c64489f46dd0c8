package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mps-dev/mps/stream"
)

type statusErr struct{ code int }

func (e statusErr) Error() string   { return "refused" }
func (e statusErr) HTTPStatus() int { return e.code }

// fakeWebRTC records the calls the handlers make.
type fakeWebRTC struct {
	name, key, remote string
	query             url.Values
	offer             string
	ended             []string
	err               error
}

func (f *fakeWebRTC) Publish(_ context.Context, name, key, remote string, q url.Values, offer []byte) ([]byte, string, error) {
	f.name, f.key, f.remote, f.query, f.offer = name, key, remote, q, string(offer)
	if f.err != nil {
		return nil, "", f.err
	}
	return []byte("v=0 answer"), "abc123", nil
}

func (f *fakeWebRTC) Play(_ context.Context, name, remote string, offer []byte) ([]byte, string, error) {
	f.name, f.remote, f.offer = name, remote, string(offer)
	if f.err != nil {
		return nil, "", f.err
	}
	return []byte("v=0 play"), "def456", nil
}

func (f *fakeWebRTC) EndSession(kind, name, id string) error {
	if id != "abc123" && id != "def456" {
		return statusErr{http.StatusNotFound}
	}
	f.ended = append(f.ended, kind+" "+name+" "+id)
	return nil
}

func newWebRTCServer(t *testing.T, w WebRTC) *Server {
	t.Helper()
	s, err := New(Config{Hub: stream.NewHub(stream.HubConfig{}), Token: "api-token", WebRTC: w})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func do(s *Server, method, path, ctype, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "198.51.100.4:5555"
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestWHIPHandlers(t *testing.T) {
	f := &fakeWebRTC{}
	s := newWebRTCServer(t, f)

	// The API token is not needed: the bearer token is the stream key.
	w := do(s, http.MethodPost, "/whip/live/cam1?ladder=default", "application/sdp", "Bearer s3cret", "v=0 offer")
	if w.Code != http.StatusCreated || w.Body.String() != "v=0 answer" ||
		w.Header().Get("Location") != "/whip/live/cam1/abc123" || w.Header().Get("Content-Type") != "application/sdp" {
		t.Fatalf("POST: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	if f.name != "live/cam1" || f.key != "s3cret" || f.remote != "198.51.100.4:5555" || f.offer != "v=0 offer" || f.query.Get("ladder") != "default" {
		t.Errorf("Publish got %+v", f)
	}
	if w.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("CORS headers %v", w.Header())
	}

	w = do(s, http.MethodDelete, "/whip/live/cam1/abc123", "", "", "")
	if w.Code != http.StatusOK || len(f.ended) != 1 || f.ended[0] != "whip live/cam1 abc123" {
		t.Errorf("DELETE: %d %v", w.Code, f.ended)
	}
	if w = do(s, http.MethodDelete, "/whip/live/cam1/nope", "", "", ""); w.Code != http.StatusNotFound {
		t.Errorf("DELETE unknown: %d", w.Code)
	}
	if w = do(s, http.MethodDelete, "/whip/x", "", "", ""); w.Code != http.StatusNotFound {
		t.Errorf("DELETE without session: %d", w.Code)
	}

	w = do(s, http.MethodOptions, "/whip/live/cam1", "", "", "")
	if w.Code != http.StatusNoContent || !strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Errorf("OPTIONS: %d %v", w.Code, w.Header())
	}

	w = do(s, http.MethodPost, "/whep/live/cam1", "application/sdp", "", "v=0 offer")
	if w.Code != http.StatusCreated || w.Body.String() != "v=0 play" || w.Header().Get("Location") != "/whep/live/cam1/def456" {
		t.Errorf("WHEP POST: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	if w = do(s, http.MethodDelete, "/whep/live/cam1/def456", "", "", ""); w.Code != http.StatusOK || f.ended[1] != "whep live/cam1 def456" {
		t.Errorf("WHEP DELETE: %d %v", w.Code, f.ended)
	}

	if w = do(s, http.MethodPost, "/whip/live/cam1", "application/json", "", "{}"); w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("JSON body: %d", w.Code)
	}
	if w = do(s, http.MethodPost, "/whip/live/cam1", "application/sdp", "", strings.Repeat("a", maxOfferSize+1)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge offer: %d", w.Code)
	}
	if w = do(s, http.MethodPatch, "/whip/live/cam1/abc123", "application/trickle-ice-sdpfrag", "", "a=x"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PATCH: %d", w.Code)
	}
	if w = do(s, http.MethodGet, "/whip/live/cam1", "", "", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}

	f.err = statusErr{http.StatusUnauthorized}
	w = do(s, http.MethodPost, "/whip/live/cam1", "application/sdp", "Bearer wrong", "v=0")
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("wrong key: %d %v", w.Code, w.Header())
	}
	f.err = errors.New("boom")
	if w = do(s, http.MethodPost, "/whip/live/cam1", "application/sdp", "", "v=0"); w.Code != http.StatusInternalServerError {
		t.Errorf("plain error: %d", w.Code)
	}
}

func TestWHIPDisabled(t *testing.T) {
	s := newWebRTCServer(t, nil)
	if w := do(s, http.MethodPost, "/whip/live/cam1", "application/sdp", "", "v=0"); w.Code != http.StatusNotImplemented {
		t.Errorf("disabled: %d", w.Code)
	}
}
