package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// captionsConfig captions live/talk* with pocketsphinx, with 2 s segments.
const captionsConfig = `
log:
  level: debug
hub:
  grace_period: 5s
packager:
  segment_duration: 2s
  part_duration: 250ms
  playlist_segments: 6
ai:
  live_captions:
    - {match: "live/talk*", engine: pocketsphinx, language: en}
`

// speechSentences are spoken, in order, at 2 s and 7 s in the media made
// by makeSpeechMP4.
var speechSentences = []string{"The weather is nice today.", "Please open the door for me."}

// makeSpeechMP4 makes 12 s of 640x360 testsrc2 with speechSentences
// spoken (flite, voice slt) at 2 s and 7 s, for looping, at out ("" for a
// temporary file).
func makeSpeechMP4(t *testing.T, out string) string {
	t.Helper()
	if out == "" {
		out = filepath.Join(t.TempDir(), "speech.mp4")
	}
	return makeSpeech(t, out, speechSentences, []float64{2, 7}, 12)
}

// makeSpeech makes dur seconds of 640x360 testsrc2 (H.264) with each
// sentence spoken (flite, voice slt, AAC) from its time in at.
func makeSpeech(t *testing.T, out string, sentences []string, at []float64, dur float64) string {
	t.Helper()
	args := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"}
	var graph, mix strings.Builder
	for i, s := range sentences {
		args = append(args, "-f", "lavfi", "-i", "flite=text='"+strings.ReplaceAll(s, "'", "")+"':voice=slt")
		fmt.Fprintf(&graph, "[%d]adelay=%d,apad[a%d];", i+1, int(at[i]*1000), i)
		fmt.Fprintf(&mix, "[a%d]", i)
	}
	fmt.Fprintf(&graph, "%samix=inputs=%d:duration=longest:normalize=0,aresample=48000[a]", mix.String(), len(sentences))
	args = append(args, "-filter_complex", graph.String(), "-map", "0:v", "-map", "[a]", "-t", strconv.FormatFloat(dur, 'f', -1, 64),
		"-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
		"-movflags", "+faststart", out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make speech: %v\n%s", err, b)
	}
	return out
}

var vttFileRe = regexp.MustCompile(`(?m)^(\S+\.vtt)$`)

