package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/transcoder"
)

// The transcoder's manager is what cmd/mps plugs in.
var _ LadderControl = (*transcoder.Manager)(nil)

// fakeLadders records what the API asks of it.
type fakeLadders struct {
	mu       sync.Mutex
	running  map[string]transcoder.LadderInfo
	started  []transcoder.Template
	stopped  []string
	startErr error
	stopErr  error
}

func newFakeLadders() *fakeLadders {
	return &fakeLadders{running: map[string]transcoder.LadderInfo{}}
}

func (f *fakeLadders) Start(name string, tpl *transcoder.Template) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return f.startErr
	}
	f.started = append(f.started, *tpl)
	var rungs []string
	for _, r := range tpl.Rungs {
		rungs = append(rungs, name+"/"+r.Name)
	}
	f.running[name] = transcoder.LadderInfo{Source: name, Template: tpl.Name, State: transcoder.StateStarting, Rungs: rungs}
	return nil
}

func (f *fakeLadders) Stop(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopErr != nil {
		return f.stopErr
	}
	if _, ok := f.running[name]; !ok {
		return fmt.Errorf("ladder %s: %w", name, transcoder.ErrNoLadder)
	}
	delete(f.running, name)
	f.stopped = append(f.stopped, name)
	return nil
}

func (f *fakeLadders) Info(name string) (transcoder.LadderInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	li, ok := f.running[name]
	return li, ok
}

func testTemplates() []transcoder.Template {
	return []transcoder.Template{
		{Name: "default", Rungs: []transcoder.Rung{
			{Name: "source", Passthrough: true},
			{Name: "720p", Video: transcoder.Video{Codec: "h264", Width: 1280, Height: 720, Bitrate: 2_800_000}},
		}},
		{Name: "hevc", Rungs: []transcoder.Rung{
			{Name: "540p", Video: transcoder.Video{Codec: "h265", Height: 540, Bitrate: 1_000_000}},
		}},
	}
}

func testCaps(without ...string) *transcoder.Capabilities {
	c := &transcoder.Capabilities{FFmpegPath: "ffmpeg", FFmpegVersion: "5.1", Encoders: map[string]bool{}, Filters: map[string]bool{}}
	for _, e := range transcoder.NotableEncoders {
		c.Encoders[e] = true
	}
	for _, f := range transcoder.NotableFilters {
		c.Filters[f] = true
	}
	for _, w := range without {
		delete(c.Encoders, w)
		delete(c.Filters, w)
	}
	return c
}

func newLadderFixture(t *testing.T, token string, caps *transcoder.Capabilities) (*fixture, *fakeLadders) {
	t.Helper()
	fl := newFakeLadders()
	f := newFixtureConfig(t, Config{
		Token:        token,
		Ladders:      fl,
		TemplateList: testTemplates,
		Capabilities: caps,
	}, nil)
	return f, fl
}

