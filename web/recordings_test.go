package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/recorder"
)

// The recorder is what cmd/mps plugs in.
var _ RecordingControl = (*recorder.Recorder)(nil)

// fakeRecorder implements RecordingControl over maps, and records what the
// API asks of it.
type fakeRecorder struct {
	mu      sync.Mutex
	recs    map[string]recorder.Recording
	files   map[string][]byte
	status  map[string]recorder.Status
	live    map[string]bool
	filter  recorder.Filter
	started []recorder.Options
	ranges  []rangeCall
	closed  []string // downloads closed, by id
	export  *recorder.Export
	err     error // returned by Playback and Export when set
}

type rangeCall struct {
	op, name, rendition string
	start, end          time.Time
}

func newFakeRecorder() *fakeRecorder {
	return &fakeRecorder{
		recs:   map[string]recorder.Recording{},
		files:  map[string][]byte{},
		status: map[string]recorder.Status{},
		live:   map[string]bool{"live/cam1": true},
	}
}

func (f *fakeRecorder) List(flt recorder.Filter) (recorder.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = flt
	p := recorder.Page{Recordings: []recorder.Recording{}}
	for _, r := range f.recs {
		if flt.Stream == "" || r.Stream == flt.Stream {
			p.Recordings = append(p.Recordings, r)
		}
	}
	p.Total = len(p.Recordings)
	return p, nil
}

func (f *fakeRecorder) Get(id string) (recorder.Recording, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	if !ok {
		return r, fmt.Errorf("recording %q: %w", id, recorder.ErrNoRecording)
	}
	return r, nil
}

func (f *fakeRecorder) Delete(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[id]
	switch {
	case !ok:
		return fmt.Errorf("recording %q: %w", id, recorder.ErrNoRecording)
	case r.State == recorder.StateRecording:
		return fmt.Errorf("recording %q: %w", id, recorder.ErrBusy)
	}
	delete(f.recs, id)
	return nil
}

func (f *fakeRecorder) OpenDownload(id string) (*recorder.Download, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[id]
	if !ok {
		return nil, fmt.Errorf("recording %q: %w", id, recorder.ErrNoRecording)
	}
	file := &closeRecorder{Reader: bytes.NewReader(b), onClose: func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.closed = append(f.closed, id)
	}}
	return &recorder.Download{File: file, Name: id + ".mp4", ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Size: int64(len(b))}, nil
}

type closeRecorder struct {
	*bytes.Reader
	onClose func()
}

func (c *closeRecorder) Close() error { c.onClose(); return nil }

func (f *fakeRecorder) StartRecording(name string, o recorder.Options) (recorder.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live[name] {
		return recorder.Status{}, fmt.Errorf("record %s: %w", name, recorder.ErrNoStream)
	}
	if o.Format != "" && o.Format != recorder.FormatFMP4 && o.Format != recorder.FormatHLS {
		return recorder.Status{}, fmt.Errorf("%w: format %q", recorder.ErrInvalidOptions, o.Format)
	}
	f.started = append(f.started, o)
	if st, ok := f.status[name]; ok {
		return st, nil
	}
	renditions := o.Renditions
	if len(renditions) == 0 {
		renditions = []string{recorder.RenditionSource}
	}
	st := recorder.Status{Stream: name, Recording: true, Renditions: renditions, Format: recorder.FormatFMP4,
		Trigger: "api", Session: "s1", Current: []recorder.Recording{}, Since: time.Now().UTC()}
	f.status[name] = st
	return st, nil
}

func (f *fakeRecorder) StopRecording(name string) (recorder.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.status[name]
	if !ok {
		return st, fmt.Errorf("stop %s: %w", name, recorder.ErrNotRecording)
	}
	delete(f.status, name)
	st.Recording = false
	return st, nil
}

func (f *fakeRecorder) Status(name string) (recorder.Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.status[name]
	return st, ok
}

func (f *fakeRecorder) Playback(name, rendition string, start, end time.Time) (*recorder.Playback, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ranges = append(f.ranges, rangeCall{"playback", name, rendition, start, end})
	if f.err != nil {
		return nil, f.err
	}
	return &recorder.Playback{VOD: &packager.VOD{SegmentDuration: 2 * time.Second}}, nil
}

