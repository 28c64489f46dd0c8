package srt

import (
	"errors"
	"strings"
	"testing"
)

func TestParseStreamID(t *testing.T) {
	good := []struct {
		in   string
		want StreamID
	}{
		{"#!::r=live/cam1,m=publish,s=KEY", StreamID{Mode: ModePublish, Name: "live/cam1", Key: "KEY"}},
		{"#!::u=bob,r=live/cam1,m=publish,s=k,t=stream,x=y", StreamID{Mode: ModePublish, Name: "live/cam1", Key: "k", User: "bob"}},
		{"#!::m=publish,r=live/cam1", StreamID{Mode: ModePublish, Name: "live/cam1"}},
		{"#!::r=live/cam1,m=request", StreamID{Mode: ModeRead, Name: "live/cam1"}},
		{"#!::r=live/cam1", StreamID{Mode: ModeRead, Name: "live/cam1"}},
		{"#!::r=live/cam1,s=ignored", StreamID{Mode: ModeRead, Name: "live/cam1"}},
		{"publish:live/cam1:KEY", StreamID{Mode: ModePublish, Name: "live/cam1", Key: "KEY"}},
		{"publish:live/cam1", StreamID{Mode: ModePublish, Name: "live/cam1"}},
		{"publish:live/cam1:a:b", StreamID{Mode: ModePublish, Name: "live/cam1", Key: "a:b"}},
		{"read:live/cam1", StreamID{Mode: ModeRead, Name: "live/cam1"}},
	}
	for _, c := range good {
		got, err := ParseStreamID(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseStreamID(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := []string{
		"", "live/cam1", "cam1", "publish:cam1", "publish:", "play:live/cam1", "read:live/cam1:KEY",
		"#!::", "#!::m=publish", "#!::r=live/cam1,m=play", "#!::r=live/cam1,r=live/cam2",
		"#!::r=live/cam1,bogus", "#!::r=../etc,m=publish", "publish:live/../x", "#!::r=,m=publish",
		"publish:live/" + strings.Repeat("a", 600),
	}
	for _, in := range bad {
		if got, err := ParseStreamID(in); !errors.Is(err, ErrBadStreamID) {
			t.Errorf("ParseStreamID(%q) = %+v, %v; want ErrBadStreamID", in, got, err)
		}
	}
}

func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{
		"#!::r=live/cam1,m=publish,s=KEY", "#!::u=x,r=live/a,m=request", "publish:live/cam1:KEY",
		"read:live/cam1", "", "#!::", "#!::r=live/a,r=live/b", "publish::", "read:live/a:b", "#!::=,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseStreamID(s)
		if err != nil {
			if !errors.Is(err, ErrBadStreamID) {
				t.Fatalf("error not ErrBadStreamID: %v", err)
			}
			return
		}
		if id.Name == "" || !strings.Contains(id.Name, "/") || len(s) > maxStreamID {
			t.Fatalf("accepted %q as %+v", s, id)
		}
		if id.Mode == ModeRead && id.Key != "" {
			t.Fatalf("reader with key: %+v", id)
		}
	})
}
