package stream

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	good := []string{"live/cam1", "live/a.b-c_d", "app/x/720p"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	bad := []string{"", "live/..", "live/../etc", "/live/x", "live/x/", "live//x", "live/x y", "live/%2e%2e", "live/x\x00", "live/é", strings.Repeat("a", MaxNameLength+1)}
	for _, n := range bad {
		if err := ValidateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", n, err)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"live/cam1", "live/../x", "a/./b", "x%2F..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		for part := range strings.SplitSeq(name, "/") {
			if part == ".." || part == "." || part == "" || strings.ContainsAny(part, "\\%?#\x00 ") {
				t.Fatalf("accepted dangerous name %q", name)
			}
		}
	})
}
