package rtmp

import (
	"net/url"
	"strings"
	"testing"

	"github.com/mps-dev/mps/stream"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, name, query string
	}{
		{"rtmp://h/live/cam1", "live/cam1", ""},
		{"rtmp://h/live/cam1?key=S", "live/cam1", "key=S"},
		{"rtmp://h/live?key=S/cam1", "live/cam1", "key=S"},
		{"rtmp://h/live?key=S/cam1?ladder=hd", "live/cam1", "key=S&ladder=hd"},
		{"rtmp://h/live/cam1?key=a/b+c", "live/cam1", "key=a%2Fb%2Bc"},
		{"rtmp://h/live/cam1?key=a%2Bb", "live/cam1", "key=a%2Bb"},
		{"rtmp://h/live/cam1?key=100%", "live/cam1", "key=100%25"},
		{"rtmp://h/live/a/b?record=1&ladder=x", "live/a/b", "ladder=x&record=1"},
		{"rtmp://h/live/%2e%2e", "live/..", ""},
	} {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		name, q := parseTarget(u)
		if name != tc.name || q.Encode() != tc.query {
			t.Errorf("parseTarget(%s) = %q, %q; want %q, %q", tc.in, name, q.Encode(), tc.name, tc.query)
		}
	}
}

// FuzzParseTarget feeds parseTarget whatever url.Parse accepts: it must not
// panic, and no name that passes stream.ValidateName may climb a folder.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"rtmp://h/live/cam1?key=S", "rtmp://h/live?key=S/cam1?x=y", "rtmp://h/live/%2e%2e",
		"rtmp://h/live/a%2f..%2fb", "rtmp://h//live//x/", "rtmp://h/live?/", "rtmp://h/?%zz/..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		name, _ := parseTarget(u)
		if stream.ValidateName(name) == nil {
			for part := range strings.SplitSeq(name, "/") {
				if part == ".." || part == "." || part == "" {
					t.Fatalf("name %q from %q passed validation", name, raw)
				}
			}
		}
	})
}