// TestLiveCaptions publishes speech over RTMP to a stream a live_captions
// rule matches: the HLS playlists get a subtitles rendition whose WebVTT
// segments hold the recognised words, the stream info shows the captions,
// and hls.js in Chromium shows cues while the video plays. It logs how far
// the captions trail the video.
func TestLiveCaptions(t *testing.T) {
	dir := browserDir(t)
	s := startServer(t, serverOptions{Config: captionsConfig})
	src := makeSpeechMP4(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startProc(t, ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re", "-stream_loop", "-1", "-i", src,
		"-c", "copy", "-f", "flv", s.RTMPURL("live/talk"))

	// The multivariant playlist offers the subtitles.
	waitForPlaylist(t, s, "live/talk", 2)
	var master string
	waitFor(t, 20*time.Second, "the subtitles rendition in index.m3u8", func() bool {
		_, master = httpGet(t, s.HLSURL("live/talk"))
		return strings.Contains(master, `TYPE=SUBTITLES`)
	})
	if !strings.Contains(master, `LANGUAGE="en"`) || !strings.Contains(master, `SUBTITLES="subs"`) {
		t.Fatalf("multivariant playlist:\n%s", master)
	}

	// Words appear in the WebVTT segments.
	var words string
	var lag time.Duration
	waitFor(t, 40*time.Second, "recognised words in the subtitle segments", func() bool {
		code, subs := httpGet(t, s.URL("/live/talk/subs.m3u8"))
		if code != 200 {
			return false
		}
		var text strings.Builder
		for _, m := range vttFileRe.FindAllStringSubmatch(subs, -1) {
			_, vtt := httpGet(t, s.URL("/live/talk/"+m[1]))
			for _, line := range strings.Split(vtt, "\n") {
				if line != "" && !strings.Contains(line, "-->") && !strings.HasPrefix(line, "WEBVTT") && !strings.HasPrefix(line, "X-TIMESTAMP-MAP") {
					text.WriteString(strings.ToLower(line) + " ")
				}
			}
		}
		words = text.String()
		lag = captionLag(t, s, subs)
		return strings.Contains(words, "weather") || strings.Contains(words, "door")
	})
	t.Logf("recognised in the live subtitles: %q; captions trail the video playlist by %s", words, lag)

	code, body := s.api(t, "GET", "/api/v1/streams/live/talk", apiToken)
	var info struct {
		Captions *struct {
			Engine string `json:"engine"`
			State  string `json:"state"`
			Cues   int    `json:"cues"`
		} `json:"captions"`
	}
	if code != 200 || json.Unmarshal(body, &info) != nil || info.Captions == nil || info.Captions.Engine != "pocketsphinx" || info.Captions.Cues == 0 {
		t.Fatalf("stream info %d: %s", code, body)
	}

	// hls.js shows the cues.
	res := runPlayerWith(t, ctx, dir, "hls", s.HLSURL("live/talk"), 3, 60, nil, playerOptions{Args: []string{"--subtitles"}})
	if len(res.ActiveCues) == 0 {
		t.Fatalf("no cue became active in hls.js; text tracks %+v", res.TextTracks)
	}
	for _, c := range res.ActiveCues {
		if c.At < c.Start-0.1 || c.At > c.End+0.5 {
			t.Errorf("cue %q (%.2f-%.2f) seen active at %.2f", c.Text, c.Start, c.End, c.At)
		}
	}
	t.Logf("hls.js showed %d cue(s), first %q", len(res.ActiveCues), res.ActiveCues[0].Text)

	// Stopping the captions removes the rendition.
	if code, body := s.api(t, "DELETE", "/api/v1/streams/live/talk/captions", apiToken); code != 204 {
		t.Fatalf("DELETE captions: %d %s", code, body)
	}
	if _, master = httpGet(t, s.HLSURL("live/talk")); strings.Contains(master, "SUBTITLES") {
		t.Errorf("subtitles still offered after DELETE:\n%s", master)
	}
	if code, _ := httpGet(t, s.URL("/live/talk/subs.m3u8")); code != 404 {
		t.Errorf("subs.m3u8 after DELETE: %d, want 404", code)
	}
	// And the API starts them again.
	if code, body := s.apiBody(t, "PUT", "/api/v1/streams/live/talk/captions", `{"engine":"pocketsphinx"}`); code != 200 {
		t.Fatalf("PUT captions: %d %s", code, body)
	}
	if code, body := s.apiBody(t, "PUT", "/api/v1/streams/live/talk/captions", `{"engine":"nope"}`); code != 400 || !strings.Contains(string(body), "pocketsphinx") {
		t.Errorf("PUT with an unknown engine: %d %s", code, body)
	}
}

var extinfRe = regexp.MustCompile(`#EXTINF:([0-9.]+),`)

// captionLag is how much media the video playlist lists beyond the
// subtitles playlist: how far captions trail.
func captionLag(t *testing.T, s *server, subs string) time.Duration {
	_, video := httpGet(t, s.URL("/live/talk/t0.m3u8"))
	sum := func(pl string) (last int, total time.Duration) {
		seq := 0
		if m := regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`).FindStringSubmatch(pl); m != nil {
			seq, _ = strconv.Atoi(m[1])
		}
		n := 0
		for _, m := range extinfRe.FindAllStringSubmatch(pl, -1) {
			f, _ := strconv.ParseFloat(m[1], 64)
			total += time.Duration(f * float64(time.Second))
			n++
		}
		return seq + n, total
	}
	vLast, _ := sum(video)
	sLast, _ := sum(subs)
	return time.Duration(vLast-sLast) * 2 * time.Second
}

// TestLiveQCAlerts publishes a stream whose picture goes black for 2 s
// to a server whose live_qc rule matches it: a qc.alert event with the
// black span comes while the stream goes on.
func TestLiveQCAlerts(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOptions{Config: fastConfig + `
ai:
  live_qc:
    - {match: "live/qc*"}
`})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startProc(t, ctx, "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-vf", "drawbox=color=black:t=fill:enable='between(t,4,6)'", "-t", "12",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-f", "flv", s.RTMPURL("live/qc1"))
	var alert apiEvent
	waitFor(t, 25*time.Second, "a qc.alert of black video", func() bool {
		for _, e := range s.events(t, 0, "qc.alert", "live/qc1") {
			if e.Data["type"] == "black" {
				alert = e
				return true
			}
		}
		return false
	})
	start, _ := alert.num("start")
	end, _ := alert.num("end")
	if d := end - start; d < 1.5 || d > 2.5 || alert.Data["severity"] != "warning" {
		t.Errorf("black alert %v: want a 2 s warning", alert)
	}
	t.Logf("alert: %v", alert)
}
