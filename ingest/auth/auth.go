// Package auth decides who may publish a live stream.
//
// Publishing is authorised per application (the first part of a stream
// name: "live" in "live/cam1") by stream keys. A key is either a static
// secret listed in App.Keys, or a signed key that expires:
//
//	<unix-expiry>-<hex HMAC-SHA256(SigningSecret, "<app>/<name>:<unix-expiry>")>
//
// where "<app>/<name>" is the full stream name, such as "live/cam1". SignKey
// makes such keys. Every comparison of secret material runs in constant time.
package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mps-dev/mps/stream"
)

// Reasons for refusing a publisher. AuthorizePublish wraps one of them, or
// stream.ErrInvalidName, so callers can match the reason with errors.Is.
var (
	ErrMissingKey = errors.New("missing key")
	ErrWrongKey   = errors.New("wrong key")
	ErrExpiredKey = errors.New("expired key")
	ErrUnknownApp = errors.New("unknown application")
)

// Query parameters that publishers may add to a stream key
// ("cam1?key=SECRET&ladder=default").
const (
	ParamKey    = "key"
	ParamLadder = "ladder"
	ParamRecord = "record"
)

// App is the publish policy of one application.
type App struct {
	// Name is the application, the first part of every stream name it holds.
	Name string
	// Keys are static stream keys. Any of them authorises any stream name.
	Keys []string
	// SigningSecret, when set, also accepts keys made by SignKey with it.
	SigningSecret string
	// AllowLoopbackWithoutKey accepts a publisher that gives no key when it
	// connects from a loopback address. From any other address a key is
	// always required, and a key that is given is always checked. An App
	// with no Keys, no SigningSecret and no loopback exception refuses
	// every publisher.
	AllowLoopbackWithoutKey bool
	// Takeover lets a new publisher replace the live one on a name instead
	// of being refused.
	Takeover bool
	// AllowLadderParam and AllowRecordParam let publishers choose a ladder
	// or a recording through the "ladder" and "record" query parameters.
	// When not allowed, the parameters are dropped (not refused).
	AllowLadderParam, AllowRecordParam bool
}

// Params returns the publisher's query parameters that this application
// lets through: the key is always removed, and "ladder" and "record" are
// removed unless allowed. q is not modified.
func (a App) Params(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		switch {
		case k == ParamKey:
		case k == ParamLadder && !a.AllowLadderParam:
		case k == ParamRecord && !a.AllowRecordParam:
		default:
			out[k] = append([]string(nil), v...)
		}
	}
	return out
}

// Policy holds the publish policy of every application.
type Policy struct {
	Apps []App
	// Now returns the current time, for key expiry. Nil means time.Now.
	Now func() time.Time
}

// DefaultPolicy is the out-of-the-box policy: one application, "live",
// that accepts publishers without a key from loopback only.
func DefaultPolicy() *Policy {
	return &Policy{Apps: []App{{Name: "live", AllowLoopbackWithoutKey: true}}}
}

// App returns the application of a full stream name.
func (p *Policy) App(name string) (App, error) {
	appName, _, _ := strings.Cut(name, "/")
	for _, a := range p.Apps {
		if a.Name == appName {
			return a, nil
		}
	}
	return App{}, fmt.Errorf("%w %q", ErrUnknownApp, appName)
}

// AuthorizePublish decides whether remote may publish the stream name
// ("live/cam1") with key (empty when the publisher gave none). It returns
// the stream's application, or an error wrapping ErrMissingKey,
// ErrWrongKey, ErrExpiredKey, ErrUnknownApp or stream.ErrInvalidName.
func (p *Policy) AuthorizePublish(name, key string, remote netip.Addr) (App, error) {
	if err := stream.ValidateName(name); err != nil {
		return App{}, err
	}
	if !strings.Contains(name, "/") {
		return App{}, fmt.Errorf("%w: %q has an application but no stream name", stream.ErrInvalidName, name)
	}
	app, err := p.App(name)
	if err != nil {
		return App{}, err
	}
	if key == "" {
		if app.AllowLoopbackWithoutKey && remote.Unmap().IsLoopback() {
			return app, nil
		}
		return App{}, ErrMissingKey
	}

	// Check every static key, without stopping early, so the time taken
	// does not tell which key came close.
	match := 0
	for _, k := range app.Keys {
		match |= subtle.ConstantTimeCompare([]byte(k), []byte(key))
	}
	if match == 1 {
		return app, nil
	}

	if app.SigningSecret != "" {
		if expiry, mac, ok := parseSignedKey(key); ok {
			want := sign(app.SigningSecret, name, expiry)
			if hmac.Equal(mac, want) {
				if !time.Unix(expiry, 0).After(p.now()) {
					return App{}, fmt.Errorf("%w: expired at %s", ErrExpiredKey,
						time.Unix(expiry, 0).UTC().Format(time.RFC3339))
				}
				return app, nil
			}
		}
	}
	return App{}, ErrWrongKey
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// SignKey returns a key that authorises publishing the full stream name
// ("live/cam1") until expiry, for an application whose SigningSecret is secret.
func SignKey(secret, name string, expiry time.Time) string {
	e := expiry.Unix()
	return strconv.FormatInt(e, 10) + "-" + hex.EncodeToString(sign(secret, name, e))
}

func sign(secret, name string, expiry int64) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(name + ":" + strconv.FormatInt(expiry, 10)))
	return m.Sum(nil)
}

// maxExpiryDigits keeps the expiry within int64 and refuses absurd input early.
const maxExpiryDigits = 18

// parseSignedKey splits "<unix-expiry>-<64 hex digits>". The expiry is
// decimal digits only (no sign, no spaces).
func parseSignedKey(key string) (expiry int64, mac []byte, ok bool) {
	ts, sig, found := strings.Cut(key, "-")
	if !found || len(ts) == 0 || len(ts) > maxExpiryDigits || len(sig) != 2*sha256.Size {
		return 0, nil, false
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return 0, nil, false
		}
	}
	e, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, nil, false
	}
	mac, err = hex.DecodeString(sig)
	if err != nil {
		return 0, nil, false
	}
	return e, mac, true
}
