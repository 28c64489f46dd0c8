package transcoder

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testdata/ffmpeg-5.1 holds the real output of Debian 12's ffmpeg 5.1 for
// `-hide_banner -version`, `-encoders` and `-filters`.
func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ffmpeg-5.1", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRealOutput(t *testing.T) {
	if v := parseFFmpegVersion(readTestdata(t, "version.txt")); v != "5.1.9-0+deb12u1" {
		t.Errorf("version = %q", v)
	}

	enc := parseEncoderList(readTestdata(t, "encoders.txt"))
	// 227 lines: "Encoders:", 8 legend lines, the rule and 217 encoders.
	if len(enc) != 217 {
		t.Errorf("%d encoders, want 217", len(enc))
	}
	for _, name := range []string{"libx264", "libx265", "libsvtav1", "libvpx-vp9", "aac", "libopus", "mjpeg", "a64multi", "libx264rgb", "mjpeg_vaapi"} {
		if !enc[name] {
			t.Errorf("encoder %s missing", name)
		}
	}
	for _, junk := range []string{"Encoders:", "------", "=", "Video", "V.....", ".F...."} {
		if enc[junk] {
			t.Errorf("legend %q parsed as an encoder", junk)
		}
	}

	flt := parseFilterList(readTestdata(t, "filters.txt"))
	// 535 lines: "Filters:", 7 legend lines and 527 filters.
	if len(flt) != 527 {
		t.Errorf("%d filters, want 527", len(flt))
	}
	for _, name := range []string{"drawtext", "overlay", "scale", "split", "fps", "abuffer", "nullsink", "psnr", "ebur128"} {
		if !flt[name] {
			t.Errorf("filter %s missing", name)
		}
	}
	if flt["libvmaf"] {
		t.Error("Debian's ffmpeg has no libvmaf, but it was parsed")
	}
	for _, junk := range []string{"Filters:", "T..", "|", "=", "A", "V", "N"} {
		if flt[junk] {
			t.Errorf("legend %q parsed as a filter", junk)
		}
	}
}

func TestParseOtherShapes(t *testing.T) {
	for in, want := range map[string]string{
		"ffmpeg version n7.0.1 Copyright (c) 2000-2024":       "n7.0.1",
		"ffmpeg version N-112345-gabc1234 Copyright":          "N-112345-gabc1234",
		"  ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright":   "4.4.2-0ubuntu0.22.04.1",
		"built with gcc\nffmpeg version 6.0\n":                "6.0",
		"ffprobe version 5.1 Copyright":                       "",
		"ffmpeg version \n":                                   "",
		"ffmpeg version <script> Copyright":                   "",
		"":                                                    "",
		"Usage: something else entirely\nffmpeg version: 1.0": "",
	} {
		if got := parseFFmpegVersion(in); got != want {
			t.Errorf("parseFFmpegVersion(%q) = %q, want %q", in, got, want)
		}
	}

	// Windows line ends, tabs, and no legend at all.
	enc := parseEncoderList("Encoders:\r\n V..... = Video\r\n ------\r\n V....D libx264\tH.264\r\n A..X.. opus   Opus\r\n garbage line here\r\n")
	if !slices.Equal(sortedTrue(enc), []string{"libx264", "opus"}) {
		t.Errorf("encoders = %v", sortedTrue(enc))
	}
	// ffmpeg 4 style filters, with and without flags.
	flt := parseFilterList("Filters:\n  T.. = Timeline support\n  | = Source or sink filter\n TSC overlay VV->V Overlay.\n ... buffer |->V Buffer.\n .. short V->V x\n text without pads\n")
	if !slices.Equal(sortedTrue(flt), []string{"buffer", "overlay", "short"}) {
		t.Errorf("filters = %v", sortedTrue(flt))
	}
}

