package captions

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/speech"
)

var sampleCues = []Cue{
	{Start: sec(1), End: sec(3.5), Text: "Hello world."},
	{Start: sec(3.5), End: sec(6), Text: "Two lines\nof text"},
	{Start: 3723456 * time.Millisecond, End: 3725 * time.Second, Text: "Fish & chips <yum> -->"},
	{Start: 3725 * time.Second, End: 3726 * time.Second, Text: ""},
}

func sameCues(t *testing.T, got, want []Cue) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d cues %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cue %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestWriteVTT(t *testing.T) {
	var b bytes.Buffer
	if err := WriteVTT(&b, sampleCues[:3]); err != nil {
		t.Fatal(err)
	}
	want := "WEBVTT\n\n00:00:01.000 --> 00:00:03.500\nHello world.\n\n" +
		"00:00:03.500 --> 00:00:06.000\nTwo lines\nof text\n\n" +
		"01:02:03.456 --> 01:02:05.000\nFish &amp; chips &lt;yum&gt; --&gt;\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteSRT(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSRT(&b, sampleCues[:2]); err != nil {
		t.Fatal(err)
	}
	want := "1\n00:00:01,000 --> 00:00:03,500\nHello world.\n\n2\n00:00:03,500 --> 00:00:06,000\nTwo lines\nof text\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteRejectsBadCues(t *testing.T) {
	for _, cues := range [][]Cue{
		{{Start: -time.Second, End: time.Second}},
		{{Start: 2 * time.Second, End: time.Second}},
	} {
		if err := WriteVTT(&bytes.Buffer{}, cues); err == nil {
			t.Errorf("WriteVTT(%+v): no error", cues)
		}
		if err := WriteSRT(&bytes.Buffer{}, cues); err == nil {
			t.Errorf("WriteSRT(%+v): no error", cues)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	var v, s bytes.Buffer
	if err := WriteVTT(&v, sampleCues); err != nil {
		t.Fatal(err)
	}
	got, err := ParseVTT(&v)
	if err != nil {
		t.Fatalf("ParseVTT: %v\n%s", err, v.String())
	}
	sameCues(t, got, sampleCues)
	if err := WriteSRT(&s, sampleCues); err != nil {
		t.Fatal(err)
	}
	got, err = ParseSRT(&s)
	if err != nil {
		t.Fatalf("ParseSRT: %v", err)
	}
	// SRT has no escaping: "<yum>" reads as a tag.
	want := append([]Cue(nil), sampleCues...)
	want[2].Text = "Fish & chips  -->"
	sameCues(t, got, want)
}

func TestRoundTripFromTranscript(t *testing.T) {
	tr := &speech.Transcript{Segments: []speech.Segment{
		{Start: sec(0.1234), End: sec(4.5678), Text: "A first sentence, with some words in it, long enough to break."},
		{Start: sec(5), End: sec(19), Text: strings.Repeat("more words here ", 12)},
	}}
	cues := FromTranscript(tr, Options{})
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer, []Cue) error
		parse func(*bytes.Buffer) ([]Cue, error)
	}{
		{"vtt", func(b *bytes.Buffer, c []Cue) error { return WriteVTT(b, c) }, func(b *bytes.Buffer) ([]Cue, error) { return ParseVTT(b) }},
		{"srt", func(b *bytes.Buffer, c []Cue) error { return WriteSRT(b, c) }, func(b *bytes.Buffer) ([]Cue, error) { return ParseSRT(b) }},
	} {
		t.Run(f.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := f.write(&b, cues); err != nil {
				t.Fatal(err)
			}
			got, err := f.parse(&b)
			if err != nil {
				t.Fatal(err)
			}
			sameCues(t, got, cues)
		})
	}
}

