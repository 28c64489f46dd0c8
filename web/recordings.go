package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/stream"
)

// RecordingControl records live streams and serves what was recorded.
// *recorder.Recorder implements it.
type RecordingControl interface {
	// List returns one page of the recordings that f selects.
	List(f recorder.Filter) (recorder.Page, error)
	// Get returns one recording.
	Get(id string) (recorder.Recording, error)
	// Delete deletes a recording's files.
	Delete(id string) error
	// OpenDownload opens a recording's file for reading.
	OpenDownload(id string) (*recorder.Download, error)
	// StartRecording records the live stream name; it is a no-op when it
	// records already.
	StartRecording(name string, o recorder.Options) (recorder.Status, error)
	// StopRecording stops recording name.
	StopRecording(name string) (recorder.Status, error)
	// Status reports the recording of name; ok is false when it records
	// nothing.
	Status(name string) (st recorder.Status, ok bool)
	// Playback makes a VOD presentation of what was recorded of a
	// rendition of name from start to end.
	Playback(name, rendition string, start, end time.Time) (*recorder.Playback, error)
	// Export prepares an MP4 of what was recorded of a rendition of name
	// from start to end, cut on keyframes.
	Export(name, rendition string, start, end time.Time) (*recorder.Export, error)
}

// Paths and names of the recordings API and playback.
const (
	// pathRecordings starts the playback paths of recordings:
	// /recordings/{name}/index.m3u8?start=..&end=..
	pathRecordings = "/recordings/"
	// fileExport is the playback file that is an MP4 export of the range.
	fileExport = "export.mp4"
	// subRecording is the sub-resource of a stream that is its recording:
	// /api/v1/streams/live/cam1/recording.
	subRecording = "recording"
)

// maxRecordingBody bounds the body of POST /api/v1/streams/{name}/recording.
const maxRecordingBody = 64 << 10

// Bounds of the limit parameter of GET /api/v1/recordings.
const maxRecordingsLimit = 1000

// timeExample shows the expected form of time parameters in errors.
const timeExample = "2006-01-02T15:04:05Z"

// errNoRecorder answers every recording route on a server without a
// recorder.
func errNoRecorder() error {
	return apiError(http.StatusNotImplemented, msgNoRecorder, nil)
}

const msgNoRecorder = "this server does not record"