// fakeFFmpeg writes a shell script that answers -version, -encoders and
// -filters with the given outputs (empty: the real ones), or fails.
func fakeFFmpeg(t *testing.T, version, encoders, filters string) string {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("version.txt", version)
	write("encoders.txt", encoders)
	write("filters.txt", filters)
	script := `#!/bin/sh
[ "$1" = -hide_banner ] || { echo "want -hide_banner first" >&2; exit 2; }
case "$2" in
-version) f=version.txt ;;
-encoders) f=encoders.txt ;;
-filters) f=filters.txt ;;
*) echo "Unrecognized option '$2'." >&2; exit 1 ;;
esac
[ -s "` + dir + `/$f.fail" ] && { cat "` + dir + `/$f.fail" >&2; exit 1; }
cat "` + dir + `/$f"
`
	path := filepath.Join(dir, "ffmpeg")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProbeFake(t *testing.T) {
	ctx := context.Background()
	version, encoders, filters := readTestdata(t, "version.txt"), readTestdata(t, "encoders.txt"), readTestdata(t, "filters.txt")

	path := fakeFFmpeg(t, version, encoders, filters)
	caps, err := Probe(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if caps.FFmpegPath != path || caps.FFmpegVersion != "5.1.9-0+deb12u1" || len(caps.Encoders) != 217 || len(caps.Filters) != 527 {
		t.Errorf("caps = %s %s, %d encoders, %d filters", caps.FFmpegPath, caps.FFmpegVersion, len(caps.Encoders), len(caps.Filters))
	}

	cases := []struct {
		name                       string
		version, encoders, filters string
		fail                       string // file whose run fails
		want                       []string
	}{
		{name: "not ffmpeg", version: "Usage: foo\n", encoders: encoders, filters: filters, want: []string{"no \"ffmpeg version\" line", "Usage: foo"}},
		{name: "no encoders", version: version, encoders: "Encoders:\n ------\n", filters: filters, want: []string{"-encoders", "listed no encoder"}},
		{name: "no filters", version: version, encoders: encoders, filters: "nothing", want: []string{"-filters", "listed no filter"}},
		{name: "failing", version: version, encoders: encoders, filters: filters, fail: "encoders.txt", want: []string{"-encoders", "exit status 1", "library not loaded"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := fakeFFmpeg(t, c.version, c.encoders, c.filters)
			if c.fail != "" {
				if err := os.WriteFile(filepath.Join(filepath.Dir(path), c.fail+".fail"), []byte("some noise\nlibrary not loaded\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Probe(ctx, path)
			if err == nil {
				t.Fatal("Probe succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}

	if _, err := Probe(ctx, filepath.Join(t.TempDir(), "no-ffmpeg")); err == nil || !strings.Contains(err.Error(), "no-ffmpeg") {
		t.Errorf("missing binary: %v", err)
	}
	if _, err := Probe(ctx, ""); err == nil {
		t.Error("empty path accepted")
	}
}

func TestProbeHonoursContext(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	path := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Probe(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Probe took %s after its context ended", d)
	}
}

// TestProbeRealFFmpeg runs the ffmpeg on PATH, when there is one.
func TestProbeRealFFmpeg(t *testing.T) {
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("no ffmpeg on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caps, err := Probe(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if caps.FFmpegVersion == "" || !caps.HasEncoder("mjpeg") || !caps.HasFilter("scale") || !caps.HasFilter("split") {
		t.Errorf("caps: version %q, mjpeg %v, scale %v", caps.FFmpegVersion, caps.HasEncoder("mjpeg"), caps.HasFilter("scale"))
	}
	t.Logf("ffmpeg %s: %d encoders, %d filters, video codecs %v", caps.FFmpegVersion, len(caps.Encoders), len(caps.Filters), caps.View().VideoCodecs)
}

func TestCapabilitiesView(t *testing.T) {
	caps := &Capabilities{
		FFmpegPath:    "/usr/bin/ffmpeg",
		FFmpegVersion: "5.1",
		Encoders:      map[string]bool{"libx264": true, "aac": true, "mjpeg": true, "libvpx-vp9": true, "zz": true, "gone": false},
		Filters:       map[string]bool{"scale": true, "drawtext": true, "split": true},
	}
	if !caps.HasEncoder("libx264") || caps.HasEncoder("libx265") || !caps.HasFilter("drawtext") || caps.HasFilter("overlay") {
		t.Error("HasEncoder/HasFilter wrong")
	}
	var nilCaps *Capabilities
	if nilCaps.HasEncoder("libx264") || nilCaps.HasFilter("scale") {
		t.Error("nil Capabilities has something")
	}

	b, err := json.Marshal(caps)
	if err != nil {
		t.Fatal(err)
	}
	var got CapabilitiesView
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.FFmpegVersion != "5.1" || got.FFmpegPath != "/usr/bin/ffmpeg" {
		t.Errorf("view = %s", b)
	}
	if !slices.Equal(got.Encoders, []string{"aac", "libvpx-vp9", "libx264", "mjpeg", "zz"}) || !slices.Equal(got.Filters, []string{"drawtext", "scale", "split"}) {
		t.Errorf("lists = %v %v", got.Encoders, got.Filters)
	}
	if !slices.Equal(got.VideoCodecs, []string{"h264", "vp9"}) || !slices.Equal(got.AudioCodecs, []string{"aac"}) {
		t.Errorf("codecs = %v %v", got.VideoCodecs, got.AudioCodecs)
	}
	if len(got.NotableEncoders) != len(NotableEncoders) || !got.NotableEncoders["libx264"] || got.NotableEncoders["libx265"] || !got.NotableEncoders["mjpeg"] {
		t.Errorf("notable encoders = %v", got.NotableEncoders)
	}
	if len(got.NotableFilters) != len(NotableFilters) || !got.NotableFilters["drawtext"] || got.NotableFilters["libvmaf"] || got.NotableFilters["overlay"] {
		t.Errorf("notable filters = %v", got.NotableFilters)
	}
	// The value form marshals the same way.
	if b2, _ := json.Marshal(*caps); string(b2) != string(b) {
		t.Errorf("value marshals as %s, pointer as %s", b2, b)
	}
	// Empty lists are [] rather than null.
	b, _ = json.Marshal(nilCaps.View())
	if !strings.Contains(string(b), `"encoders":[]`) || !strings.Contains(string(b), `"video_codecs":[]`) {
		t.Errorf("empty view = %s", b)
	}
}

func TestCodecEncoder(t *testing.T) {
	for codec, want := range map[string]string{"h264": "libx264", "h265": "libx265", "av1": "libsvtav1", "vp9": "libvpx-vp9", "aac": "aac", "opus": "libopus", "copy": "", "none": "", "h263": ""} {
		if got := CodecEncoder(codec); got != want {
			t.Errorf("CodecEncoder(%s) = %q, want %q", codec, got, want)
		}
	}
}

// The parsers take whatever a binary prints: they must not panic, and every
// name they return must appear in the input as a plain word.
func FuzzParseEncoders(f *testing.F) {
	addLines(f, readTestdata(f, "encoders.txt"))
	f.Fuzz(func(t *testing.T, out string) {
		checkNames(t, out, parseEncoderList(out))
	})
}

func FuzzParseFilters(f *testing.F) {
	addLines(f, readTestdata(f, "filters.txt"))
	f.Fuzz(func(t *testing.T, out string) {
		checkNames(t, out, parseFilterList(out))
	})
}

func FuzzParseVersion(f *testing.F) {
	addLines(f, readTestdata(f, "version.txt"))
	f.Add("ffmpeg version N-1-g1 Copyright")
	f.Fuzz(func(t *testing.T, out string) {
		v := parseFFmpegVersion(out)
		if v != "" && (!strings.Contains(out, "ffmpeg version ") || !strings.Contains(out, v) || strings.ContainsAny(v, " \t\r\n")) {
			t.Fatalf("version %q from %q", v, out)
		}
	})
}

// addLines seeds with pieces of real output: its head with the legend,
// and runs of lines from the rest. (The whole output is tested above;
// seeds that large slow the fuzzer to a crawl.)
func addLines(f *testing.F, out string) {
	lines := strings.Split(out, "\n")
	f.Add(strings.Join(lines[:min(len(lines), 14)], "\n"))
	for i := 14; i < len(lines); i += 60 {
		f.Add(strings.Join(lines[i:min(len(lines), i+8)], "\n"))
	}
	f.Add("")
	f.Add(" ------\n V..... = Video\n")
}

func checkNames(t *testing.T, out string, names map[string]bool) {
	t.Helper()
	for name := range names {
		if name == "" || strings.ContainsAny(name, " \t\r\n=") || !strings.Contains(out, name) {
			t.Fatalf("name %q from %q", name, out)
		}
	}
}