func TestParseVTTTolerant(t *testing.T) {
	in := "\uFEFFWEBVTT - a title\r\nKind: captions\r\nLanguage: en\r\n\r\n" +
		"STYLE\r\n::cue { color: yellow }\r\n\r\n" +
		"REGION\r\nid:fred width:40%\r\n\r\n" +
		"NOTE this is a comment\r\nover two lines\r\n\r\n" +
		"intro\r\n00:01.000 --> 00:02.500 align:start position:10%\r\n<v Bob>Hello</v> <i>there</i>&nbsp;&amp; you\r\n\r\n" +
		"NOTE\r\nanother\r\n\r\n" +
		"2\r\n00:00:02.500-->00:00:04.000\r\n  second <00:00:03.000>cue  \r\n" +
		"00:00:05.000 --> 00:00:06.000\r\nno blank line before\r\n\r\n\r\n"
	got, err := ParseVTT(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	sameCues(t, got, []Cue{
		{Start: sec(1), End: sec(2.5), Text: "Hello there\u00a0& you"},
		{Start: sec(2.5), End: sec(4), Text: "second cue"},
		{Start: sec(5), End: sec(6), Text: "no blank line before"},
	})
	// A header alone is an empty caption file.
	got, err = ParseVTT(strings.NewReader("WEBVTT\n"))
	if err != nil || len(got) != 0 {
		t.Errorf("header only: %v %v", got, err)
	}
}

func TestParseSRTTolerant(t *testing.T) {
	in := "\uFEFF1\r\n00:00:01,000 --> 00:00:02,500 X1:40 X2:600 Y1:20 Y2:50\r\n<i>Hello</i>\r\n<font color=\"red\">there</font>\r\n\r\n\r\n" +
		"7\n00:00:02.5 --> 0:00:04,00\nsecond\n\n" +
		"00:00:05,000 --> 00:00:06,000\nno index\n"
	got, err := ParseSRT(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	sameCues(t, got, []Cue{
		{Start: sec(1), End: sec(2.5), Text: "Hello\nthere"},
		{Start: sec(2.5), End: sec(4), Text: "second"},
		{Start: sec(5), End: sec(6), Text: "no index"},
	})
	if got, err := ParseSRT(strings.NewReader("")); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		srt      bool
		line     int
		msg      string
	}{
		{"vtt empty", "", false, 1, "no WEBVTT header"},
		{"vtt no header", "00:00:01.000 --> 00:00:02.000\nhi\n", false, 1, "no WEBVTT header"},
		{"vtt bad start", "WEBVTT\n\n00:00:1.000 --> 00:00:02.000\nhi\n", false, 3, "start time"},
		{"vtt bad end", "WEBVTT\n\n00:00:01.000 --> 00:00:02,000\nhi\n", false, 3, "end time"},
		{"vtt 60 seconds", "WEBVTT\n\n00:00:60.000 --> 00:01:02.000\nhi\n", false, 3, "up to 59"},
		{"vtt end before start", "WEBVTT\n\n00:00:03.000 --> 00:00:02.000\nhi\n", false, 3, "before it starts"},
		{"vtt out of order", "WEBVTT\n\n00:00:03.000 --> 00:00:04.000\na\n\n00:00:01.000 --> 00:00:02.000\nb\n", false, 6, "before the previous cue"},
		{"vtt id without timing", "WEBVTT\n\nid\nhello\n", false, 4, "expected a cue timing line"},
		{"vtt lone text", "WEBVTT\n\nhello\n", false, 3, "expected a cue timing line"},
		{"srt bad index", "1\n00:00:01,000 --> 00:00:02,000\nhi\n\nabc\n00:00:03,000 --> 00:00:04,000\nho\n", true, 5, "cue number"},
		{"srt no timing", "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\nho\n", true, 6, "timing line"},
		{"srt index only", "1\n", true, 1, "no timing line"},
		{"srt bad time", "1\n00:00:01:000 --> 00:00:02,000\nhi\n", true, 2, "start time"},
		{"srt end before start", "1\n00:00:05,000 --> 00:00:02,000\nhi\n", true, 2, "before it starts"},
		{"srt out of order", "1\n00:00:05,000 --> 00:00:06,000\na\n\n2\n00:00:01,000 --> 00:00:02,000\nb\n", true, 6, "before the previous cue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.srt {
				_, err = ParseSRT(strings.NewReader(tc.in))
			} else {
				_, err = ParseVTT(strings.NewReader(tc.in))
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v is not ErrMalformed", err)
			}
			if pe.Line != tc.line || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q (line %d), want line %d and %q", err, pe.Line, tc.line, tc.msg)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		srt  bool
		want time.Duration
		ok   bool
	}{
		{"00:01.000", false, sec(1), true},
		{"01:00:01.250", false, sec(3601.25), true},
		{"100:00:00.000", false, 100 * time.Hour, true},
		{"1:00:00.000", false, 0, false},
		{"00:01.00", false, 0, false},
		{"00:01,000", false, 0, false},
		{"00:00:01,5", true, sec(1.5), true},
		{"0:0:1,500", true, sec(1.5), true},
		{"00:01,500", true, 0, false},
		{"00:00:01", true, 0, false},
		{"-1:00:01,000", true, 0, false},
		{"99999999999:00:00.000", false, 0, false},
	} {
		got, err := parseTime(tc.in, tc.srt)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseTime(%q, srt=%v) = %v, %v; want %v ok=%v", tc.in, tc.srt, got, err, tc.want, tc.ok)
		}
	}
}