func (f *fakeRecorder) Export(name, rendition string, start, end time.Time) (*recorder.Export, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ranges = append(f.ranges, rangeCall{"export", name, rendition, start, end})
	if f.err != nil {
		return nil, f.err
	}
	return f.export, nil
}

func (f *fakeRecorder) lastRange(t *testing.T) rangeCall {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ranges) == 0 {
		t.Fatal("the recorder was not asked for a range")
	}
	return f.ranges[len(f.ranges)-1]
}

// vodCall is what the server handed to the packager's VOD server.
type vodCall struct {
	vod  *packager.VOD
	file string
	path string
}

// newRecordingFixture returns a server over rec whose VOD serving is
// recorded in calls.
func newRecordingFixture(t *testing.T, token string, rec RecordingControl) (*fixture, *[]vodCall) {
	t.Helper()
	f := newFixtureConfig(t, Config{Token: token, Recordings: rec}, nil)
	calls := &[]vodCall{}
	f.srv.serveVOD = func(w http.ResponseWriter, r *http.Request, v *packager.VOD, file string) {
		*calls = append(*calls, vodCall{vod: v, file: file, path: r.URL.Path})
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = io.WriteString(w, "#EXTM3U\n")
	}
	return f, calls
}

func sampleRecording(id, name string) recorder.Recording {
	start := time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC)
	return recorder.Recording{
		ID: id, Stream: name, Rendition: "source", Session: "s1", Seq: 1,
		Format: recorder.FormatFMP4, State: recorder.StateComplete,
		Path: name + "/2025-01-02/150000-source-1.mp4", Start: start, End: start.Add(time.Minute),
		Duration: 60, Size: 1234, Codecs: []string{"h264", "aac"},
		Tracks: []recorder.Track{{Codec: "h264", Width: 640, Height: 360}, {Codec: "aac", SampleRate: 48000, Channels: 2}},
	}
}

const (
	rangeStart = "2025-01-02T15:00:00Z"
	rangeEnd   = "2025-01-02T15:00:30Z"
	rangeQuery = "?start=" + rangeStart + "&end=" + rangeEnd
)

func TestRecordingRoutesWithoutRecorder(t *testing.T) {
	f := newFixture(t, "", nil)
	for _, r := range []request{
		{path: "/api/v1/recordings"},
		{path: "/api/v1/recordings/r1"},
		{method: http.MethodDelete, path: "/api/v1/recordings/r1"},
		{path: "/api/v1/recordings/r1/download"},
		{path: "/api/v1/streams/live/cam1/recording"},
		{method: http.MethodPost, path: "/api/v1/streams/live/cam1/recording"},
		{method: http.MethodDelete, path: "/api/v1/streams/live/cam1/recording"},
		{path: "/recordings/live/cam1/index.m3u8" + rangeQuery},
		{path: "/recordings/live/cam1/export.mp4" + rangeQuery},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			wantError(t, f.do(t, r), http.StatusNotImplemented, "this server does not record")
		})
	}
}

func TestRecordingRoutesNeedTheToken(t *testing.T) {
	f, _ := newRecordingFixture(t, "secret-token", newFakeRecorder())
	wantError(t, f.do(t, request{path: "/api/v1/recordings", remote: remoteAddr}), http.StatusUnauthorized, "missing bearer token")
	wantError(t, f.do(t, request{method: http.MethodPost, path: "/api/v1/streams/live/cam1/recording", remote: remoteAddr}),
		http.StatusUnauthorized, "missing bearer token")
	resp := f.do(t, request{path: "/api/v1/recordings", remote: remoteAddr, token: "secret-token"})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with the token: status %d", resp.StatusCode)
	}
}

