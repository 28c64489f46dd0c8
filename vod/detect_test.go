package vod

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// Real lines of ffmpeg 5.1: metadata print files, metadata printers on
// stderr and the detection filters' own log lines.
var detectSeedLines = []string{
	"frame:250  pts:128000  pts_time:10",
	"lavfi.black_start=10",
	"lavfi.black_end=12.04",
	"lavfi.freezedetect.freeze_start=30",
	"lavfi.freezedetect.freeze_duration=2",
	"lavfi.freezedetect.freeze_end=32",
	"lavfi.silence_start=20.0108",
	"lavfi.silence_end=23.0185",
	"lavfi.silence_duration=3.00775",
	"lavfi.scd.mafd=0.000",
	"lavfi.scd.score=40.490",
	"lavfi.r128.M=-120.691",
	"lavfi.r128.I=-70.000",
	"lavfi.r128.LRA.low=0.000",
	"lavfi.r128.true_peaks_ch0=0.157",
	"lavfi.r128.true_peak=0.157",
	"lavfi.astats.Overall.Peak_level=-16.082714",
	"lavfi.astats.Overall.Peak_count=2.000000",
	"[Parsed_metadata_3 @ 0x55a5917e7880] frame:250  pts:128000  pts_time:10",
	"[Parsed_metadata_3 @ 0x55a5917e7880] lavfi.scd.score=40.490",
	"[Parsed_ametadata_8 @ 0x55a591846e80] frame:100  pts:480000  pts_time:10",
	"[Parsed_ametadata_8 @ 0x55a591846e80] lavfi.r128.M=-21.768",
	"[scdet @ 0x55a5917e6440] lavfi.scd.score: 40.490, lavfi.scd.time: 10",
	"[blackdetect @ 0x55a5917e5f00] black_start:10 black_end:12.04 black_duration:2.04",
	"[freezedetect @ 0x55a5917e6700] lavfi.freezedetect.freeze_start: 10",
	"[freezedetect @ 0x55a5917e6700] lavfi.freezedetect.freeze_duration: 2.04",
	"[freezedetect @ 0x55a5917e6700] lavfi.freezedetect.freeze_end: 12.04",
	"[silencedetect @ 0x55c674a93100] silence_start: 20.0108",
	"[silencedetect @ 0x55c674a93100] silence_end: 23.0185 | silence_duration: 3.00775",
	"[Parsed_ebur128_0 @ 0x5579ffe0e740] t: 0.299979   TARGET:-23 LUFS    M:-120.7 S:-120.7     I: -70.0 LUFS       LRA:   0.0 LU  FTPK: -17.7 dBFS  TPK: -16.1 dBFS",
	"[Parsed_astats_7 @ 0x55a5917e7f00] Peak count: 2.000000",
	"frame= 1000 fps=0.0 q=-0.0 Lsize=N/A time=00:00:40.00 bitrate=N/A speed= 127x",
	"    I:         -21.8 LUFS",
}

