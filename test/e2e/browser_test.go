package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// playResult is what test/browser/play.mjs prints.
type playResult struct {
	OK               bool     `json:"ok"`
	Error            string   `json:"error"`
	Player           string   `json:"player"`
	StartTime        float64  `json:"startTime"`
	EndTime          float64  `json:"endTime"`
	Advanced         float64  `json:"advanced"`
	FramesStart      int      `json:"framesStart"`
	FramesEnd        int      `json:"framesEnd"`
	VideoWidth       int      `json:"videoWidth"`
	VideoHeight      int      `json:"videoHeight"`
	Errors           []string `json:"errors"`
	Events           []string `json:"events"`
	Console          []string `json:"console"`
	FailedRequests   []string `json:"failedRequests"`
	ExternalRequests []string `json:"externalRequests"`
	Info             struct {
		Live           *bool   `json:"live"`
		Parts          int     `json:"parts"`
		CanBlockReload bool    `json:"canBlockReload"`
		PartTarget     float64 `json:"partTarget"`
		Dynamic        *bool   `json:"dynamic"`
	} `json:"info"`
	Latency *float64 `json:"latency"`
	Crossed int      `json:"crossed"`
	// With --switch: the video renditions offered, and the one forced.
	Levels []struct {
		Width   int `json:"width"`
		Height  int `json:"height"`
		Bitrate int `json:"bitrate"`
	} `json:"levels"`
	SwitchedTo *struct {
		Index  int `json:"index"`
		Height int `json:"height"`
	} `json:"switchedTo"`
	// With --subtitles: the video element's text tracks, and the cues seen
	// active (with the currentTime when first seen).
	TextTracks []struct {
		Kind     string `json:"kind"`
		Label    string `json:"label"`
		Language string `json:"language"`
		Mode     string `json:"mode"`
	} `json:"textTracks"`
	ActiveCues []struct {
		Text  string  `json:"text"`
		Start float64 `json:"start"`
		End   float64 `json:"end"`
		At    float64 `json:"at"`
	} `json:"activeCues"`
}

// browserDir returns test/browser, or skips (outside CI) when its npm
// packages are not installed. Under CI=true a missing install fails.
func browserDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	dir := filepath.Join(repoRoot, "test", "browser")
	var missing []string
	for _, p := range []string{"playwright-core", "hls.js", "dashjs"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		msg := "test/browser/node_modules lacks " + strings.Join(missing, ", ") + ": run `npm ci` in test/browser (make does)"
		if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	testutil.RequireTools(t, "node")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing (apt-get install chromium; make does): %v", chromium, err)
	}
	return dir
}

// TestBrowserPlayback plays the stream in headless Chromium with hls.js
// (low-latency mode) and with dash.js, from a page on another origin.
func TestBrowserPlayback(t *testing.T) {
	t.Parallel()
	dir := browserDir(t)
	s := startServer(t, serverOptions{Config: fastConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const name = "live/browser"
	ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 3 * time.Minute})
	waitForPlaylist(t, s, name, 2)

	for _, tc := range []struct{ player, url string }{
		{"hls", s.HLSURL(name)},
		{"dash", s.DASHURL(name)},
	} {
		t.Run(tc.player, func(t *testing.T) {
			// 6 s is more than the playlist or MPD held when the player
			// started, so the player must have reloaded it.
			res := runPlayer(t, ctx, dir, tc.player, tc.url, 6, 45, nil)
			if res.Latency != nil {
				t.Logf("%s: the player is %.2f s behind live (informational)", tc.player, *res.Latency)
			}
			switch tc.player {
			case "hls":
				// hls.js in lowLatencyMode uses parts and blocking reload only
				// when the playlist offers them.
				if res.Info.Live == nil || !*res.Info.Live {
					t.Errorf("hls.js did not see a live playlist: %+v", res.Info)
				}
				if res.Info.Parts == 0 || !res.Info.CanBlockReload || res.Info.PartTarget <= 0 {
					t.Errorf("hls.js did not see LL-HLS (parts %d, canBlockReload %v, partTarget %v)", res.Info.Parts, res.Info.CanBlockReload, res.Info.PartTarget)
				}
			case "dash":
				if res.Info.Dynamic == nil || !*res.Info.Dynamic {
					t.Errorf("dash.js did not see a dynamic (live) MPD: %+v", res.Info)
				}
			}
		})
	}
}

// runPlayer runs play.mjs and checks its result. onPlaying, if set, runs
// once the page reports that playback has started.
func runPlayer(t *testing.T, ctx context.Context, dir, player, u string, advance, timeout int, onPlaying func()) playResult {
	t.Helper()
	return runPlayerWith(t, ctx, dir, player, u, advance, timeout, onPlaying, playerOptions{})
}

// playerOptions are runPlayerWith's less common settings.
type playerOptions struct {
	Args []string // more play.mjs options, e.g. --switch
	// Width and Height are the picture size the video element must show at
	// the end (default 640x360, the publishers' size).
	Width, Height int
}

