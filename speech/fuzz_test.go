package speech

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func FuzzReadASRMetadata(f *testing.F) {
	f.Add(metadataSample)
	f.Add("frame:0 pts:0 pts_time:0\nlavfi.asr.text=hello\n")
	f.Add("frame:1 pts:1 pts_time:-1\nlavfi.silence_end=5\nlavfi.silence_start=3\nlavfi.asr.text=a b\nlavfi.astats.Overall.RMS_level=-30\n")
	f.Add("frame:1 pts:1 pts_time:NOPTS\nlavfi.silence_start=nan\nlavfi.astats.Overall.RMS_level=nan\nlavfi.asr.text=\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := readASRMetadata(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, dur := range []time.Duration{0, 10 * time.Second} {
			for _, seg := range placeUtterances(m, dur) {
				if seg.Start < 0 || seg.End < seg.Start || seg.Text == "" {
					t.Fatalf("bad segment %+v from %q", seg, s)
				}
				if dur > 0 && seg.End > dur {
					t.Fatalf("segment %+v past the end %v", seg, dur)
				}
			}
		}
	})
}

func FuzzParseTranscription(f *testing.F) {
	f.Add([]byte(cannedVerboseJSON))
	f.Add([]byte(`{"text":"hello"}`))
	f.Add([]byte(`{"text":"a","segments":[{"start":-1,"end":2,"text":"x"},{"start":3,"end":1,"text":" y ","words":[{"start":3,"end":4,"word":"y"}]}],"words":[{"start":0,"end":1,"word":"z"}]}`))
	f.Add([]byte(`{"duration":1e308,"segments":[{"start":1e20,"end":"x"}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := parseTranscription(b, 5*time.Second)
		if err != nil {
			return
		}
		for i, s := range tr.Segments {
			if s.Start < 0 || s.End < s.Start || strings.TrimSpace(s.Text) == "" {
				t.Fatalf("bad segment %+v", s)
			}
			if i > 0 && s.Start < tr.Segments[i-1].Start {
				t.Fatalf("segments out of order: %+v", tr.Segments)
			}
		}
		if _, err := json.Marshal(tr); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzReadProgress(f *testing.F) {
	f.Add("out_time_us=1500000\nout_time=00:00:01.500000\nprogress=continue\n")
	f.Add("out_time=01:02:03.25\nprogress=end\n")
	f.Add("out_time_ms=-1\nout_time=-00:00:01.0\nprogress=end\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = readProgress(strings.NewReader(s), func(d time.Duration) {
			if d < 0 {
				t.Fatalf("negative time %v", d)
			}
		})
	})
}

func FuzzParseWAVHeader(f *testing.F) {
	hdr := []byte("RIFF\x24\x7d\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x7d\x00\x00")
	f.Add(hdr)
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVELIST\x04\x00\x00\x00abcdfmt \x10\x00\x00\x00"))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := parseWAVHeader(b)
		if err != nil {
			return
		}
		if w.DataOffset > int64(len(b)) {
			t.Fatalf("data at %d past the header's %d bytes", w.DataOffset, len(b))
		}
		if d := w.duration(w.DataSize); d < 0 {
			t.Fatalf("negative duration %v", d)
		}
	})
}

func FuzzParseProbe(f *testing.F) {
	f.Add([]byte(`{"streams":[{"codec_type":"video"},{"codec_type":"audio","duration":"3.5"}],"format":{"duration":"3.6"}}`))
	f.Add([]byte(`{"streams":[],"format":{"duration":"N/A"}}`))
	f.Add([]byte(`{"format":{"duration":"-1e400"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseProbe(b)
		if err == nil && info.Duration < 0 {
			t.Fatalf("negative duration %v", info.Duration)
		}
	})
}

func FuzzSegmentJSON(f *testing.F) {
	f.Add([]byte(`{"start":1.226,"end":2.651,"text":"hi","words":[{"start":1.226,"end":1.4,"text":"hi"}]}`))
	f.Add([]byte(`{"start":-1e9,"end":9e9,"text":""}`))
	f.Add([]byte(`{"start":"1","end":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Segment
		if err := json.Unmarshal(b, &s); err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Segment
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("cannot read back %s: %v", out, err)
		}
		if (back.Start-s.Start.Round(time.Millisecond)).Abs() > time.Microsecond || back.Text != s.Text || len(back.Words) != len(s.Words) {
			t.Fatalf("round trip %+v -> %s -> %+v", s, out, back)
		}
		again, _ := json.Marshal(back)
		if !bytes.Equal(out, again) {
			t.Fatalf("unstable JSON %s then %s", out, again)
		}
	})
}