// roundTrip checks that cues parsed from a file write and read back the same.
// SRT does not escape '<', so cues parsed from VTT (exactSRT false) are
// only checked to be stable from their first SRT writing on.
func roundTrip(t *testing.T, cues []Cue, exactSRT bool) {
	for _, f := range []struct {
		name  string
		write func(*bytes.Buffer, []Cue) error
		parse func(*bytes.Buffer) ([]Cue, error)
	}{
		{"vtt", func(b *bytes.Buffer, c []Cue) error { return WriteVTT(b, c) }, func(b *bytes.Buffer) ([]Cue, error) { return ParseVTT(b) }},
		{"srt", func(b *bytes.Buffer, c []Cue) error { return WriteSRT(b, c) }, func(b *bytes.Buffer) ([]Cue, error) { return ParseSRT(b) }},
	} {
		var b bytes.Buffer
		if err := f.write(&b, cues); err != nil {
			t.Fatalf("write %s of parsed cues %+v: %v", f.name, cues, err)
		}
		text := b.String()
		again, err := f.parse(&b)
		if err != nil {
			t.Fatalf("re-parse %s of %q: %v", f.name, text, err)
		}
		if f.name == "srt" && !exactSRT {
			// SRT does not escape '<': compare the SRT of both.
			var b2 bytes.Buffer
			if err := WriteSRT(&b2, again); err != nil {
				t.Fatal(err)
			}
			third, err := ParseSRT(&b2)
			if err != nil {
				t.Fatal(err)
			}
			if len(third) != len(again) {
				t.Fatalf("srt: %d cues then %d", len(again), len(third))
			}
			for i := range again {
				if third[i] != again[i] {
					t.Fatalf("srt cue %d: %+v then %+v", i, again[i], third[i])
				}
			}
			continue
		}
		if len(again) != len(cues) {
			t.Fatalf("%s: %d cues, then %d after a round trip:\n%s", f.name, len(cues), len(again), text)
		}
		for i := range cues {
			if again[i] != cues[i] {
				t.Fatalf("%s cue %d: %+v, then %+v after a round trip:\n%s", f.name, i, cues[i], again[i], text)
			}
		}
	}
}

func FuzzParseVTT(f *testing.F) {
	f.Add("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello\n")
	f.Add("\uFEFFWEBVTT title\r\nKind: captions\r\n\r\nNOTE hi\r\n\r\nSTYLE\r\n::cue{}\r\n\r\nid\r\n00:01.000 --> 00:02.000 align:start\r\n<v A>a &amp; b</v>\r\n")
	f.Add("WEBVTT\n00:00:01.000 --> 00:00:02.000\na\n00:00:02.000 --> 00:00:03.000\nb <c\n")
	f.Add("WEBVTT\n\n00:00:01.000 --> 00:00:00.000\nx\n")
	f.Add("WEBVTT\n\n99999:59:59.999 --> 99999:59:59.999\n&lt;&gt;&nbsp;&lrm;&rlm;&foo;\n")
	f.Fuzz(func(t *testing.T, in string) {
		cues, err := ParseVTT(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) && pe.Line < 1 {
				t.Fatalf("error with line %d: %v", pe.Line, err)
			}
			return
		}
		roundTrip(t, cues, false)
	})
}

func FuzzParseSRT(f *testing.F) {
	f.Add("1\n00:00:01,000 --> 00:00:02,000\nhello\n")
	f.Add("\uFEFF1\r\n00:00:01,000 --> 00:00:02,500 X1:1\r\n<i>a</i>\r\n\r\n2\r\n0:0:3.5 --> 0:0:4,25\r\n<<b>b>\r\n")
	f.Add("00:00:01,000 --> 00:00:02,000\n1\n-->\n")
	f.Add("1\n00:00:01,000 --> 00:00:00,000\nx\n")
	f.Add("1\n")
	f.Fuzz(func(t *testing.T, in string) {
		cues, err := ParseSRT(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) && pe.Line < 1 {
				t.Fatalf("error with line %d: %v", pe.Line, err)
			}
			return
		}
		roundTrip(t, cues, true)
	})
}