func TestStartLadder(t *testing.T) {
	f, fl := newLadderFixture(t, "", testCaps())
	f.publish(t, "live/cam1")

	var li transcoder.LadderInfo
	decode(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", body: `{"template": "default"}`}), http.StatusOK, &li)
	if li.Source != "live/cam1" || li.Template != "default" || li.State != transcoder.StateStarting || strings.Join(li.Rungs, " ") != "live/cam1/source live/cam1/720p" {
		t.Errorf("ladder = %+v", li)
	}
	// The ladder gets the template with its defaults filled in.
	if len(fl.started) != 1 {
		t.Fatalf("started %d", len(fl.started))
	}
	v := fl.started[0].Rungs[1].Video
	if v.Preset != "superfast" || v.GOP != 2*time.Second || v.MaxRate != 3_080_000 || fl.started[0].Rungs[1].Audio.Codec != "aac" {
		t.Errorf("started with %+v", fl.started[0].Rungs[1])
	}
	if !contains(f.logs.String(), "ladder started through the API") {
		t.Error("start not logged")
	}

	// The stream and the list show it.
	var in StreamInfo
	decode(t, f.do(t, request{path: "/api/v1/streams/live/cam1"}), http.StatusOK, &in)
	if in.Name != "live/cam1" || in.Ladder == nil || in.Ladder.Template != "default" {
		t.Errorf("stream = %+v, ladder %+v", in.Info, in.Ladder)
	}
	var list []StreamInfo
	decode(t, f.do(t, request{path: "/api/v1/streams"}), http.StatusOK, &list)
	if len(list) != 1 || list[0].Ladder == nil {
		t.Errorf("list = %+v", list)
	}
	decode(t, f.do(t, request{path: "/api/v1/streams/live/cam1/ladder"}), http.StatusOK, &li)
	if li.Template != "default" {
		t.Errorf("GET ladder = %+v", li)
	}

	// PUT again replaces it.
	decode(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", body: `{"template":"hevc"}`}), http.StatusOK, &li)
	if li.Template != "hevc" || len(fl.started) != 2 {
		t.Errorf("replaced: %+v, %d starts", li, len(fl.started))
	}

	// DELETE stops it; then there is none.
	resp := f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam1/ladder"})
	if b := body(t, resp); resp.StatusCode != http.StatusNoContent || b != "" {
		t.Fatalf("DELETE: %d %q", resp.StatusCode, b)
	}
	if len(fl.stopped) != 1 || fl.stopped[0] != "live/cam1" {
		t.Errorf("stopped %v", fl.stopped)
	}
	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam1/ladder"}), http.StatusNotFound, `stream "live/cam1" has no ladder running`)
	wantError(t, f.do(t, request{path: "/api/v1/streams/live/cam1/ladder"}), http.StatusNotFound, `stream "live/cam1" has no ladder running`)

	// A stream without a ladder has no "ladder" field, and its publisher
	// was not kicked by any of this.
	raw := body(t, f.do(t, request{path: "/api/v1/streams/live/cam1"}))
	if strings.Contains(raw, `"ladder"`) || !strings.Contains(raw, `"state":"live"`) {
		t.Errorf("stream after stop: %s", raw)
	}
}

func TestStartLadderRefusals(t *testing.T) {
	f, fl := newLadderFixture(t, "", testCaps("libx265"))
	f.publish(t, "live/cam1")
	put := func(name, body string) *http.Response {
		return f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/" + name + "/ladder", body: body})
	}

	wantError(t, put("live/cam9", `{"template": "default"}`), http.StatusNotFound, `stream "live/cam9" not found`)
	wantError(t, put("live/cam1", `{"template": "nope"}`), http.StatusBadRequest, `unknown ladder template "nope" (known: default, hevc)`)
	for b, want := range map[string]string{
		``:                           "empty body",
		`{`:                          "invalid body",
		`[]`:                         "invalid body",
		`{"template": 5}`:            "invalid body",
		`{"templat": "default"}`:     `unknown field "templat"`,
		`{}`:                         "template: must be set",
		`{"template": ""}`:           "template: must be set",
		`{"template": "default"} {}`: "data after the JSON object",
		`{"template": "` + strings.Repeat("x", 70_000) + `"}`: "body larger than 65536 bytes",
	} {
		e := wantError(t, put("live/cam1", b), http.StatusBadRequest, want)
		if !strings.Contains(e.Error, `send {"template": "NAME"}`) {
			t.Errorf("%q: message %q does not say what to send", b, e.Error)
		}
	}
	// The server's ffmpeg has no libx265.
	wantError(t, put("live/cam1", `{"template": "hevc"}`), http.StatusConflict,
		`ladder template "hevc" cannot run on this server: ladder "hevc": rungs[0].video.codec: h265 needs the libx265 encoder, which this ffmpeg does not have`)

	// The manager's refusals.
	for _, c := range []struct {
		err    error
		status int
		want   string
	}{
		{fmt.Errorf("ladder live/cam1: %w: av1 video", transcoder.ErrUnsupportedSource), http.StatusConflict, "source cannot be transcoded: av1 video"},
		{fmt.Errorf("wrapped: %w", ErrLadderUnsupported), http.StatusConflict, "the stream cannot be transcoded"},
		{fmt.Errorf("ladder live/cam1: %w", transcoder.ErrNoStream), http.StatusNotFound, `stream "live/cam1" is not live`},
		{fmt.Errorf("%w: rung name too long", transcoder.ErrInvalidTemplate), http.StatusBadRequest, "rung name too long"},
		{transcoder.ErrClosed, http.StatusServiceUnavailable, "closed"},
		{fmt.Errorf("disk on fire"), http.StatusInternalServerError, "internal server error"},
	} {
		fl.startErr = c.err
		wantError(t, put("live/cam1", `{"template": "default"}`), c.status, c.want)
	}
	if len(fl.started) != 0 {
		t.Errorf("refused ladders were started: %+v", fl.started)
	}

	fl.startErr = nil
	decode(t, put("live/cam1", `{"template": "default"}`), http.StatusOK, &transcoder.LadderInfo{})
	fl.stopErr = fmt.Errorf("x: %w", ErrNoLadder)
	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam1/ladder"}), http.StatusNotFound, "has no ladder running")
}

func TestLadderPaths(t *testing.T) {
	f, fl := newLadderFixture(t, "", nil)
	f.publish(t, "live/cam1")
	f.publish(t, "live/cam1/720p")
	// "ladder" after a single part is a stream name, not the resource.
	f.publish(t, "live/ladder")

	var in StreamInfo
	decode(t, f.do(t, request{path: "/api/v1/streams/live/ladder"}), http.StatusOK, &in)
	if in.Name != "live/ladder" {
		t.Errorf("live/ladder = %+v", in.Info)
	}
	decode(t, f.do(t, request{path: "/api/v1/streams/live/cam1/720p"}), http.StatusOK, &in)
	if in.Name != "live/cam1/720p" {
		t.Errorf("rendition = %+v", in.Info)
	}
	// Escaped slashes name the same resource.
	decode(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live%2Fcam1%2Fladder", body: `{"template": "default"}`}), http.StatusOK, &transcoder.LadderInfo{})
	if len(fl.started) != 1 {
		t.Errorf("started %d", len(fl.started))
	}
	for _, path := range []string{
		"/api/v1/streams/live/../ladder",
		"/api/v1/streams/live//cam1/ladder",
		"/api/v1/streams/live/cam%201/ladder",
		"/api/v1/streams/live/cam1/ladder/",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			wantError(t, f.do(t, request{method: method, path: path, body: `{"template": "default"}`}), http.StatusBadRequest, "invalid stream name")
		}
	}
	// A stream itself cannot be PUT, and a ladder cannot be POSTed.
	resp := f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1", body: `{}`})
	wantError(t, resp, http.StatusMethodNotAllowed, "method PUT is not allowed on /api/v1/streams/live/cam1; allowed: GET, DELETE")
	wantError(t, f.do(t, request{method: http.MethodPost, path: "/api/v1/streams/live/cam1/ladder"}), http.StatusMethodNotAllowed, "method POST is not allowed")
}

func TestLaddersNeedTheToken(t *testing.T) {
	f, fl := newLadderFixture(t, "s3cret-token", nil)
	f.publish(t, "live/cam1")
	for _, r := range []request{
		{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", body: `{"template": "default"}`},
		{method: http.MethodDelete, path: "/api/v1/streams/live/cam1/ladder"},
		{path: "/api/v1/streams/live/cam1/ladder"},
		{path: "/api/v1/ladders"},
		{path: "/api/v1/capabilities"},
	} {
		wantError(t, f.do(t, r), http.StatusUnauthorized, "missing bearer token")
		r.remote, r.token = remoteAddr, "wrong"
		wantError(t, f.do(t, r), http.StatusUnauthorized, "wrong bearer token")
	}
	if len(fl.started) != 0 {
		t.Fatal("started without the token")
	}
	decode(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", remote: remoteAddr, token: "s3cret-token",
		body: `{"template": "default"}`}), http.StatusOK, &transcoder.LadderInfo{})

	g, _ := newLadderFixture(t, "", nil)
	wantError(t, g.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", remote: remoteAddr, body: `{"template": "default"}`}),
		http.StatusForbidden, "loopback")
	wantError(t, g.do(t, request{path: "/api/v1/ladders", remote: remoteAddr}), http.StatusForbidden, "loopback")
}

func TestNoTranscoder(t *testing.T) {
	f := newFixture(t, "", nil)
	f.publish(t, "live/cam1")
	wantError(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", body: `{"template": "default"}`}),
		http.StatusNotImplemented, "this server does not transcode")
	wantError(t, f.do(t, request{path: "/api/v1/streams/live/cam1/ladder"}), http.StatusNotFound, "no ladder running")
	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/streams/live/cam1/ladder"}), http.StatusNotFound, "no ladder running")
	if raw := body(t, f.do(t, request{path: "/api/v1/streams/live/cam1"})); strings.Contains(raw, "ladder") {
		t.Errorf("stream: %s", raw)
	}
	if b := body(t, f.do(t, request{path: "/api/v1/ladders"})); b != "[]\n" {
		t.Errorf("ladders = %q, want []", b)
	}
	wantError(t, f.do(t, request{path: "/api/v1/capabilities"}), http.StatusServiceUnavailable, "did not probe ffmpeg")
}

func TestListLadders(t *testing.T) {
	f, _ := newLadderFixture(t, "", nil)
	resp := f.do(t, request{path: "/api/v1/ladders"})
	raw := body(t, resp)
	var list []transcoder.Template
	if err := json.Unmarshal([]byte(raw), &list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s: %v", resp.StatusCode, raw, err)
	}
	if len(list) != 2 || list[0].Name != "default" || list[1].Name != "hevc" {
		t.Fatalf("list = %+v", list)
	}
	// Defaults are filled in, and bitrates are numbers.
	r := list[0].Rungs[1]
	if r.Video.Preset != "superfast" || r.Video.GOP != 2*time.Second || r.Audio.Bitrate != 128_000 || list[1].Rungs[0].Video.Preset != "ultrafast" {
		t.Errorf("rung = %+v", r)
	}
	if !strings.Contains(raw, `"bitrate":2800000`) {
		t.Errorf("bitrate is not a number: %s", raw)
	}
	if list[0].Rungs[0].Video.Preset != "" {
		t.Errorf("passthrough rung got defaults: %+v", list[0].Rungs[0])
	}
}

func TestCapabilities(t *testing.T) {
	f, _ := newLadderFixture(t, "", testCaps("libx265", "libvmaf"))
	var v transcoder.CapabilitiesView
	decode(t, f.do(t, request{path: "/api/v1/capabilities"}), http.StatusOK, &v)
	if v.FFmpegVersion != "5.1" || strings.Join(v.VideoCodecs, ",") != "h264,av1,vp9" || strings.Join(v.AudioCodecs, ",") != "aac,opus" {
		t.Errorf("view = %+v", v)
	}
	if v.NotableEncoders["libx265"] || !v.NotableEncoders["libx264"] || v.NotableFilters["libvmaf"] || !v.NotableFilters["drawtext"] {
		t.Errorf("notable = %v %v", v.NotableEncoders, v.NotableFilters)
	}
	if len(v.Encoders) != len(transcoder.NotableEncoders)-1 || v.Encoders[0] != "aac" {
		t.Errorf("encoders = %v", v.Encoders)
	}
}

// The ladder of a stream that ends between Start and Info is still
// reported.
type vanishingLadders struct{ fakeLadders }

func (v *vanishingLadders) Info(string) (transcoder.LadderInfo, bool) {
	return transcoder.LadderInfo{}, false
}
func (v *vanishingLadders) Start(string, *transcoder.Template) error { return nil }

func TestStartLadderStreamGone(t *testing.T) {
	f := newFixtureConfig(t, Config{Ladders: &vanishingLadders{}, TemplateList: testTemplates}, nil)
	f.publish(t, "live/cam1")
	var li transcoder.LadderInfo
	decode(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", body: `{"template": "default"}`}), http.StatusOK, &li)
	if li.Source != "live/cam1" || li.Template != "default" || li.State != transcoder.StateStarting {
		t.Errorf("ladder = %+v", li)
	}
}

// Templates, when set, is used rather than TemplateList.
func TestTemplatesFunc(t *testing.T) {
	fl := newFakeLadders()
	f := newFixtureConfig(t, Config{
		Ladders: fl,
		Templates: func(name string) (*transcoder.Template, bool) {
			if name != "only" {
				return nil, false
			}
			return &transcoder.Template{Name: "only", Rungs: []transcoder.Rung{{Name: "a", Video: transcoder.Video{Codec: "h264", Width: 320, Bitrate: 1}}}}, true
		},
	}, nil)
	f.publish(t, "live/cam1")
	decode(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", body: `{"template": "only"}`}), http.StatusOK, &transcoder.LadderInfo{})
	wantError(t, f.do(t, request{method: http.MethodPut, path: "/api/v1/streams/live/cam1/ladder", body: `{"template": "default"}`}),
		http.StatusBadRequest, `unknown ladder template "default" (there are none)`)
}

func (f *fakeLadders) List() []transcoder.LadderInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]transcoder.LadderInfo, 0, len(f.running))
	for _, li := range f.running {
		out = append(out, li)
	}
	return out
}