func TestListRecordings(t *testing.T) {
	rec := newFakeRecorder()
	rec.recs["r1"] = sampleRecording("r1", "live/cam1")
	f, _ := newRecordingFixture(t, "", rec)

	var page recorder.Page
	decode(t, f.do(t, request{path: "/api/v1/recordings?stream=live/cam1&from=2025-01-02T14:00:00Z&to=2025-01-02T16:00:00%2B01:00&limit=10&offset=5"}),
		http.StatusOK, &page)
	if page.Total != 1 || len(page.Recordings) != 1 || !reflect.DeepEqual(page.Recordings[0], rec.recs["r1"]) {
		t.Errorf("page = %+v", page)
	}
	want := recorder.Filter{
		Stream: "live/cam1",
		From:   time.Date(2025, 1, 2, 14, 0, 0, 0, time.UTC),
		To:     time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC),
		Limit:  10, Offset: 5,
	}
	if got := rec.filter; got.Stream != want.Stream || !got.From.Equal(want.From) || !got.To.Equal(want.To) || got.Limit != 10 || got.Offset != 5 {
		t.Errorf("filter = %+v, want %+v", got, want)
	}

	resp := f.do(t, request{path: "/api/v1/recordings?stream=live/none"})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(b, `"recordings":[]`) {
		t.Errorf("empty page: %d %s, want an empty list", resp.StatusCode, b)
	}

	for query, want := range map[string]string{
		"from=yesterday": `from "yesterday": not an RFC 3339 time`,
		"to=2025-01-02":  `to "2025-01-02": not an RFC 3339 time`,
		"from=2025-01-02T15:00:00Z&to=2025-01-02T14:00:00Z": "is before from",
		"limit=0":             `limit "0": want a whole number from 1 to 1000`,
		"limit=1001":          "from 1 to 1000",
		"limit=ten":           `limit "ten"`,
		"offset=-1":           `offset "-1": want a whole number of at least 0`,
		"stream=live/../x":    "stream: invalid stream name",
		"stream=live/cam%201": "invalid stream name",
	} {
		wantError(t, f.do(t, request{path: "/api/v1/recordings?" + query}), http.StatusBadRequest, want)
	}
}

func TestGetAndDeleteRecording(t *testing.T) {
	rec := newFakeRecorder()
	rec.recs["r1"] = sampleRecording("r1", "live/cam1")
	busy := sampleRecording("r2", "live/cam1")
	busy.State = recorder.StateRecording
	rec.recs["r2"] = busy
	f, _ := newRecordingFixture(t, "", rec)

	var got recorder.Recording
	decode(t, f.do(t, request{path: "/api/v1/recordings/r1"}), http.StatusOK, &got)
	if !reflect.DeepEqual(got, rec.recs["r1"]) {
		t.Errorf("recording = %+v", got)
	}
	wantError(t, f.do(t, request{path: "/api/v1/recordings/r9"}), http.StatusNotFound, `recording "r9": no such recording`)
	wantError(t, f.do(t, request{path: "/api/v1/recordings/.."}), http.StatusBadRequest, "invalid recording id")
	wantError(t, f.do(t, request{path: "/api/v1/recordings/a%2Fb"}), http.StatusBadRequest, "invalid recording id")

	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/recordings/r2"}), http.StatusConflict, "being written")
	if resp := f.do(t, request{method: http.MethodDelete, path: "/api/v1/recordings/r1"}); resp.StatusCode != http.StatusNoContent {
		t.Errorf("delete: status %d, want 204", resp.StatusCode)
	}
	wantError(t, f.do(t, request{method: http.MethodDelete, path: "/api/v1/recordings/r1"}), http.StatusNotFound, "no such recording")
	if !strings.Contains(f.logs.String(), "recording deleted through the API") {
		t.Errorf("the deletion is not logged:\n%s", f.logs.String())
	}
}

func TestDownloadRecording(t *testing.T) {
	rec := newFakeRecorder()
	content := []byte("0123456789abcdef")
	rec.files["r1"] = content
	f, _ := newRecordingFixture(t, "", rec)

	resp := f.do(t, request{path: "/api/v1/recordings/r1/download"})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || b != string(content) {
		t.Fatalf("download: %d %q", resp.StatusCode, b)
	}
	h := resp.Header
	if h.Get("Content-Type") != "video/mp4" || h.Get("Accept-Ranges") != "bytes" || h.Get("Content-Length") != "16" {
		t.Errorf("headers %v", h)
	}
	if got := h.Get("Content-Disposition"); got != `attachment; filename=r1.mp4` {
		t.Errorf("Content-Disposition = %q", got)
	}

	resp = f.do(t, request{path: "/api/v1/recordings/r1/download", header: http.Header{"Range": {"bytes=4-7"}}})
	if b := body(t, resp); resp.StatusCode != http.StatusPartialContent || b != "4567" {
		t.Errorf("range: %d %q, want 206 4567", resp.StatusCode, b)
	}
	if got := resp.Header.Get("Content-Range"); got != "bytes 4-7/16" {
		t.Errorf("Content-Range = %q", got)
	}
	resp = f.do(t, request{path: "/api/v1/recordings/r1/download", header: http.Header{"Range": {"bytes=100-"}}})
	if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: status %d, want 416", resp.StatusCode)
	}
	rec.mu.Lock()
	if len(rec.closed) != 3 {
		t.Errorf("downloads closed %d times, want 3", len(rec.closed))
	}
	rec.mu.Unlock()

	wantError(t, f.do(t, request{path: "/api/v1/recordings/r9/download"}), http.StatusNotFound, "no such recording")
}

