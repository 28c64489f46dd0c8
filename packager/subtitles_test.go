package packager

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testmedia"
)

// subsMPD is the part of an MPD that subtitles tests read.
type subsMPD struct {
	Periods []struct {
		Sets []struct {
			ID          string `xml:"id,attr"`
			ContentType string `xml:"contentType,attr"`
			MimeType    string `xml:"mimeType,attr"`
			Lang        string `xml:"lang,attr"`
			Label       string `xml:"Label"`
			Role        struct {
				Scheme string `xml:"schemeIdUri,attr"`
				Value  string `xml:"value,attr"`
			} `xml:"Role"`
			Reps []struct {
				ID        string `xml:"id,attr"`
				Bandwidth int    `xml:"bandwidth,attr"`
				BaseURL   string `xml:"BaseURL"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

func readSubsMPD(t *testing.T, dir string) subsMPD {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.mpd"))
	if err != nil {
		t.Fatal(err)
	}
	var m subsMPD
	if err := xml.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.mpd: %v\n%s", err, b)
	}
	return m
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const subsTestVTT = "WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nHello there\n\n00:00:03.000 --> 00:00:04.000\nSecond line\n"

var subsMediaLine = regexp.MustCompile(`(?m)^#EXT-X-MEDIA:TYPE=SUBTITLES,[^\n]*$`)

// TestAddSubtitles packages a two-rung ladder with audio whose video starts
// at 0.5 s (as WriteFiles writes an adaptive output), adds English then
// French subtitles, and checks what players read: the multivariant
// playlist's renditions, the subtitles playlist, the VTT's timestamp map,
// the MPD's text AdaptationSets, and that ffprobe still opens the folder.
func TestAddSubtitles(t *testing.T) {
	big := testmedia.MakeSizedMedia(t, 4, "320x240", "-g", "30")
	small := testmedia.MakeSizedMedia(t, 4, "160x120", "-g", "30")
	v := &VOD{Periods: []VODPeriod{variantPeriod([]*testmedia.Media{big, small}, []int64{45000, 45000})}, Variants: true}
	dir := t.TempDir()
	if _, err := v.WriteFiles(context.Background(), dir, VODHLS|VODDASH); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "subs-en.vtt"), []byte(subsTestVTT), 0o644); err != nil {
		t.Fatal(err)
	}
	en := Subtitles{Name: "English", Language: "en", VTT: "subs-en.vtt", Default: true}
	if err := AddSubtitles(dir, en); err != nil {
		t.Fatal(err)
	}

	// The multivariant playlist offers the rendition to every variant.
	index := readFile(t, dir, "index.m3u8")
	medias := subsMediaLine.FindAllString(index, -1)
	want := `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="subs-en.m3u8"`
	if len(medias) != 1 || medias[0] != want {
		t.Fatalf("subtitles renditions %q\n%s", medias, index)
	}
	infs := variantInfRe.FindAllStringSubmatch(index, -1)
	if len(infs) != 2 {
		t.Fatalf("variants:\n%s", index)
	}
	for _, inf := range infs {
		if !strings.HasSuffix(inf[1], `,SUBTITLES="subs"`) || !strings.Contains(inf[1], `AUDIO="audio"`) {
			t.Errorf("variant %s: %s", inf[2], inf[1])
		}
	}
	if strings.Index(index, "#EXT-X-MEDIA:TYPE=SUBTITLES") > strings.Index(index, "#EXT-X-STREAM-INF") {
		t.Errorf("the rendition comes after the variants:\n%s", index)
	}

	// The subtitles playlist is one segment as long as the presentation.
	var total float64
	for _, m := range extinfRe.FindAllStringSubmatch(readFile(t, dir, "t0.m3u8"), -1) {
		f, _ := strconv.ParseFloat(m[1], 64)
		total += f
	}
	subs := readFile(t, dir, "subs-en.m3u8")
	wantSubs := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:" + strconv.Itoa(int(math.Ceil(total))) +
		"\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:" + seconds(time.Duration(math.Round(total*1000))*time.Millisecond) +
		",\nsubs-en.vtt\n#EXT-X-ENDLIST\n"
	if total < 3.9 || subs != wantSubs {
		t.Errorf("subs-en.m3u8 (presentation %.3f s):\n%s\nwant\n%s", total, subs, wantSubs)
	}

	// Cue time 0 is the first video sample's PTS, 0.5 s in 90 kHz.
	vtt := readFile(t, dir, "subs-en.vtt")
	if want := "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:45000,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:02.500\nHello there\n"; !strings.HasPrefix(vtt, want) {
		t.Errorf("subs-en.vtt:\n%s", vtt)
	}

	// The MPD has a text AdaptationSet in its Period.
	checkTextSets := func(langs ...string) {
		t.Helper()
		m := readSubsMPD(t, dir)
		if len(m.Periods) != 1 {
			t.Fatalf("%d periods", len(m.Periods))
		}
		ids := map[string]bool{}
		var got []string
		for _, s := range m.Periods[0].Sets {
			if ids[s.ID] {
				t.Errorf("AdaptationSet id %s twice", s.ID)
			}
			ids[s.ID] = true
			if s.ContentType != "text" {
				continue
			}
			got = append(got, s.Lang)
			if s.MimeType != "text/vtt" || s.Role.Value != "subtitle" || len(s.Reps) != 1 ||
				s.Reps[0].BaseURL != "subs-"+s.Lang+".vtt" || s.Reps[0].Bandwidth <= 0 || s.Reps[0].ID == "" {
				t.Errorf("text set %+v", s)
			}
		}
		if strings.Join(got, ",") != strings.Join(langs, ",") {
			t.Errorf("text sets %v, want %v", got, langs)
		}
		if len(m.Periods[0].Sets) != 2+len(langs) {
			t.Errorf("%d adaptation sets", len(m.Periods[0].Sets))
		}
	}
	checkTextSets("en")
	if m := readSubsMPD(t, dir); m.Periods[0].Sets[2].Label != "English" {
		t.Errorf("label %q", m.Periods[0].Sets[2].Label)
	}

	// Again: nothing changes.
	before := map[string]string{}
	for _, n := range []string{"index.m3u8", "manifest.mpd", "subs-en.m3u8", "subs-en.vtt"} {
		before[n] = readFile(t, dir, n)
	}
	if err := AddSubtitles(dir, en); err != nil {
		t.Fatal(err)
	}
	for n, b := range before {
		if got := readFile(t, dir, n); got != b {
			t.Errorf("%s changed on the second call:\n%s\nwas\n%s", n, got, b)
		}
	}

	// A second language, the new default.
	if err := os.WriteFile(filepath.Join(dir, "subs-fr.vtt"), []byte("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nBonjour\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := AddSubtitles(dir, Subtitles{Name: "Français", Language: "fr", VTT: "subs-fr.vtt", Default: true}); err != nil {
		t.Fatal(err)
	}
	index = readFile(t, dir, "index.m3u8")
	medias = subsMediaLine.FindAllString(index, -1)
	if len(medias) != 2 || !strings.Contains(medias[0], `LANGUAGE="en",DEFAULT=NO`) || !strings.Contains(medias[1], `LANGUAGE="fr",DEFAULT=YES`) {
		t.Errorf("renditions %q", medias)
	}
	if strings.Count(index, `SUBTITLES="subs"`) != 2 {
		t.Errorf("SUBTITLES added twice:\n%s", index)
	}
	checkTextSets("en", "fr")

	// ffprobe still opens the folder (Debian's ffmpeg 5.1 skips HLS
	// subtitle renditions, "Can't support the subtitle"), and opens the
	// subtitles playlist as WebVTT with the cues at their times.
	if kinds := probeStreams(t, filepath.Join(dir, "index.m3u8")); kinds["video/h264"] != 2 || kinds["audio/aac"] != 1 {
		t.Errorf("ffprobe index.m3u8 sees %v", kinds)
	}
	if kinds := probeStreams(t, filepath.Join(dir, "subs-en.m3u8")); kinds["subtitle/webvtt"] != 1 {
		t.Errorf("ffprobe subs-en.m3u8 sees %v", kinds)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
		filepath.Join(dir, "subs-en.m3u8")).CombinedOutput()
	if err != nil || strings.Fields(string(out))[0] != "1.000000" {
		t.Errorf("ffprobe subs-en.m3u8 packets: %v\n%s", err, out)
	}
}

// probeStreams counts path's streams by type/codec, as ffprobe sees them.
func probeStreams(t *testing.T, path string) map[string]int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var probe struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	kinds := map[string]int{}
	for _, s := range probe.Streams {
		kinds[s.CodecType+"/"+s.CodecName]++
	}
	return kinds
}

// TestAddSubtitlesOneFormat adds subtitles to an output with only one of
// the manifests, and refuses what is no VOD output or no subtitles.
func TestAddSubtitlesOneFormat(t *testing.T) {
	media := testmedia.MakeSizedMedia(t, 3, "160x120", "-g", "30")
	v := &VOD{Periods: []VODPeriod{variantPeriod([]*testmedia.Media{media}, []int64{0})}, Variants: true}
	write := func(formats VODFormat) string {
		dir := t.TempDir()
		if _, err := v.WriteFiles(context.Background(), dir, formats); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "en.vtt"), []byte(subsTestVTT), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	s := Subtitles{Language: "en", VTT: "en.vtt"}

	dash := write(VODDASH)
	if err := AddSubtitles(dash, s); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dash, "subs-en.m3u8")); err == nil {
		t.Error("a subtitles playlist without HLS")
	}
	m := readSubsMPD(t, dash)
	if last := m.Periods[0].Sets[len(m.Periods[0].Sets)-1]; last.ContentType != "text" || last.Lang != "en" || last.Label != "en" {
		t.Errorf("text set %+v", last)
	}
	if vtt := readFile(t, dash, "en.vtt"); !strings.HasPrefix(vtt, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n") {
		t.Errorf("en.vtt:\n%s", vtt)
	}

	hls := write(VODHLS)
	if err := AddSubtitles(hls, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(t, hls, "index.m3u8"), `NAME="en",LANGUAGE="en",DEFAULT=NO`) {
		t.Errorf("index.m3u8:\n%s", readFile(t, hls, "index.m3u8"))
	}
	if vtt := readFile(t, hls, "en.vtt"); !strings.HasPrefix(vtt, "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n") {
		t.Errorf("en.vtt:\n%s", vtt)
	}

	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "en.vtt"), []byte(subsTestVTT), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		dir  string
		s    Subtitles
		want string
	}{
		"no manifests":  {empty, s, "neither index.m3u8 nor manifest.mpd"},
		"bad language":  {hls, Subtitles{Language: "e n", VTT: "en.vtt"}, "language"},
		"no language":   {hls, Subtitles{VTT: "en.vtt"}, "language"},
		"quoted name":   {hls, Subtitles{Name: `a"b`, Language: "en", VTT: "en.vtt"}, "name"},
		"path":          {hls, Subtitles{Language: "en", VTT: "../en.vtt"}, "plain file name"},
		"missing vtt":   {hls, Subtitles{Language: "en", VTT: "fr.vtt"}, "no such file"},
		"not a webvtt":  {hls, Subtitles{Language: "en", VTT: "index.m3u8"}, "not a WebVTT file"},
		"no vtt at all": {hls, Subtitles{Language: "en"}, "plain file name"},
	} {
		if err := AddSubtitles(c.dir, c.s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// FuzzSubtitlesManifests feeds arbitrary manifests and VTTs to the
// editors AddSubtitles uses: none panics, and the playlist and VTT edits
// are idempotent.
func FuzzSubtitlesManifests(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nt0.m3u8\n"),
		[]byte("<MPD mediaPresentationDuration=\"PT1H2M3.5S\">\n  <Period id=\"0\">\n    <AdaptationSet id=\"0\">\n    </AdaptationSet>\n  </Period>\n</MPD>\n"),
		[]byte(subsTestVTT), "en")
	f.Add([]byte("#EXT-X-MEDIA:TYPE=SUBTITLES,LANGUAGE=\"EN\",DEFAULT=YES\r\n"), []byte("</Period></Period>"),
		[]byte("WEBVTT\r\nX-TIMESTAMP-MAP=MPEGTS:1,LOCAL:00:00:00.000\r\n\r\n"), "fr")
	f.Add([]byte(""), []byte(`mediaPresentationDuration="PTS"`), []byte("WEBVTT"), "pt-BR")
	f.Add([]byte("\r"), []byte("0"), []byte("0"), "AA")
	f.Fuzz(func(t *testing.T, m3u8, mpd, vtt []byte, lang string) {
		if !subsLangRe.MatchString(lang) {
			return
		}
		s := Subtitles{Name: "N", Language: lang, VTT: "x.vtt", Default: true}
		h1 := addSubtitlesHLS(m3u8, s, SubtitlesPlaylist(lang))
		if h2 := addSubtitlesHLS(h1, s, SubtitlesPlaylist(lang)); !bytes.Equal(h1, h2) {
			t.Errorf("HLS edit not idempotent:\n%q\n%q", h1, h2)
		}
		_ = addSubtitlesDASH(mpd, s)
		_, _ = mpdPresentationDuration(mpd)
		vtt = append([]byte("WEBVTT"), vtt...)
		v1 := withTimestampMap(vtt, 1234)
		if v2 := withTimestampMap(v1, 1234); !bytes.Equal(v1, v2) {
			t.Errorf("VTT edit not idempotent:\n%q\n%q", v1, v2)
		}
		if !bytes.HasPrefix(v1, []byte("WEBVTT")) || !bytes.Contains(v1, []byte("\nX-TIMESTAMP-MAP=MPEGTS:1234,LOCAL:00:00:00.000\n")) {
			t.Errorf("VTT edit: %q", v1)
		}
	})
}