// recorderStatus maps an error of RecordingControl to the status a client
// sees, or 0 for an unexpected error.
func recorderStatus(err error) int {
	switch {
	case errors.Is(err, recorder.ErrNoStream), errors.Is(err, recorder.ErrNotRecording),
		errors.Is(err, recorder.ErrNoRecording), errors.Is(err, recorder.ErrNothingInRange),
		errors.Is(err, stream.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, recorder.ErrInvalidRange), errors.Is(err, recorder.ErrInvalidOptions),
		errors.Is(err, stream.ErrInvalidName):
		return http.StatusBadRequest
	case errors.Is(err, recorder.ErrBusy):
		return http.StatusConflict
	case errors.Is(err, recorder.ErrRangeTooComplex):
		return http.StatusUnprocessableEntity
	case errors.Is(err, recorder.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return 0
}

// recordingError turns an error of RecordingControl into an API error;
// an unexpected one becomes a logged 500 about what.
func recordingError(what string, err error) error {
	if code := recorderStatus(err); code != 0 {
		return apiError(code, err.Error(), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// listRecordings answers GET /api/v1/recordings?stream=&from=&to=&limit=&offset=.
func (s *Server) listRecordings(c echo.Context) error {
	if s.recordings == nil {
		return errNoRecorder()
	}
	f, err := recordingFilter(c.QueryParams())
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error(), err)
	}
	page, err := s.recordings.List(f)
	if err != nil {
		return recordingError("list recordings", err)
	}
	if page.Recordings == nil {
		page.Recordings = []recorder.Recording{}
	}
	return c.JSON(http.StatusOK, page)
}

// recordingFilter reads the query of GET /api/v1/recordings.
func recordingFilter(q url.Values) (recorder.Filter, error) {
	var f recorder.Filter
	var err error
	if f.Stream = q.Get("stream"); f.Stream != "" {
		if err := stream.ValidateName(f.Stream); err != nil {
			return f, fmt.Errorf("stream: %w", err)
		}
	}
	if f.From, err = timeParam(q, "from", false); err != nil {
		return f, err
	}
	if f.To, err = timeParam(q, "to", false); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, fmt.Errorf("to %s is before from %s", q.Get("to"), q.Get("from"))
	}
	if f.Limit, err = intParam(q, "limit", 1, maxRecordingsLimit); err != nil {
		return f, err
	}
	if f.Offset, err = intParam(q, "offset", 0, -1); err != nil {
		return f, err
	}
	return f, nil
}

// timeParam reads an RFC 3339 time from q; an absent optional one is the
// zero time.
func timeParam(q url.Values, key string, required bool) (time.Time, error) {
	raw := q.Get(key)
	if raw == "" {
		if required {
			return time.Time{}, fmt.Errorf("%s: missing; give an RFC 3339 time, like %s", key, timeExample)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: not an RFC 3339 time, like %s", key, raw, timeExample)
	}
	return t, nil
}

// intParam reads an integer from lo to hi (hi < 0: no upper bound); an
// absent one is 0.
func intParam(q url.Values, key string, lo, hi int) (int, error) {
	raw := q.Get(key)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || (hi >= 0 && n > hi) {
		if hi < 0 {
			return 0, fmt.Errorf("%s %q: want a whole number of at least %d", key, raw, lo)
		}
		return 0, fmt.Errorf("%s %q: want a whole number from %d to %d", key, raw, lo, hi)
	}
	return n, nil
}

// recordingID reads the {id} of a /api/v1/recordings/{id} path.
func recordingID(c echo.Context) (string, error) {
	raw := c.Param("id")
	id, err := url.PathUnescape(raw)
	if err != nil || id == "" || id == "." || id == ".." || len(id) > 200 || strings.ContainsAny(id, "/\\\x00") {
		return "", apiError(http.StatusBadRequest, fmt.Sprintf("invalid recording id %q", raw), err)
	}
	return id, nil
}

// getRecording answers GET /api/v1/recordings/{id}.
func (s *Server) getRecording(c echo.Context) error {
	if s.recordings == nil {
		return errNoRecorder()
	}
	id, err := recordingID(c)
	if err != nil {
		return err
	}
	rec, err := s.recordings.Get(id)
	if err != nil {
		return recordingError("recording "+id, err)
	}
	return c.JSON(http.StatusOK, rec)
}

// deleteRecording answers DELETE /api/v1/recordings/{id}.
func (s *Server) deleteRecording(c echo.Context) error {
	if s.recordings == nil {
		return errNoRecorder()
	}
	id, err := recordingID(c)
	if err != nil {
		return err
	}
	if err := s.recordings.Delete(id); err != nil {
		return recordingError("delete recording "+id, err)
	}
	s.log.Info("recording deleted through the API", "id", id, "remote", c.Request().RemoteAddr)
	return c.NoContent(http.StatusNoContent)
}

// downloadRecording answers GET /api/v1/recordings/{id}/download with the
// recording's file, with Range support.
func (s *Server) downloadRecording(c echo.Context) error {
	if s.recordings == nil {
		return errNoRecorder()
	}
	id, err := recordingID(c)
	if err != nil {
		return err
	}
	if s.presign != nil {
		if rec, err := s.recordings.Get(id); err == nil && rec.Format == recorder.FormatFMP4 {
			if u, ok := s.presign(c.Request().Context(), "recordings/"+rec.Path); ok {
				return c.Redirect(http.StatusFound, u)
			}
		}
	}
	dl, err := s.recordings.OpenDownload(id)
	if err != nil {
		return recordingError("download recording "+id, err)
	}
	defer dl.File.Close()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "video/mp4")
	h.Set(echo.HeaderContentDisposition, attachment(dl.Name))
	http.ServeContent(c.Response(), c.Request(), dl.Name, dl.ModTime, dl.File)
	return nil
}

// attachment is a Content-Disposition that saves the body as name.
func attachment(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}

// getStreamRecording answers GET /api/v1/streams/{name}/recording.
func (s *Server) getStreamRecording(c echo.Context, name string) error {
	if s.recordings == nil {
		return errNoRecorder()
	}
	st, ok := s.recordings.Status(name)
	if !ok || !st.Recording {
		return notRecording(name)
	}
	return c.JSON(http.StatusOK, st)
}

// startStreamRecording answers POST /api/v1/streams/{name}/recording with
// an optional body {"renditions": [...], "format": "..."}: 201 when it
// starts recording, 200 when it recorded already.
func (s *Server) startStreamRecording(c echo.Context, name string) error {
	if s.recordings == nil {
		return errNoRecorder()
	}
	opts, err := readRecordingOptions(c.Request().Body)
	if err != nil {
		return err
	}
	code := http.StatusCreated
	if before, ok := s.recordings.Status(name); ok && before.Recording {
		code = http.StatusOK
	}
	st, err := s.recordings.StartRecording(name, opts)
	if err != nil {
		return recordingError("start recording "+name, err)
	}
	if code == http.StatusCreated {
		s.log.Info("recording started through the API", "stream", name,
			"renditions", st.Renditions, "format", st.Format, "remote", c.Request().RemoteAddr)
	}
	return c.JSON(code, st)
}

// stopStreamRecording answers DELETE /api/v1/streams/{name}/recording.
func (s *Server) stopStreamRecording(c echo.Context, name string) error {
	if s.recordings == nil {
		return errNoRecorder()
	}
	st, err := s.recordings.StopRecording(name)
	if err != nil {
		if errors.Is(err, recorder.ErrNotRecording) {
			return notRecording(name)
		}
		return recordingError("stop recording "+name, err)
	}
	s.log.Info("recording stopped through the API", "stream", name, "remote", c.Request().RemoteAddr)
	return c.JSON(http.StatusOK, st)
}

func notRecording(name string) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("stream %q is not recording", name), recorder.ErrNotRecording)
}