func TestStreamRecording(t *testing.T) {
	rec := newFakeRecorder()
	f, _ := newRecordingFixture(t, "", rec)
	const path = "/api/v1/streams/live/cam1/recording"

	wantError(t, f.do(t, request{path: path}), http.StatusNotFound, `stream "live/cam1" is not recording`)

	var st recorder.Status
	decode(t, f.do(t, request{method: http.MethodPost, path: path}), http.StatusCreated, &st)
	if st.Stream != "live/cam1" || !st.Recording || !reflect.DeepEqual(st.Renditions, []string{"source"}) {
		t.Errorf("status = %+v", st)
	}
	decode(t, f.do(t, request{method: http.MethodPost, path: path, body: `{"renditions": ["all"], "format": "hls"}`}), http.StatusOK, &st)
	if got := rec.started[len(rec.started)-1]; !reflect.DeepEqual(got, recorder.Options{Renditions: []string{"all"}, Format: "hls"}) {
		t.Errorf("options = %+v", got)
	}
	decode(t, f.do(t, request{path: path}), http.StatusOK, &st)
	if !st.Recording {
		t.Errorf("GET status = %+v", st)
	}

	decode(t, f.do(t, request{method: http.MethodDelete, path: path}), http.StatusOK, &st)
	if st.Recording || st.Stream != "live/cam1" {
		t.Errorf("after DELETE: %+v, want recording false", st)
	}
	wantError(t, f.do(t, request{method: http.MethodDelete, path: path}), http.StatusNotFound, "is not recording")
	if logs := f.logs.String(); !strings.Contains(logs, "recording started through the API") || !strings.Contains(logs, "recording stopped through the API") {
		t.Errorf("start and stop are not logged:\n%s", logs)
	}
}

func TestStreamRecordingErrors(t *testing.T) {
	f, _ := newRecordingFixture(t, "", newFakeRecorder())
	const path = "/api/v1/streams/live/cam1/recording"
	for _, c := range []struct {
		r      request
		status int
		want   string
	}{
		{request{method: http.MethodPost, path: "/api/v1/streams/live/cam9/recording"}, http.StatusNotFound, "no such live stream"},
		{request{method: http.MethodPost, path: path, body: `{"format": "avi"}`}, http.StatusBadRequest, "invalid recording options"},
		{request{method: http.MethodPost, path: path, body: `{"formats": "hls"}`}, http.StatusBadRequest, `unknown field "formats"`},
		{request{method: http.MethodPost, path: path, body: `{"format": "hls"} {}`}, http.StatusBadRequest, "data after the JSON object"},
		{request{method: http.MethodPost, path: path, body: `[`}, http.StatusBadRequest, "invalid body"},
		{request{method: http.MethodPost, path: path, body: strings.Repeat(" ", maxRecordingBody+1)}, http.StatusBadRequest, "body larger than"},
		{request{method: http.MethodPost, path: "/api/v1/streams/live/../recording"}, http.StatusBadRequest, "invalid stream name"},
		{request{method: http.MethodPut, path: path}, http.StatusMethodNotAllowed, "allowed: GET, POST, DELETE"},
		{request{method: http.MethodPost, path: "/api/v1/streams/live/cam1"}, http.StatusMethodNotAllowed, "allowed: GET, DELETE"},
		{request{method: http.MethodPost, path: "/api/v1/streams/live/cam1/ladder"}, http.StatusMethodNotAllowed, "allowed: GET, PUT, DELETE"},
	} {
		wantError(t, f.do(t, c.r), c.status, c.want)
	}
	// "live/recording" is a stream, not the recording of "live".
	wantError(t, f.do(t, request{path: "/api/v1/streams/live/recording"}), http.StatusNotFound, `stream "live/recording" not found`)
}

