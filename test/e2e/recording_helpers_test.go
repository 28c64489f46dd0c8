package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-dev/mps/test/testutil"
)

// Helpers of the recorder's end-to-end tests (recording_test.go and
// recording_disk_test.go).

// recGOP is the publishers' GOP (-g 30 at 30 fps): a recording starts and
// ends on keyframes, so times are compared within one GOP.
const recGOP = time.Second

// recFPS is the publishers' frame rate.
const recFPS = 30

// recordingConfig is the servers' configuration for recording tests: short
// segments, a short grace period (so a stream and its recording end soon
// after the publisher leaves), and recordings below dir. rec is more YAML
// inside the recording: section, indented by two spaces ("  rollover: 4s\n").
func recordingConfig(dir, rec string) string {
	return `
log:
  level: debug
hub:
  grace_period: 1s
packager:
  segment_duration: 1s
  part_duration: 200ms
  playlist_segments: 6
  linger: 60s
recording:
  dir: ` + strconv.Quote(dir) + `
  fragment_duration: 1s
` + rec
}

// recRuleAll is a recording: rule that records every stream of live.
const recRuleAll = `  rules:
    - match: "live/*"
`

// apiRecording is a Recording of the recordings API.
type apiRecording struct {
	ID        string    `json:"id"`
	Stream    string    `json:"stream"`
	Rendition string    `json:"rendition"`
	Session   string    `json:"session"`
	Seq       int       `json:"seq"`
	Format    string    `json:"format"`
	State     string    `json:"state"`
	Path      string    `json:"path"`
	Finalized string    `json:"finalized"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Duration  float64   `json:"duration"`
	Size      int64     `json:"size"`
	Codecs    []string  `json:"codecs"`
	Repaired  bool      `json:"repaired"`
	Error     string    `json:"error"`
}

func (r apiRecording) String() string {
	return fmt.Sprintf("{id %s stream %s seq %d state %s path %s start %s end %s duration %.3f size %d codecs %v repaired %v error %q}",
		r.ID, r.Stream, r.Seq, r.State, r.Path, r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"), r.Duration, r.Size, r.Codecs, r.Repaired, r.Error)
}

type apiRecPage struct {
	Recordings []apiRecording `json:"recordings"`
	Total      int            `json:"total"`
	NextOffset int            `json:"next_offset"`
}

// apiRecStatus is what GET /api/v1/streams/{name}/recording answers.
type apiRecStatus struct {
	Stream     string         `json:"stream"`
	Recording  bool           `json:"recording"`
	Renditions []string       `json:"renditions"`
	Format     string         `json:"format"`
	Trigger    string         `json:"trigger"`
	Session    string         `json:"session"`
	Current    []apiRecording `json:"current"`
	Since      time.Time      `json:"since"`
	Error      string         `json:"error"`
}

// apiEvent is one event of GET /api/v1/events.
type apiEvent struct {
	Seq    uint64         `json:"seq"`
	Type   string         `json:"type"`
	Time   time.Time      `json:"time"`
	Stream string         `json:"stream"`
	Data   map[string]any `json:"data"`
}

func (e apiEvent) String() string {
	return fmt.Sprintf("#%d %s %s %s %v", e.Seq, e.Time.Format("15:04:05.000"), e.Type, e.Stream, e.Data)
}

// num returns a numeric data field of the event.
func (e apiEvent) num(key string) (float64, bool) {
	v, ok := e.Data[key]
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// str returns a string data field of the event.
func (e apiEvent) str(key string) string {
	s, _ := e.Data[key].(string)
	return s
}

// recordings lists the recordings of one stream (every stream with "")
// through the API, oldest first as the API orders them.
func (s *server) recordings(t *testing.T, stream string) []apiRecording {
	t.Helper()
	q := url.Values{}
	if stream != "" {
		q.Set("stream", stream)
	}
	q.Set("limit", "1000")
	code, b := s.api(t, http.MethodGet, "/api/v1/recordings?"+q.Encode(), apiToken)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/recordings?%s: %d %.300s", q.Encode(), code, b)
	}
	var p apiRecPage
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("GET /api/v1/recordings: %v: %.500s", err, b)
	}
	return p.Recordings
}

// recordingByID returns one recording through the API, and the status.
func (s *server) recordingByID(t *testing.T, id string) (apiRecording, int) {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/recordings/"+url.PathEscape(id), apiToken)
	var r apiRecording
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("GET /api/v1/recordings/%s: %v: %.500s", id, err, b)
		}
	}
	return r, code
}

// recStatus returns GET /api/v1/streams/{name}/recording.
func (s *server) recStatus(t *testing.T, name string) (apiRecStatus, int, []byte) {
	t.Helper()
	code, b := s.api(t, http.MethodGet, "/api/v1/streams/"+name+"/recording", apiToken)
	var st apiRecStatus
	if code/100 == 2 {
		if err := json.Unmarshal(b, &st); err != nil {
			t.Errorf("recording status of %s: %v: %.300s", name, err, b)
		}
	}
	return st, code, b
}

// events returns the events after seq of a type prefix and stream ("" for any).
func (s *server) events(t *testing.T, since uint64, typ, stream string) []apiEvent {
	t.Helper()
	q := url.Values{}
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	if typ != "" {
		q.Set("type", typ)
	}
	if stream != "" {
		q.Set("stream", stream)
	}
	code, b := s.api(t, http.MethodGet, "/api/v1/events?"+q.Encode(), apiToken)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/events?%s: %d %.300s", q.Encode(), code, b)
	}
	var r struct {
		Events []apiEvent `json:"events"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("GET /api/v1/events: %v: %.500s", err, b)
	}
	// The filters are the server's; check them anyway.
	var out []apiEvent
	for _, e := range r.Events {
		if e.Seq > since && strings.HasPrefix(e.Type, typ) && (stream == "" || e.Stream == stream) {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an event of type typ on stream after seq.
func waitEvent(t *testing.T, s *server, since uint64, typ, stream string, timeout time.Duration) apiEvent {
	t.Helper()
	var got apiEvent
	waitFor(t, timeout, fmt.Sprintf("a %s event of %s in GET /api/v1/events", typ, stream), func() bool {
		for _, e := range s.events(t, since, typ, stream) {
			if e.Type == typ {
				got = e
				return true
			}
		}
		return false
	})
	return got
}

// waitRecordings polls the stream's recordings until cond holds.
func waitRecordings(t *testing.T, s *server, stream string, timeout time.Duration, what string, cond func([]apiRecording) bool) []apiRecording {
	t.Helper()
	var last []apiRecording
	deadline := time.Now().Add(timeout)
	for {
		last = s.recordings(t, stream)
		if cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; recordings of %s now: %v", timeout, what, stream, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRecordingsDone waits until stream has at least n recordings and none
// is being written, and returns them sorted by session and seq.
func waitRecordingsDone(t *testing.T, s *server, stream string, n int, timeout time.Duration) []apiRecording {
	t.Helper()
	recs := waitRecordings(t, s, stream, timeout, fmt.Sprintf("%d finished recordings", n), func(rs []apiRecording) bool {
		if len(rs) < n {
			return false
		}
		for _, r := range rs {
			if r.State == "recording" {
				return false
			}
		}
		return true
	})
	sortRecordings(recs)
	return recs
}

func sortRecordings(recs []apiRecording) {
	sort.SliceStable(recs, func(i, j int) bool {
		if !recs[i].Start.Equal(recs[j].Start) {
			return recs[i].Start.Before(recs[j].Start)
		}
		return recs[i].Seq < recs[j].Seq
	})
}

// anyRecording reports whether one of recs has the state.
func anyRecording(recs []apiRecording, state string) bool {
	return slices.ContainsFunc(recs, func(r apiRecording) bool { return r.State == state })
}

// recFile is the archive's file on disk.
func recFile(dir string, r apiRecording) string {
	return filepath.Join(dir, filepath.FromSlash(r.Path))
}

// stopServer stops s with SIGTERM in the middle of a test (to restart it
// on the same folders) and checks that it exits cleanly.
func stopServer(t *testing.T, s *server) {
	t.Helper()
	s.stop()
	if s.exitErr != nil {
		t.Errorf("mps exited with %v after SIGTERM; want a clean exit", s.exitErr)
	}
	s.killed = true // the cleanup must not count this exit as a crash
}

// rfc formats a time as the playback routes take it.
func rfc(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }

// rangeQuery is the ?start=..&end=.. of a playback URL.
func rangeQuery(start, end time.Time) string {
	return "start=" + url.QueryEscape(rfc(start)) + "&end=" + url.QueryEscape(rfc(end))
}

// ---------------------------------------------------------------------------
// ffprobe

// mediaInfo is what ffprobe says about a file: its format duration, and
// each stream's codec, start and duration.
type mediaInfo struct {
	FormatName string
	Duration   float64
	Streams    []mediaStream
}

type mediaStream struct {
	Index     int
	CodecType string
	CodecName string
	StartTime float64
	Duration  float64
}

func (m mediaInfo) stream(kind string) (mediaStream, bool) {
	for _, s := range m.Streams {
		if s.CodecType == kind {
			return s, true
		}
	}
	return mediaStream{}, false
}

func parseF(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// probeMedia runs ffprobe on a file or URL.
func probeMedia(t *testing.T, u string) mediaInfo {
	t.Helper()
	testutil.RequireTools(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-v", "error",
		"-show_entries", "format=format_name,duration:stream=index,codec_type,codec_name,start_time,duration",
		"-of", "json", u)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", u, err, stderr.String())
	}
	var raw struct {
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
		} `json:"format"`
		Streams []struct {
			Index     int    `json:"index"`
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			StartTime string `json:"start_time"`
			Duration  string `json:"duration"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", u, err, out)
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("ffprobe %s stderr:\n%s", u, testutil.Tail(s, 10))
	}
	m := mediaInfo{FormatName: raw.Format.FormatName, Duration: parseF(raw.Format.Duration)}
	for _, s := range raw.Streams {
		m.Streams = append(m.Streams, mediaStream{Index: s.Index, CodecType: s.CodecType, CodecName: s.CodecName,
			StartTime: parseF(s.StartTime), Duration: parseF(s.Duration)})
	}
	return m
}

// packet is one packet as ffprobe reads it.
type packet struct {
	Kind     string // video or audio
	PTS, DTS float64
	Duration float64
	Key      bool
}

// probePackets lists a file's packets in file order.
func probePackets(t *testing.T, u string) []packet {
	t.Helper()
	testutil.RequireTools(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-v", "error",
		"-show_entries", "packet=stream_index,pts_time,dts_time,duration_time,flags:stream=index,codec_type",
		"-of", "json", u)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v\n%s", u, err, stderr.String())
	}
	var raw struct {
		Packets []struct {
			StreamIndex int    `json:"stream_index"`
			PTS         string `json:"pts_time"`
			DTS         string `json:"dts_time"`
			Duration    string `json:"duration_time"`
			Flags       string `json:"flags"`
		} `json:"packets"`
		Streams []struct {
			Index     int    `json:"index"`
			CodecType string `json:"codec_type"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("ffprobe packets %s: %v", u, err)
	}
	kinds := map[int]string{}
	for _, s := range raw.Streams {
		kinds[s.Index] = s.CodecType
	}
	var pkts []packet
	for _, p := range raw.Packets {
		pkts = append(pkts, packet{Kind: kinds[p.StreamIndex], PTS: parseF(p.PTS), DTS: parseF(p.DTS),
			Duration: parseF(p.Duration), Key: strings.Contains(p.Flags, "K")})
	}
	return pkts
}

// trackSpan is the first and last presentation times of one kind of
// packet, the end being the last packet's time plus its duration.
type trackSpan struct {
	Packets    int
	First, End float64
	FirstKey   bool
}

func spanOf(pkts []packet, kind string) trackSpan {
	var sp trackSpan
	first := true
	for _, p := range pkts {
		if p.Kind != kind || math.IsNaN(p.PTS) {
			continue
		}
		d := p.Duration
		if math.IsNaN(d) {
			d = 0
		}
		if first {
			sp.First, sp.End, sp.FirstKey = p.PTS, p.PTS+d, p.Key
			first = false
		}
		sp.First = math.Min(sp.First, p.PTS)
		sp.End = math.Max(sp.End, p.PTS+d)
		sp.Packets++
	}
	return sp
}

// ---------------------------------------------------------------------------
// HTTP

// rawRequest sends a request with path exactly as given (no client cleans
// or re-escapes it) and returns the status, the headers and the body.
func rawRequest(t *testing.T, addr, method, path string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, addr)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, resp.Header, body
}

// getWith GETs u with extra headers.
func getWith(t *testing.T, u string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", u, err)
	}
	return resp.StatusCode, resp.Header, b
}

// topLevelBoxes lists the types of an MP4 file's top-level boxes.
func topLevelBoxes(b []byte) ([]string, error) {
	boxes, err := mp4Boxes(b)
	var out []string
	for _, x := range boxes {
		out = append(out, x.Type)
	}
	return out, err
}

// ---------------------------------------------------------------------------
// Files

// treeSnapshot maps each file and folder below root, except those below
// skip, to its size, mode and modification time.
func treeSnapshot(t *testing.T, root, skip string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != "" && (p == skip || strings.HasPrefix(p, skip+string(filepath.Separator))) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		snap[p] = fmt.Sprintf("%d %v %d", info.Size(), info.Mode(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// fileSize returns the size of a file, -1 when it is missing.
func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func absDiff(a, b float64) float64 { return math.Abs(a - b) }

func secs(d time.Duration) float64 { return d.Seconds() }

// videoFramesReceived returns the server's count of video frames received on
// a live stream, 0 when unknown.
func (s *server) videoFramesReceived(t *testing.T, name string) uint64 {
	t.Helper()
	st, ok := s.stream(t, name)
	if !ok {
		return 0
	}
	for _, tr := range st.Tracks {
		if tr.Kind == "video" {
			return tr.Frames
		}
	}
	return 0
}
