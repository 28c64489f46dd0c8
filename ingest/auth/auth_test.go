package auth

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
)

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.MustParseAddr("::1")
	mapped4   = netip.MustParseAddr("::ffff:127.0.0.1")
	remote    = netip.MustParseAddr("203.0.113.7")
)

func testPolicy(now time.Time) *Policy {
	return &Policy{
		Apps: []App{
			{Name: "live", AllowLoopbackWithoutKey: true},
			{Name: "studio", Keys: []string{"s3cret", "other-secret"}},
			{Name: "signed", SigningSecret: "sign-me"},
			{Name: "both", Keys: []string{"static"}, SigningSecret: "sign-me", Takeover: true},
		},
		Now: func() time.Time { return now },
	}
}

func TestAuthorizePublish(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := testPolicy(now)
	future := now.Add(time.Hour)
	past := now.Add(-time.Second)

	tests := []struct {
		name   string
		stream string
		key    string
		remote netip.Addr
		want   error // nil: accepted
	}{
		{"loopback without key", "live/cam1", "", loopback4, nil},
		{"ipv6 loopback without key", "live/cam1", "", loopback6, nil},
		{"mapped loopback without key", "live/cam1", "", mapped4, nil},
		{"remote without key", "live/cam1", "", remote, ErrMissingKey},
		{"no address without key", "live/cam1", "", netip.Addr{}, ErrMissingKey},
		{"loopback with a key the app does not have", "live/cam1", "guess", loopback4, ErrWrongKey},
		{"static key", "studio/cam1", "s3cret", remote, nil},
		{"second static key", "studio/cam1", "other-secret", remote, nil},
		{"static key is exact", "studio/cam1", "s3cret ", remote, ErrWrongKey},
		{"static key prefix", "studio/cam1", "s3cre", remote, ErrWrongKey},
		{"static app demands a key on loopback", "studio/cam1", "", loopback4, ErrMissingKey},
		{"signed key", "signed/cam1", SignKey("sign-me", "signed/cam1", future), remote, nil},
		{"signed key nested name", "signed/a/b", SignKey("sign-me", "signed/a/b", future), remote, nil},
		{"signed key for another name", "signed/cam2", SignKey("sign-me", "signed/cam1", future), remote, ErrWrongKey},
		{"signed key with another secret", "signed/cam1", SignKey("nope", "signed/cam1", future), remote, ErrWrongKey},
		{"expired signed key", "signed/cam1", SignKey("sign-me", "signed/cam1", past), remote, ErrExpiredKey},
		{"signed key expiring now", "signed/cam1", SignKey("sign-me", "signed/cam1", now), remote, ErrExpiredKey},
		{"signed key with moved expiry", "signed/cam1", movedExpiry(SignKey("sign-me", "signed/cam1", past)), remote, ErrWrongKey},
		{"garbage key", "signed/cam1", "not-a-key", remote, ErrWrongKey},
		{"static and signed: static", "both/x", "static", remote, nil},
		{"static and signed: signed", "both/x", SignKey("sign-me", "both/x", future), remote, nil},
		{"unknown application", "other/cam1", "s3cret", remote, ErrUnknownApp},
		{"application only", "live", "", loopback4, stream.ErrInvalidName},
		{"dot dot", "live/../etc", "", loopback4, stream.ErrInvalidName},
		{"dot dot at end", "live/..", "", loopback4, stream.ErrInvalidName},
		{"leading slash", "/live/cam1", "", loopback4, stream.ErrInvalidName},
		{"trailing slash", "live/cam1/", "", loopback4, stream.ErrInvalidName},
		{"double slash", "live//cam1", "", loopback4, stream.ErrInvalidName},
		{"percent escape", "live/%2e%2e", "", loopback4, stream.ErrInvalidName},
		{"backslash", `live/..\cam`, "", loopback4, stream.ErrInvalidName},
		{"query chars", "live/cam1?key=x", "", loopback4, stream.ErrInvalidName},
		{"empty", "", "", loopback4, stream.ErrInvalidName},
		{"too long", "live/" + strings.Repeat("a", stream.MaxNameLength), "", loopback4, stream.ErrInvalidName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app, err := p.AuthorizePublish(tc.stream, tc.key, tc.remote)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				wantApp, _, _ := strings.Cut(tc.stream, "/")
				if app.Name != wantApp {
					t.Fatalf("app = %q, want %q", app.Name, wantApp)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if app.Name != "" {
				t.Fatalf("refusal returned app %q", app.Name)
			}
		})
	}
}

// movedExpiry keeps a signature but claims a later expiry.
func movedExpiry(key string) string {
	ts, sig, _ := strings.Cut(key, "-")
	e, _ := strconv.ParseInt(ts, 10, 64)
	return strconv.FormatInt(e+7200, 10) + "-" + sig
}