func TestDetectParserLines(t *testing.T) {
	var p DetectParser
	check := func(line string, want ...Detection) {
		t.Helper()
		got := p.Line(line)
		if len(want) == 0 && len(got) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", line, got, want)
		}
	}
	// metadata print file: values carry the frame's time
	check("lavfi.black_start=10", Detection{Key: KeyBlackStart, Value: 10, Time: -1})
	check("frame:250  pts:128000  pts_time:10")
	check("lavfi.black_start=10", Detection{Key: KeyBlackStart, Value: 10, Time: 10})
	check("lavfi.scd.score=40.490\r\n", Detection{Key: KeySceneScore, Value: 40.49, Time: 10})
	check("lavfi.r128.true_peak=nan")
	check("lavfi.r128.M=-inf")
	// stderr: each printer keeps its own frame time
	check("[Parsed_metadata_3 @ 0x1] frame:275  pts:140800  pts_time:11")
	check("[Parsed_ametadata_8 @ 0x2] frame:100  pts:480000  pts_time:10")
	check("[Parsed_metadata_3 @ 0x1] lavfi.freezedetect.freeze_start=10",
		Detection{Source: "Parsed_metadata_3", Key: KeyFreezeStart, Value: 10, Time: 11})
	check("[Parsed_ametadata_8 @ 0x2] lavfi.r128.M=-21.768",
		Detection{Source: "Parsed_ametadata_8", Key: KeyMomentary, Value: -21.768, Time: 10})
	// the filters' own log lines
	check("[scdet @ 0x3] lavfi.scd.score: 40.490, lavfi.scd.time: 10",
		Detection{Source: "scdet", Key: KeySceneScore, Value: 40.49, Time: -1},
		Detection{Source: "scdet", Key: KeySceneTime, Value: 10, Time: -1})
	check("[blackdetect @ 0x4] black_start:10 black_end:12.04 black_duration:2.04",
		Detection{Source: "blackdetect", Key: KeyBlackStart, Value: 10, Time: -1},
		Detection{Source: "blackdetect", Key: KeyBlackEnd, Value: 12.04, Time: -1},
		Detection{Source: "blackdetect", Key: KeyBlackDuration, Value: 2.04, Time: -1})
	check("[freezedetect @ 0x5] lavfi.freezedetect.freeze_end: 12.04",
		Detection{Source: "freezedetect", Key: KeyFreezeEnd, Value: 12.04, Time: -1})
	check("[silencedetect @ 0x6] silence_start: 20.0108",
		Detection{Source: "silencedetect", Key: KeySilenceStart, Value: 20.0108, Time: -1})
	check("[silencedetect @ 0x6] silence_end: 23.0185 | silence_duration: 3.00775",
		Detection{Source: "silencedetect", Key: KeySilenceEnd, Value: 23.0185, Time: -1},
		Detection{Source: "silencedetect", Key: KeySilenceDuration, Value: 3.00775, Time: -1})
	got := p.Line("[Parsed_ebur128_0 @ 0x7] t: 0.299979   TARGET:-23 LUFS    M:-120.7 S:-120.7     I: -70.0 LUFS       LRA:   0.0 LU  FTPK: -17.7 dBFS  TPK: -16.1 -12.5 dBFS")
	keys := map[string]float64{}
	for _, d := range got {
		if d.Time != 0.299979 || d.Source != "Parsed_ebur128_0" {
			t.Errorf("ebur128 detection %+v", d)
		}
		keys[d.Key] = d.Value
	}
	if len(keys) != 5 || keys[KeyMomentary] != -120.7 || keys[KeyShortTerm] != -120.7 || keys[KeyIntegrated] != -70 ||
		keys[KeyLRA] != 0 || math.Abs(20*math.Log10(keys[KeyTruePeak])+12.5) > 1e-9 {
		t.Errorf("ebur128 line: %+v", got)
	}
	// other lines
	for _, line := range []string{"", "[", "[x] ", "frame= 1000 fps=0.0 q=-0.0 Lsize=N/A time=00:00:40.00",
		"    I:         -21.8 LUFS", "[Parsed_astats_7 @ 0x5] Peak count: 2.000000", "lavfi.x y=1", "black_start:x"} {
		check(line)
	}
}

