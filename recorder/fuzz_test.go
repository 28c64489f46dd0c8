package recorder

import (
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testmedia"
)

// smallArchive is a real archive of one second of media, for fuzz seeds.
func smallArchive(t testing.TB) []byte {
	// Small pictures: the fuzzer crawls on inputs of 100 KB.
	m := testmedia.MakeSizedMedia(t, 1, "64x48", "-g", "30")
	tracks := []*stream.Track{m.Video, m.Audio}
	for i, tr := range tracks {
		tr.Index = i
	}
	init, err := encodeInit(tracks)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte{}, init...)
	tws := []*trackWriter{newTrackWriter(m.Video, 0), newTrackWriter(m.Audio, 0)}
	var enc fragmentEncoder
	for i, f := range m.Frames {
		at := time.Duration(i) * time.Second / 30
		tws[0].push(&stream.AccessUnit{Track: m.Video, DTS: at, PTS: at, Key: m.Keys[i], Payload: f})
		if i%10 == 9 {
			frag, err := enc.encode(tws)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, frag...)
		}
	}
	for i, au := range m.AUs {
		at := time.Duration(i) * 1024 * time.Second / 48000
		tws[1].push(&stream.AccessUnit{Track: m.Audio, DTS: at, PTS: at, Key: true, Payload: au})
	}
	for _, tw := range tws {
		tw.flushPending(0, false)
	}
	frag, err := enc.encode(tws)
	if err != nil {
		t.Fatal(err)
	}
	return append(out, frag...)
}

func TestReadIndexOfCutArchive(t *testing.T) {
	b := smallArchive(t)
	full, err := readIndex(bytesReaderAt(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if full.validSize != int64(len(b)) || full.fragments != 4 || len(full.samples[0]) != 30 {
		t.Fatalf("full archive: valid %d of %d, %d fragments, %d video samples", full.validSize, len(b), full.fragments, len(full.samples[0]))
	}
	cut, err := readIndex(bytesReaderAt(b), int64(len(b)-100))
	if err != nil {
		t.Fatal(err)
	}
	if cut.fragments != 3 || cut.validSize >= int64(len(b)-100) || len(cut.samples[0]) != 29 {
		t.Fatalf("cut archive: %d fragments, valid %d, %d video samples", cut.fragments, cut.validSize, len(cut.samples[0]))
	}
}

func FuzzReadIndex(f *testing.F) {
	b := smallArchive(f)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(b[:100])
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f'})
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := readIndex(bytesReaderAt(data), int64(len(data)))
		if err != nil {
			return
		}
		if ix.validSize > int64(len(data)) {
			t.Fatalf("valid size %d beyond %d bytes", ix.validSize, len(data))
		}
		for _, ss := range ix.samples {
			for _, s := range ss {
				if s.Offset < 0 || s.Offset+int64(s.Size) > ix.validSize {
					t.Fatalf("sample at %d+%d outside the valid %d bytes", s.Offset, s.Size, ix.validSize)
				}
			}
		}
	})
}

func TestPathTemplate(t *testing.T) {
	for _, tc := range []struct{ tpl, err string }{
		{DefaultPathTemplate, ""},
		{"{app}/{stream}-{session}/{seq}", ""},
		{"{name}/{foo}-{seq}", "unknown field {foo}"},
		{"/abs/{seq}", "must be relative"},
		{"{name}/../{seq}", `a ".." path element`},
		{"{name}/{seq", "without its '}'"},
		{"{name}/seq}", "without its '{'"},
		{"{na{me}/{seq}", "without its '}'"},
		{"{name}/{date}", "needs {seq} or {time}"},
	} {
		err := ParsePathTemplate(tc.tpl)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: got %v, want %q", tc.tpl, err, tc.err)
		}
	}
	p, err := expandPath(DefaultPathTemplate, pathVars{Name: "live/cam1", Rendition: "720p", Seq: 3,
		Time: time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)})
	if err != nil || p != "live/cam1/2026-11-26/010203-720p-0003" {
		t.Fatalf("expand: %q %v", p, err)
	}
}

func FuzzPathTemplate(f *testing.F) {
	for _, s := range []string{DefaultPathTemplate, "{app}/{stream}/{seq}", "{name}/../{seq}", "{{seq}}", "a/{seq}/."} {
		f.Add(s, "live/cam1")
	}
	f.Fuzz(func(t *testing.T, tpl, name string) {
		if ParsePathTemplate(tpl) != nil || stream.ValidateName(name) != nil {
			return
		}
		p, err := expandPath(tpl, pathVars{Name: name, Rendition: "source", Seq: 1, Session: "abc", Time: time.Now()})
		if err != nil {
			return
		}
		if strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") {
			t.Fatalf("%q with %q escapes: %q", tpl, name, p)
		}
	})
}
