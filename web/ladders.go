package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/transcoder"
)

// LadderControl runs the live transcoding ladders. *transcoder.Manager
// implements it.
type LadderControl interface {
	// Start runs tpl on the live stream name, replacing its ladder if it
	// has one.
	Start(name string, tpl *transcoder.Template) error
	// Stop stops the ladder of name.
	Stop(name string) error
	// Info describes the ladder of name, if one runs.
	Info(name string) (transcoder.LadderInfo, bool)
}

// Errors a LadderControl may wrap, besides the transcoder's own
// (transcoder.ErrNoStream, ErrNoLadder, ErrUnsupportedSource,
// ErrInvalidTemplate, ErrClosed), to choose the
// status the API answers.
var (
	// ErrLadderUnsupported: the stream cannot be transcoded with the
	// template (409).
	ErrLadderUnsupported = errors.New("the stream cannot be transcoded")
	// ErrNoLadder: the stream has no ladder running (404).
	ErrNoLadder = errors.New("no ladder running")
)

// maxLadderBody bounds the body of PUT /api/v1/streams/{name}/ladder.
const maxLadderBody = 64 << 10

// LadderRequest is the body of PUT /api/v1/streams/{name}/ladder.
type LadderRequest struct {
	// Template is the name of the ladder template to run.
	Template string `json:"template"`
}

// errNoTranscoder answers PUT .../ladder on a server without a transcoder
// (GET and DELETE find no ladder there).
func errNoTranscoder() error {
	return apiError(http.StatusNotImplemented, "this server does not transcode: it runs no ladder manager", nil)
}

// getLadder answers GET /api/v1/streams/{name}/ladder.
func (s *Server) getLadder(c echo.Context, name string) error {
	if s.ladders == nil {
		return noLadder(name, nil)
	}
	li, ok := s.ladders.Info(name)
	if !ok {
		return noLadder(name, nil)
	}
	return c.JSON(http.StatusOK, li)
}

// putLadder answers PUT /api/v1/streams/{name}/ladder {"template": NAME}:
// it starts the template on the stream, or replaces the ladder it runs.
func (s *Server) putLadder(c echo.Context, name string) error {
	if s.ladders == nil {
		return errNoTranscoder()
	}
	req, err := readLadderRequest(c.Request().Body)
	if err != nil {
		return err
	}
	if _, err := s.hub.Get(name); err != nil {
		return notFound(name, err)
	}
	tpl, ok := s.template(req.Template)
	if !ok {
		known := "there are none"
		if names := s.templateNames(); len(names) > 0 {
			known = "known: " + strings.Join(names, ", ")
		}
		return apiError(http.StatusBadRequest, fmt.Sprintf("unknown ladder template %q (%s)", req.Template, known), nil)
	}
	if s.caps != nil {
		if err := tpl.Validate(s.caps); err != nil {
			return apiError(http.StatusConflict, fmt.Sprintf("ladder template %q cannot run on this server: %s",
				tpl.Name, strings.ReplaceAll(err.Error(), "\n", "; ")), err)
		}
	}
	full := tpl.WithDefaults()
	if err := s.ladders.Start(name, &full); err != nil {
		return ladderError(name, err)
	}
	s.log.Info("ladder started through the API", "stream", name, "template", tpl.Name, "remote", c.Request().RemoteAddr)
	li, ok := s.ladders.Info(name)
	if !ok {
		// The stream ended at once; report what was started.
		li = transcoder.LadderInfo{Source: name, Template: tpl.Name, State: transcoder.StateStarting, Rungs: []string{}}
	}
	return c.JSON(http.StatusOK, li)
}

// readLadderRequest decodes the body of a PUT .../ladder strictly: one JSON
// object with a template name and no other field.
func readLadderRequest(body io.Reader) (LadderRequest, error) {
	bad := func(msg string, err error) (LadderRequest, error) {
		return LadderRequest{}, apiError(http.StatusBadRequest, msg+`; send {"template": "NAME"}`, err)
	}
	b, err := io.ReadAll(io.LimitReader(body, maxLadderBody+1))
	if err != nil {
		return bad("read body", err)
	}
	if len(b) > maxLadderBody {
		return bad(fmt.Sprintf("body larger than %d bytes", maxLadderBody), nil)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var req LadderRequest
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return bad("empty body", err)
		}
		return bad("invalid body: "+err.Error(), err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad("invalid body: data after the JSON object", err)
	}
	if req.Template == "" {
		return bad("template: must be set", nil)
	}
	return req, nil
}

// deleteLadder answers DELETE /api/v1/streams/{name}/ladder: it stops the
// stream's ladder. The rendition streams end; the source goes on.
func (s *Server) deleteLadder(c echo.Context, name string) error {
	if s.ladders == nil {
		return noLadder(name, nil)
	}
	if _, ok := s.ladders.Info(name); !ok {
		return noLadder(name, nil)
	}
	if err := s.ladders.Stop(name); err != nil {
		return ladderError(name, err)
	}
	s.log.Info("ladder stopped through the API", "stream", name, "remote", c.Request().RemoteAddr)
	return c.NoContent(http.StatusNoContent)
}

// ladderError maps an error of LadderControl to the status a client sees.
func ladderError(name string, err error) error {
	switch {
	case errors.Is(err, ErrNoLadder), errors.Is(err, transcoder.ErrNoLadder):
		return noLadder(name, err)
	case errors.Is(err, transcoder.ErrNoStream), errors.Is(err, stream.ErrNotFound):
		return apiError(http.StatusNotFound, fmt.Sprintf("stream %q is not live: %v", name, err), err)
	case errors.Is(err, ErrLadderUnsupported), errors.Is(err, transcoder.ErrUnsupportedSource):
		return apiError(http.StatusConflict, err.Error(), err)
	case errors.Is(err, transcoder.ErrInvalidTemplate):
		return apiError(http.StatusBadRequest, err.Error(), err)
	case errors.Is(err, transcoder.ErrClosed):
		return apiError(http.StatusServiceUnavailable, err.Error(), err)
	}
	return fmt.Errorf("ladder of %s: %w", name, err)
}

func noLadder(name string, err error) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("stream %q has no ladder running", name), err)
}

// template finds a template by name.
func (s *Server) template(name string) (*transcoder.Template, bool) {
	if s.templates != nil {
		return s.templates(name)
	}
	for _, t := range s.listTemplates() {
		if t.Name == name {
			return &t, true
		}
	}
	return nil, false
}

func (s *Server) listTemplates() []transcoder.Template {
	if s.templateList == nil {
		return nil
	}
	return s.templateList()
}

func (s *Server) templateNames() []string {
	var names []string
	for _, t := range s.listTemplates() {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names
}

// listLadders answers GET /api/v1/ladders with every ladder template, with
// its defaults filled in: the settings a ladder runs with.
func (s *Server) listLadders(c echo.Context) error {
	list := s.listTemplates()
	out := make([]transcoder.Template, 0, len(list))
	for _, t := range list {
		out = append(out, t.WithDefaults())
	}
	return c.JSON(http.StatusOK, out)
}

// capabilities answers GET /api/v1/capabilities with what the server's
// ffmpeg can do.
func (s *Server) capabilities(c echo.Context) error {
	if s.caps == nil {
		return apiError(http.StatusServiceUnavailable, "the ffmpeg capabilities are unknown: this server did not probe ffmpeg", nil)
	}
	return c.JSON(http.StatusOK, s.caps.View())
}
