package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// Messages of the access errors. They tell the client how to get in.
const (
	msgLoopbackOnly = "the API has no token configured, so it answers only clients on the server itself (loopback); " +
		"set api.token in the configuration or MPS_API_TOKEN, and send it as 'Authorization: Bearer <token>'"
	msgMissingToken = "missing bearer token: send 'Authorization: Bearer <token>'"
	msgWrongToken   = "wrong bearer token"
)

// authorize guards every route but /healthz. With a token configured, a
// request must carry it; without one, only loopback clients get in.
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.URL.Path == pathHealth {
			return next(c)
		}
		if s.token == "" {
			if isLoopback(r.RemoteAddr) {
				return next(c)
			}
			return apiError(http.StatusForbidden, msgLoopbackOnly, nil)
		}
		got, ok := bearerToken(r.Header.Get(echo.HeaderAuthorization))
		if !ok {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="mps"`)
			return apiError(http.StatusUnauthorized, msgMissingToken, nil)
		}
		if !sameSecret(got, s.token) {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="mps", error="invalid_token"`)
			return apiError(http.StatusUnauthorized, msgWrongToken, nil)
		}
		return next(c)
	}
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" header.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// sameSecret compares in constant time. Hashing first hides the length of
// the configured token too.
func sameSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// isLoopback reports whether a connection's remote address ("ip:port") is
// on this machine.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