func TestAuthorizePublishUsesClock(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	p := testPolicy(now)
	p.Now = func() time.Time { return now }
	key := SignKey("sign-me", "signed/cam1", now.Add(time.Minute))
	if _, err := p.AuthorizePublish("signed/cam1", key, remote); err != nil {
		t.Fatalf("fresh key refused: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := p.AuthorizePublish("signed/cam1", key, remote); !errors.Is(err, ErrExpiredKey) {
		t.Fatalf("err = %v, want ErrExpiredKey", err)
	}
}

func TestReturnsAppSettings(t *testing.T) {
	p := testPolicy(time.Now())
	app, err := p.AuthorizePublish("both/x", "static", remote)
	if err != nil {
		t.Fatal(err)
	}
	if !app.Takeover {
		t.Fatal("Takeover not returned")
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if _, err := p.AuthorizePublish("live/cam1", "", loopback4); err != nil {
		t.Fatalf("loopback refused: %v", err)
	}
	if _, err := p.AuthorizePublish("live/cam1", "", remote); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("remote without key: err = %v, want ErrMissingKey", err)
	}
	if _, err := p.AuthorizePublish("live/cam1", "anything", remote); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("remote with key: err = %v, want ErrWrongKey", err)
	}
}

func TestSignKeyFormat(t *testing.T) {
	exp := time.Unix(1_800_000_000, 0)
	// Computed independently:
	// printf 'live/cam1:1800000000' | openssl dgst -sha256 -hmac secret
	const want = "1800000000-b4776c69675ba98e0d0f8bf6b7253ea951e574a42d684fcac8b754ced209d893"
	if got := SignKey("secret", "live/cam1", exp); got != want {
		t.Fatalf("SignKey = %q, want %q", got, want)
	}
}

func TestParseSignedKey(t *testing.T) {
	good := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"1-" + good, true},
		{"1700000000-" + strings.ToUpper(good), true},
		{"-" + good, false},
		{"+1-" + good, false},
		{"-1-" + good, false},
		{" 1-" + good, false},
		{"1x-" + good, false},
		{"1-" + good[:62], false},
		{"1-" + good + "ab", false},
		{"1-" + good[:62] + "zz", false},
		{"1" + good, false},
		{"9999999999999999999-" + good, false},
		{"", false},
	} {
		if _, _, ok := parseSignedKey(tc.key); ok != tc.ok {
			t.Errorf("parseSignedKey(%q) ok = %v, want %v", tc.key, ok, tc.ok)
		}
	}
}

func TestParams(t *testing.T) {
	q := url.Values{"key": {"s"}, "ladder": {"hd"}, "record": {"1"}, "other": {"x"}}
	got := App{}.Params(q)
	if want := (url.Values{"other": {"x"}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("Params = %v, want %v", got, want)
	}
	got = App{AllowLadderParam: true, AllowRecordParam: true}.Params(q)
	if want := (url.Values{"ladder": {"hd"}, "record": {"1"}, "other": {"x"}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("Params = %v, want %v", got, want)
	}
	if q.Get("key") != "s" {
		t.Fatal("Params modified its input")
	}
}

// FuzzParseSignedKey checks that parsing never panics, that whatever parses
// is exactly "<digits>-<64 hex digits>", and that AuthorizePublish accepts a
// key only when its MAC is the one SignKey makes for that name and expiry.
func FuzzParseSignedKey(f *testing.F) {
	f.Add(SignKey("sign-me", "signed/cam1", time.Unix(1_900_000_000, 0)))
	f.Add(SignKey("sign-me", "signed/cam1", time.Unix(1, 0)))
	f.Add("1-" + strings.Repeat("0", 64))
	f.Add("0-" + strings.Repeat("f", 64))
	f.Add("-")
	f.Add("")
	f.Add("9223372036854775807-" + strings.Repeat("A", 64))
	f.Add("12-34-56")
	f.Add("1700000000-" + strings.Repeat("g", 64))
	p := &Policy{
		Apps: []App{{Name: "signed", SigningSecret: "sign-me"}},
		Now:  func() time.Time { return time.Unix(1_000_000_000, 0) },
	}
	f.Fuzz(func(t *testing.T, key string) {
		e, mac, ok := parseSignedKey(key)
		ts, sig, _ := strings.Cut(key, "-")
		if ok {
			if e < 0 || len(mac) != 32 {
				t.Fatalf("parsed %q into expiry %d and a %d-byte mac", key, e, len(mac))
			}
			if n, err := strconv.ParseInt(ts, 10, 64); err != nil || n != e || strings.ContainsAny(ts, "+- ") {
				t.Fatalf("parsed %q into expiry %d", key, e)
			}
			if hex.EncodeToString(mac) != strings.ToLower(sig) {
				t.Fatalf("parsed %q into mac %x", key, mac)
			}
		}
		if _, err := p.AuthorizePublish("signed/cam1", key, remote); err == nil {
			want := SignKey("sign-me", "signed/cam1", time.Unix(e, 0))
			_, wantSig, _ := strings.Cut(want, "-")
			if !ok || !strings.EqualFold(sig, wantSig) || e <= 1_000_000_000 {
				t.Fatalf("accepted key %q; SignKey makes %q", key, want)
			}
		}
	})
}