// runPlayerWith is runPlayer with options.
func runPlayerWith(t *testing.T, ctx context.Context, dir, player, u string, advance, timeout int, onPlaying func(), o playerOptions) playResult {
	t.Helper()
	if o.Width == 0 && o.Height == 0 {
		o.Width, o.Height = 640, 360
	}
	pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	shot := filepath.Join(t.TempDir(), player+".png")
	args := []string{filepath.Join(dir, "play.mjs"), "--url", u, "--player", player,
		"--advance", strconv.Itoa(advance), "--timeout", strconv.Itoa(timeout), "--screenshot", shot}
	args = append(args, o.Args...)
	cmd := exec.CommandContext(pctx, "node", args...)
	cmd.Dir = dir
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderrPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node play.mjs: %v", err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(stderrPipe)
	for sc.Scan() {
		line := sc.Text()
		if line == "PLAYING" && onPlaying != nil {
			onPlaying()
			onPlaying = nil
			continue
		}
		stderr.WriteString(line + "\n")
	}
	err = cmd.Wait()
	out := stdout.String()
	// MPS_E2E_ARTIFACTS=DIR keeps each run's result, stderr (the player's
	// debug log with PLAY_DEBUG=1) and screenshot.
	if dir := os.Getenv("MPS_E2E_ARTIFACTS"); dir != "" {
		base := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(t.Name()))
		if mkErr := os.MkdirAll(dir, 0o755); mkErr == nil {
			os.WriteFile(base+".json", []byte(out), 0o644)
			os.WriteFile(base+".stderr.txt", []byte(stderr.String()), 0o644)
			if b, rerr := os.ReadFile(shot); rerr == nil {
				os.WriteFile(base+".png", b, 0o644)
			}
		}
	}
	var res playResult
	if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
		t.Fatalf("node play.mjs (%s %s): %v; output not JSON (%v):\n%s\nstderr:\n%s", player, u, err, jerr, out, testutil.Tail(stderr.String(), 30))
	}
	t.Logf("%s: currentTime %.2f -> %.2f (advanced %.2f s), frames %d -> %d, %dx%d",
		player, res.StartTime, res.EndTime, res.Advanced, res.FramesStart, res.FramesEnd, res.VideoWidth, res.VideoHeight)
	if err != nil || !res.OK {
		t.Errorf("%s playback of %s failed: %v: %s\nfull result:\n%s\nstderr:\n%s", player, u, err, res.Error, out, testutil.Tail(stderr.String(), 30))
	}
	if len(res.ExternalRequests) > 0 {
		t.Errorf("%s: the page tried to reach other hosts: %v", player, res.ExternalRequests)
	}
	if res.OK && (res.VideoWidth != o.Width || res.VideoHeight != o.Height) {
		t.Errorf("%s: video element shows %dx%d, want %dx%d", player, res.VideoWidth, res.VideoHeight, o.Width, o.Height)
	}
	return res
}

// TestBrowserReconnect plays a stream in Chromium while its publisher drops
// and comes back within the grace period: the player must ride through the
// discontinuity (HLS) or the new period (DASH) and keep playing.
func TestBrowserReconnect(t *testing.T) {
	t.Parallel()
	dir := browserDir(t)
	s := startServer(t, serverOptions{Config: fastConfig})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, player := range []string{"hls", "dash"} {
		t.Run(player, func(t *testing.T) {
			name := "live/browser-rc-" + player
			pub := ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
			mediaURL, _ := waitForPlaylist(t, s, name, 2)
			u := s.HLSURL(name)
			if player == "dash" {
				u = s.DASHURL(name)
			}
			reconnected := false
			// The player holds a few seconds at most; advancing 8 s means it
			// played media published after the reconnect.
			res := runPlayer(t, ctx, dir, player, u, 8, 30, func() {
				pub.Kill()
				time.Sleep(300 * time.Millisecond)
				pub = ffmpegPublish(t, ctx, s.RTMPURL(name), pubOptions{Duration: 2 * time.Minute})
				reconnected = true
			})
			if !reconnected {
				t.Fatalf("playback never started, so the reconnect was not tested")
			}
			if !res.OK {
				if code, mpd, err := tryGet(ctx, s.DASHURL(name)); err == nil {
					t.Logf("MPD now (%d):\n%s", code, mpd)
				}
			}
			if res.OK && res.Crossed == 0 {
				t.Errorf("%s played on, but never crossed into the media published after the reconnect (no discontinuity or period switch seen): events %v", player, res.Events)
			}
			// The discontinuity may have scrolled out of the window by now;
			// EXT-X-DISCONTINUITY-SEQUENCE then counts it.
			if pl, err := fetchMediaPlaylist(ctx, mediaURL); err != nil {
				t.Error(err)
			} else if pl.Discontinuity == 0 && pl.DiscontinuitySequence == 0 {
				t.Errorf("the playlist shows no reconnect (no EXT-X-DISCONTINUITY, EXT-X-DISCONTINUITY-SEQUENCE 0):\n%s", pl.Raw)
			}
			pub.Stop()
		})
	}
}