func TestRecordingPlayback(t *testing.T) {
	rec := newFakeRecorder()
	f, calls := newRecordingFixture(t, "api-token", rec)

	// Like live playback: no token, other origins allowed.
	resp := f.do(t, request{path: "/recordings/live/cam1/index.m3u8" + rangeQuery, remote: remoteAddr,
		header: http.Header{"Origin": {"https://player.example"}}})
	if b := body(t, resp); resp.StatusCode != http.StatusOK || b != "#EXTM3U\n" {
		t.Fatalf("index.m3u8: %d %q", resp.StatusCode, b)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
	}
	want := rangeCall{"playback", "live/cam1", "source",
		time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC), time.Date(2025, 1, 2, 15, 0, 30, 0, time.UTC)}
	if got := rec.lastRange(t); got != want {
		t.Errorf("Playback(%+v), want %+v", got, want)
	}
	if len(*calls) != 1 || (*calls)[0].file != "index.m3u8" || (*calls)[0].vod == nil {
		t.Fatalf("ServeVOD calls = %+v", *calls)
	}

	for _, file := range []string{"manifest.mpd", "video_720p.m3u8", "seg_3.m4s"} {
		resp := f.do(t, request{path: "/recordings/live/cam1/" + file + "?start=2025-01-02T16:00:00%2B01:00&end=2025-01-02T15:00:00.5Z&rendition=720p"})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", file, resp.StatusCode)
		}
		if got := (*calls)[len(*calls)-1].file; got != file {
			t.Errorf("ServeVOD file %q, want %q", got, file)
		}
		want := rangeCall{"playback", "live/cam1", "720p",
			time.Date(2025, 1, 2, 15, 0, 0, 0, time.UTC), time.Date(2025, 1, 2, 15, 0, 0, 5e8, time.UTC)}
		if got := rec.lastRange(t); !got.start.Equal(want.start) || !got.end.Equal(want.end) || got.rendition != "720p" {
			t.Errorf("Playback(%+v), want %+v", got, want)
		}
	}

	resp = f.do(t, request{method: http.MethodOptions, path: "/recordings/live/cam1/index.m3u8"})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Methods") == "" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	wantError(t, f.do(t, request{method: http.MethodPost, path: "/recordings/live/cam1/index.m3u8" + rangeQuery}),
		http.StatusMethodNotAllowed, "allowed: GET, HEAD, OPTIONS")
}

func TestRecordingPlaybackBadRequests(t *testing.T) {
	rec := newFakeRecorder()
	f, calls := newRecordingFixture(t, "", rec)
	for path, want := range map[string]string{
		"/recordings/live/cam1/index.m3u8":                                            "start: missing; give an RFC 3339 time",
		"/recordings/live/cam1/index.m3u8?start=" + rangeStart:                        "end: missing",
		"/recordings/live/cam1/index.m3u8?start=noon&end=" + rangeEnd:                 `start "noon": not an RFC 3339 time`,
		"/recordings/live/cam1/index.m3u8?start=" + rangeStart + "&end=1700000":       `end "1700000": not an RFC 3339 time`,
		"/recordings/live/cam1/index.m3u8?start=" + rangeEnd + "&end=" + rangeStart:   "end " + rangeStart + " must be after start " + rangeEnd,
		"/recordings/live/cam1/index.m3u8?start=" + rangeStart + "&end=" + rangeStart: "must be after start",
		"/recordings/live/cam1/export.mp4?start=" + rangeEnd + "&end=" + rangeStart:   "must be after start",
		"/recordings/../../etc/index.m3u8" + rangeQuery:                               "invalid stream name",
		"/recordings/live/../../etc/passwd" + rangeQuery:                              "invalid stream name",
		"/recordings/live/..%2F..%2Fetc/index.m3u8" + rangeQuery:                      "invalid stream name",
		"/recordings/index.m3u8" + rangeQuery:                                         "invalid stream name",
		"/recordings/live/cam1/" + rangeQuery:                                         "no file after /recordings/live/cam1/",
		"/recordings/live/cam1/index.m3u8" + rangeQuery + "&rendition=..%2Fx":         `rendition "../x"`,
		"/recordings/live/cam1/index.m3u8" + rangeQuery + "&rendition=..":             `rendition ".."`,
	} {
		wantError(t, f.do(t, request{path: path}), http.StatusBadRequest, want)
	}
	if len(rec.ranges) != 0 || len(*calls) != 0 {
		t.Errorf("bad requests reached the recorder (%v) or the packager (%v)", rec.ranges, *calls)
	}
}

func TestRecordingPlaybackErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		want   string
	}{
		{fmt.Errorf("no recordings of live/cam9: %w", recorder.ErrNoStream), http.StatusNotFound, "no recordings of live/cam9"},
		{fmt.Errorf("live/cam1: %w", recorder.ErrNothingInRange), http.StatusNotFound, "nothing was recorded in range"},
		{fmt.Errorf("%w: longer than 168h", recorder.ErrInvalidRange), http.StatusBadRequest, "longer than 168h"},
		{fmt.Errorf("%w at noon", recorder.ErrRangeTooComplex), http.StatusUnprocessableEntity, "change of codec parameters"},
		{recorder.ErrClosed, http.StatusServiceUnavailable, "recorder closed"},
		{errors.New("disk on fire"), http.StatusInternalServerError, "internal server error"},
	} {
		rec := newFakeRecorder()
		rec.err = c.err
		f, calls := newRecordingFixture(t, "", rec)
		for _, file := range []string{"index.m3u8", "export.mp4"} {
			wantError(t, f.do(t, request{path: "/recordings/live/cam1/" + file + rangeQuery}), c.status, c.want)
		}
		if len(*calls) != 0 {
			t.Errorf("%v: the packager was called", c.err)
		}
		if c.status == http.StatusInternalServerError && !strings.Contains(f.logs.String(), "disk on fire") {
			t.Errorf("the unexpected error is not logged:\n%s", f.logs.String())
		}
	}
}

func TestRecordingExportHeaders(t *testing.T) {
	rec := newFakeRecorder()
	cutStart := time.Date(2025, 1, 2, 14, 59, 58, 500_000_000, time.UTC)
	cutEnd := time.Date(2025, 1, 2, 15, 0, 29, 966_666_667, time.UTC)
	rec.export = &recorder.Export{Start: cutStart, End: cutEnd, Size: 123456}
	f, calls := newRecordingFixture(t, "", rec)

	resp := f.do(t, request{method: http.MethodHead, path: "/recordings/live/cam1/export.mp4" + rangeQuery + "&rendition=720p"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := resp.Header
	for k, want := range map[string]string{
		"Content-Type":        "video/mp4",
		"Content-Length":      "123456",
		"Content-Disposition": "attachment; filename=live_cam1_20250102T145958Z.mp4",
		"X-Mps-Start":         "2025-01-02T14:59:58.5Z",
		"X-Mps-End":           "2025-01-02T15:00:29.966666667Z",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := h.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-MPS-Start") || !strings.Contains(got, "X-MPS-End") {
		t.Errorf("Access-Control-Expose-Headers = %q: players cannot read the cut", got)
	}
	if got := rec.lastRange(t); got.op != "export" || got.rendition != "720p" || got.name != "live/cam1" {
		t.Errorf("Export(%+v)", got)
	}
	if len(*calls) != 0 {
		t.Errorf("export went to the packager: %+v", *calls)
	}
}

// TestOpenAPIRecordingSchemas checks the schemas of the recording and
// event types against their JSON, like TestOpenAPISchemasMatchJSON.
func TestOpenAPIRecordingSchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	types := map[string]reflect.Type{
		"Recording":        reflect.TypeFor[recorder.Recording](),
		"RecordingTrack":   reflect.TypeFor[recorder.Track](),
		"RecordingPage":    reflect.TypeFor[recorder.Page](),
		"RecordingStatus":  reflect.TypeFor[recorder.Status](),
		"RecordingOptions": reflect.TypeFor[recorder.Options](),
		"Event":            reflect.TypeFor[eventType](),
		"EventList":        reflect.TypeFor[EventList](),
	}
	schemaOf := map[reflect.Type]string{}
	for name, typ := range types {
		schemaOf[typ] = name
	}
	for name, typ := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		checkSchema(t, name, schema, typ, schemaOf)
	}
}