func TestDetectReadDetections(t *testing.T) {
	file := "frame:0    pts:0       pts_time:0\nlavfi.scd.mafd=0.000\nlavfi.scd.score=0.000\n" +
		"frame:1    pts:512     pts_time:0.04\nlavfi.scd.mafd=3.1\nlavfi.scd.score=21.5\n"
	var got []Detection
	if err := ReadDetections(strings.NewReader(file), func(d Detection) { got = append(got, d) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3] != (Detection{Key: KeySceneScore, Value: 21.5, Time: 0.04}) {
		t.Errorf("%+v", got)
	}
}

func TestDetectQCDetectorDeduplicatesAndSuppresses(t *testing.T) {
	// A black stretch (which freezedetect also sees) at 10..12, a freeze
	// at 30..32 and silence at 20..23, each reported both by the
	// metadata printer and by the filter's log line.
	lines := `[Parsed_metadata_2 @ 0x1] frame:250  pts:128000  pts_time:10
[Parsed_metadata_2 @ 0x1] lavfi.black_start=10
[freezedetect @ 0x2] lavfi.freezedetect.freeze_start: 10
[Parsed_metadata_2 @ 0x1] frame:275  pts:140800  pts_time:11
[Parsed_metadata_2 @ 0x1] lavfi.freezedetect.freeze_start=10
[blackdetect @ 0x3] black_start:10 black_end:12.04 black_duration:2.04
[freezedetect @ 0x2] lavfi.freezedetect.freeze_duration: 2.04
[freezedetect @ 0x2] lavfi.freezedetect.freeze_end: 12.04
[Parsed_metadata_2 @ 0x1] frame:301  pts:154112  pts_time:12.04
[Parsed_metadata_2 @ 0x1] lavfi.black_end=12.04
[Parsed_metadata_2 @ 0x1] lavfi.freezedetect.freeze_duration=2.04
[Parsed_metadata_2 @ 0x1] lavfi.freezedetect.freeze_end=12.04
[silencedetect @ 0x4] silence_start: 20.0108
[Parsed_ametadata_5 @ 0x5] frame:210  pts:1008000 pts_time:21
[Parsed_ametadata_5 @ 0x5] lavfi.silence_start=20.0108
[silencedetect @ 0x4] silence_end: 23.0185 | silence_duration: 3.00775
[Parsed_ametadata_5 @ 0x5] frame:230  pts:1104000 pts_time:23
[Parsed_ametadata_5 @ 0x5] lavfi.silence_end=23.0185
[Parsed_ametadata_5 @ 0x5] lavfi.silence_duration=3.00775
[freezedetect @ 0x2] lavfi.freezedetect.freeze_start: 30
[Parsed_metadata_2 @ 0x1] frame:775  pts:396800  pts_time:31
[Parsed_metadata_2 @ 0x1] lavfi.freezedetect.freeze_start=30
[Parsed_metadata_2 @ 0x1] frame:800  pts:409600  pts_time:32
[Parsed_metadata_2 @ 0x1] lavfi.freezedetect.freeze_duration=2
[Parsed_metadata_2 @ 0x1] lavfi.freezedetect.freeze_end=32
[freezedetect @ 0x2] lavfi.freezedetect.freeze_duration: 2
[freezedetect @ 0x2] lavfi.freezedetect.freeze_end: 32
[Parsed_ametadata_5 @ 0x5] frame:399  pts:1915200 pts_time:39.9
[Parsed_ametadata_5 @ 0x5] lavfi.r128.I=-21.804
[Parsed_ametadata_5 @ 0x5] lavfi.r128.LRA=2.030
[Parsed_ametadata_5 @ 0x5] lavfi.r128.true_peak=0.157`
	d := NewQCDetector(QCParams{})
	var issues []QCIssue
	for _, l := range strings.Split(lines, "\n") {
		issues = append(issues, d.Line(l)...)
	}
	issues = append(issues, d.Finish(40)...)
	want := []struct {
		typ        string
		start, end float64
	}{{QCIssueBlack, 10, 12.04}, {QCIssueSilence, 20.011, 23.019}, {QCIssueFreeze, 30, 32}}
	if len(issues) != len(want) {
		t.Fatalf("issues: %+v", issues)
	}
	for i, w := range want {
		if is := issues[i]; is.Type != w.typ || is.Start != w.start || is.End != w.end || is.Severity != SeverityWarning {
			t.Errorf("issue %d: %+v, want %+v", i, is, w)
		}
	}
	l, ok := d.Loudness()
	if !ok || l.Integrated != -21.804 || l.LRA != 2.03 || math.Abs(l.TruePeak-20*math.Log10(0.157)) > 1e-9 {
		t.Errorf("loudness %+v %v", l, ok)
	}
}

func TestDetectQCDetectorOpenSpansAndPeaks(t *testing.T) {
	d := NewQCDetector(QCParams{})
	var issues []QCIssue
	for _, l := range []string{
		"frame:10 pts:1 pts_time:1",
		"lavfi.r128.true_peak=0.5",
		"frame:11 pts:1 pts_time:1.1",
		"lavfi.r128.true_peak=1.2", // +1.6 dBTP
		"frame:12 pts:1 pts_time:1.2",
		"lavfi.r128.true_peak=1.3", // once only
		"lavfi.astats.Overall.Peak_level=0.000265",
		"lavfi.astats.Overall.Peak_count=400",
		"frame:13 pts:1 pts_time:1.3",
		"lavfi.astats.Overall.Peak_level=0.000265",
		"lavfi.astats.Overall.Peak_count=400",
		"frame:14 pts:1 pts_time:1.4",
		"lavfi.astats.Overall.Peak_level=-0.000265",
		"lavfi.astats.Overall.Peak_count=3", // too few: not clipped
		"lavfi.black_start=2",
		"lavfi.black_end=2.2", // shorter than black_min_duration
		"frame:40 pts:1 pts_time:4",
		"lavfi.astats.Overall.Peak_level=-20",
		"lavfi.astats.Overall.Peak_count=2",
		"lavfi.silence_start=5",
		"lavfi.black_start=6",
		"lavfi.freezedetect.freeze_start=6",
		"lavfi.r128.I=-14",
	} {
		issues = append(issues, d.Line(l)...)
	}
	issues = append(issues, d.Finish(9)...)
	var got []string
	for _, is := range issues {
		got = append(got, is.Type)
	}
	// the freeze is the black stretch; loudness -14 is outside -25..-21
	if strings.Join(got, ",") != "true_peak,clipping,black,silence,loudness" {
		t.Fatalf("issues: %+v", issues)
	}
	if issues[0].Start != 1.1 || issues[1].Start != 1.2 || issues[1].End != 1.4 ||
		issues[2].Start != 6 || issues[2].End != 9 || issues[3].Start != 5 || issues[3].End != 9 {
		t.Errorf("issues: %+v", issues)
	}
}

func FuzzDetectParser(f *testing.F) {
	for _, l := range detectSeedLines {
		f.Add(l, l)
	}
	f.Add("[a @ b] frame:1 pts:1 pts_time:1e308", "[a @ b] lavfi.black_end=-1e308")
	f.Add("t: 1 M: S: I: LRA: TPK: 1e400", "lavfi.freezedetect.freeze_end: 1e999")
	f.Fuzz(func(t *testing.T, a, b string) {
		var p DetectParser
		d := NewQCDetector(QCParams{})
		for _, line := range []string{a, b, a} {
			for _, det := range p.Line(line) {
				if math.IsNaN(det.Value) || math.IsInf(det.Value, 0) || math.IsNaN(det.Time) || det.Key == "" {
					t.Fatalf("%q: bad detection %+v", line, det)
				}
			}
			for _, is := range d.Line(line) {
				checkFuzzIssue(t, line, is)
			}
		}
		for _, is := range d.Finish(0) {
			checkFuzzIssue(t, "finish", is)
		}
	})
}

func checkFuzzIssue(t *testing.T, line string, is QCIssue) {
	t.Helper()
	for _, v := range []float64{is.Start, is.End, is.Duration} {
		if math.IsNaN(v) {
			t.Fatalf("%q: issue %+v", line, is)
		}
	}
	if is.End < is.Start || is.Type == "" || is.Severity == "" || is.Message == "" {
		t.Fatalf("%q: issue %+v", line, is)
	}
}
