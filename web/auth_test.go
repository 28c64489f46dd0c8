package web

import (
	"net/http"
	"strings"
	"testing"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestTokenRequired(t *testing.T) {
	const token = "s3cret-token"
	f := newFixture(t, token, nil)

	for _, remote := range []string{loopbackAddr, remoteAddr} {
		resp := f.do(t, request{path: "/api/v1/streams", remote: remote})
		wantError(t, resp, http.StatusUnauthorized, "missing bearer token")
		if got := resp.Header.Get("WWW-Authenticate"); !contains(got, "Bearer") {
			t.Errorf("WWW-Authenticate = %q", got)
		}

		resp = f.do(t, request{path: "/api/v1/streams", remote: remote, token: "s3cret-tokem"})
		wantError(t, resp, http.StatusUnauthorized, "wrong bearer token")

		resp = f.do(t, request{path: "/api/v1/streams", remote: remote, header: http.Header{"Authorization": {"Basic czNjcmV0"}}})
		wantError(t, resp, http.StatusUnauthorized, "missing bearer token")

		resp = f.do(t, request{path: "/api/v1/streams", remote: remote, token: token})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("right token from %s: %d %s", remote, resp.StatusCode, body(t, resp))
		}
		resp = f.do(t, request{path: "/api/v1/streams", remote: remote, header: http.Header{"Authorization": {"bearer " + token}}})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("lower-case scheme from %s: %d", remote, resp.StatusCode)
		}
	}
	// Unknown paths do not tell an unauthenticated client what exists.
	wantError(t, f.do(t, request{path: "/api/v1/nothing", remote: remoteAddr}), http.StatusUnauthorized, "missing bearer token")
	wantError(t, f.do(t, request{path: "/metrics", remote: remoteAddr}), http.StatusUnauthorized, "missing bearer token")
}

func TestLoopbackOnlyWithoutToken(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, remote := range []string{"127.0.0.1:1234", "127.8.9.10:1234", "[::1]:1234", "[::ffff:127.0.0.1]:1234"} {
		if resp := f.do(t, request{path: "/api/v1/streams", remote: remote}); resp.StatusCode != http.StatusOK {
			t.Errorf("from %s: %d, want 200", remote, resp.StatusCode)
		}
	}
	for _, remote := range []string{remoteAddr, "[2001:db8::1]:1234", "10.0.0.1:1234", "garbage"} {
		resp := f.do(t, request{path: "/api/v1/streams", remote: remote})
		wantError(t, resp, http.StatusForbidden, "only clients on the server itself")
	}
	// A client cannot claim loopback through proxy headers.
	resp := f.do(t, request{path: "/api/v1/streams", remote: remoteAddr,
		header: http.Header{"X-Forwarded-For": {"127.0.0.1"}, "X-Real-Ip": {"127.0.0.1"}}})
	e := wantError(t, resp, http.StatusForbidden, "MPS_API_TOKEN")
	if !contains(e.Error, "api.token") {
		t.Errorf("403 message %q does not say how to configure a token", e.Error)
	}
	// A token sent to a server that has none does not help.
	wantError(t, f.do(t, request{path: "/api/v1/streams", remote: remoteAddr, token: "x"}), http.StatusForbidden, "loopback")
	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam1", remote: remoteAddr}), http.StatusForbidden, "loopback")
	wantError(t, f.do(t, request{path: "/metrics", remote: remoteAddr}), http.StatusForbidden, "loopback")
}

func TestSameSecret(t *testing.T) {
	if !sameSecret("abc", "abc") || sameSecret("abc", "abd") || sameSecret("abc", "abcd") || sameSecret("", "x") {
		t.Error("sameSecret is wrong")
	}
}
