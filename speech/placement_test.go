package speech

import (
	"strings"
	"testing"
	"time"
)

const metadataSample = `frame:3    pts:2400    pts_time:0.15
lavfi.silence_start=0
lavfi.astats.Overall.RMS_level=-inf
frame:24   pts:19200   pts_time:1.2
lavfi.silence_end=1.22669
lavfi.silence_duration=1.22669
frame:57   pts:45600   pts_time:2.85
lavfi.silence_start=2.651
frame:62   pts:49600   pts_time:3.1
lavfi.asr.text=the weather is nice today
frame:144  pts:115200  pts_time:7.2
lavfi.silence_end=7.23281
lavfi.silence_duration=4.58181
frame:182  pts:145600  pts_time:9.1
lavfi.silence_start=8.90425
frame:190  pts:152000  pts_time:9.5
lavfi.asr.text=thank you very  much
`

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestReadASRMetadataAndPlace(t *testing.T) {
	m, err := readASRMetadata(strings.NewReader(metadataSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Events) != 7 || len(m.Levels) != 1 || m.Levels[0].DB != -120 {
		t.Fatalf("metadata %+v", m)
	}
	segs := placeUtterances(m, 10*time.Second)
	want := []Segment{
		{Start: ms(1226), End: ms(2651), Text: "the weather is nice today"},
		{Start: ms(7232), End: ms(8904), Text: "thank you very much"},
	}
	if len(segs) != len(want) {
		t.Fatalf("segments %+v", segs)
	}
	for i, w := range want {
		g := segs[i]
		if g.Text != w.Text || (g.Start-w.Start).Abs() > ms(1) || (g.End-w.End).Abs() > ms(1) {
			t.Errorf("segment %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestPlaceWithoutPauses(t *testing.T) {
	// No silence at all; speech is 20 dB over the noise from 5 s to 7 s.
	var m asrMetadata
	for f := 0; f < 200; f++ {
		at := ms(f * 50)
		db := -40.0
		if at >= 5*time.Second && at < 7*time.Second {
			db = -20
		}
		m.Levels = append(m.Levels, frameLevel{At: at, DB: db})
	}
	m.Events = []asrEvent{{Kind: utterance, At: ms(7500), Text: "hello there world"}}
	segs := placeUtterances(m, 10*time.Second)
	if len(segs) != 1 || segs[0].Start != 5*time.Second || segs[0].End != 7*time.Second {
		t.Fatalf("segments %+v, want 5s-7s", segs)
	}

	// Without levels either: estimated from the words, after the previous report.
	m.Levels = nil
	m.Events = []asrEvent{{Kind: utterance, At: ms(1000), Text: ""}, {Kind: utterance, At: ms(7500), Text: "hello there world"}}
	segs = placeUtterances(m, 10*time.Second)
	if len(segs) != 1 || segs[0].Start != ms(7500)-asrPostSpeech-3*wordTime || segs[0].End != ms(7500)-asrPostSpeech {
		t.Fatalf("segments %+v", segs)
	}
}

func TestReadProgress(t *testing.T) {
	in := "frame=1\nout_time_us=1500000\nout_time_ms=1500000\nout_time=00:00:01.500000\nprogress=continue\n" +
		"out_time_us=N/A\nout_time=01:02:03.250000\nprogress=continue\nout_time_us=-5\nprogress=end\n"
	var got []time.Duration
	if err := readProgress(strings.NewReader(in), func(d time.Duration) { got = append(got, d) }); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{ms(1500), time.Hour + 2*time.Minute + ms(3250)}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("times %v, want %v", got, want)
	}
}

func TestEscapeFilterValue(t *testing.T) {
	if got, want := escapeFilterValue(`/a:b,c'd[e]\f;g`), `/a\\:b\,c\\\'d\[e\]\\\\f\;g`; got != want {
		t.Errorf("escape = %s, want %s", got, want)
	}
}