// readRecordingOptions decodes the optional body of POST .../recording
// strictly: nothing, or one JSON object with known fields.
func readRecordingOptions(body io.Reader) (recorder.Options, error) {
	bad := func(msg string, err error) (recorder.Options, error) {
		return recorder.Options{}, apiError(http.StatusBadRequest,
			msg+`; send nothing, or {"renditions": ["source"], "format": "fmp4"}`, err)
	}
	b, err := io.ReadAll(io.LimitReader(body, maxRecordingBody+1))
	if err != nil {
		return bad("read body", err)
	}
	if len(b) > maxRecordingBody {
		return bad(fmt.Sprintf("body larger than %d bytes", maxRecordingBody), nil)
	}
	if strings.TrimSpace(string(b)) == "" {
		return recorder.Options{}, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var opts recorder.Options
	if err := dec.Decode(&opts); err != nil {
		return bad("invalid body: "+err.Error(), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("invalid body: data after the JSON object", err)
	}
	return opts, nil
}

// isRecordingPath reports whether path is a playback path of recordings.
func isRecordingPath(p string) bool {
	return p == strings.TrimSuffix(pathRecordings, "/") || strings.HasPrefix(p, pathRecordings)
}

// rangeRequest is a parsed playback request of recordings:
// /recordings/{name}/{file}?start=..&end=..&rendition=..
type rangeRequest struct {
	name, file, rendition string
	start, end            time.Time
}

// parseRangeRequest reads a playback request of recordings. Its error is
// for the client (400).
func parseRangeRequest(r *http.Request) (rangeRequest, error) {
	dir, file := path.Split(strings.TrimPrefix(r.URL.Path, pathRecordings))
	rr := rangeRequest{name: strings.TrimSuffix(dir, "/"), file: file}
	if err := stream.ValidateName(rr.name); err != nil {
		return rr, err
	}
	if file == "" || file == "." || file == ".." {
		return rr, fmt.Errorf("no file after %s%s/: ask for index.m3u8, manifest.mpd or %s", pathRecordings, rr.name, fileExport)
	}
	q := r.URL.Query()
	var err error
	if rr.start, err = timeParam(q, "start", true); err != nil {
		return rr, err
	}
	if rr.end, err = timeParam(q, "end", true); err != nil {
		return rr, err
	}
	if !rr.end.After(rr.start) {
		return rr, fmt.Errorf("end %s must be after start %s", q.Get("end"), q.Get("start"))
	}
	rr.rendition = q.Get("rendition")
	if rr.rendition == "" {
		rr.rendition = recorder.RenditionSource
	}
	if strings.Contains(rr.rendition, "/") || stream.ValidateName(rr.rendition) != nil {
		return rr, fmt.Errorf("rendition %q: want source or a rung name such as 720p", rr.rendition)
	}
	return rr, nil
}

// serveRecordings serves /recordings/{name}/{file}?start=..&end=..: the
// HLS and DASH of what was recorded in the range, and its MP4 export. Like
// live playback, it needs no token.
func (s *Server) serveRecordings(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set(echo.HeaderAllow, "GET, HEAD, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; allowed: GET, HEAD, OPTIONS", r.Method, r.URL.Path))
		return
	}
	if s.recordings == nil {
		writeError(w, http.StatusNotImplemented, msgNoRecorder)
		return
	}
	rr, err := parseRangeRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if rr.file == fileExport {
		s.serveExport(w, r, rr)
		return
	}
	pb, err := s.recordings.Playback(rr.name, rr.rendition, rr.start, rr.end)
	if err != nil {
		s.writeRecordingError(w, r, err)
		return
	}
	defer pb.Close()
	s.serveVOD(w, r, pb.VOD, rr.file)
}

// serveExport answers /recordings/{name}/export.mp4 with an MP4 of the
// range. X-MPS-Start and X-MPS-End give the actual cut: from the last
// keyframe at or before start to just before end.
func (s *Server) serveExport(w http.ResponseWriter, r *http.Request, rr rangeRequest) {
	ex, err := s.recordings.Export(rr.name, rr.rendition, rr.start, rr.end)
	if err != nil {
		s.writeRecordingError(w, r, err)
		return
	}
	defer ex.Close()
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Range, Content-Type")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Disposition, Date, X-MPS-Start, X-MPS-End")
	h.Set("Content-Type", "video/mp4")
	h.Set("Content-Disposition", attachment(exportName(rr.name, ex.Start)))
	h.Set("Content-Length", strconv.FormatInt(ex.Size, 10))
	h.Set("Cache-Control", "no-cache")
	h.Set("X-MPS-Start", ex.Start.UTC().Format(time.RFC3339Nano))
	h.Set("X-MPS-End", ex.End.UTC().Format(time.RFC3339Nano))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if n, err := ex.WriteTo(w); err != nil {
		// The status is sent: all that can be done is to stop.
		s.log.Debug("export interrupted", "stream", rr.name, "rendition", rr.rendition,
			"written", n, "size", ex.Size, "remote", r.RemoteAddr, "error", err)
	}
}

// exportName is the file name a browser saves an export as:
// live_cam1_20250102T150405Z.mp4.
func exportName(name string, start time.Time) string {
	return strings.ReplaceAll(name, "/", "_") + "_" + start.UTC().Format("20060102T150405Z") + ".mp4"
}

// writeRecordingError answers a failed Playback or Export.
func (s *Server) writeRecordingError(w http.ResponseWriter, r *http.Request, err error) {
	code := recorderStatus(err)
	if code == 0 {
		s.log.Error("recording playback failed", "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, "internal server error")
		return
	}
	writeError(w, code, err.Error())
}

// writeError writes the JSON error body of the API outside the router.
func writeError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: msg, Code: code})
}
