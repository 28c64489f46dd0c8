package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/livecaptions"
)

// CaptionControl runs the live captions of streams.
// *livecaptions.Manager implements it.
type CaptionControl interface {
	Start(name string, o livecaptions.Options) error
	Stop(name string) error
	Info(name string) (livecaptions.Info, bool)
}

// subCaptions is the sub-resource of a stream that is its live captions:
// /api/v1/streams/live/cam1/captions.
const subCaptions = "captions"

// maxCaptionsBody bounds the body of PUT /api/v1/streams/{name}/captions.
const maxCaptionsBody = 16 << 10

func errNoCaptions() error {
	return apiError(http.StatusNotImplemented, "this server runs no live captions", nil)
}

func notCaptioned(name string, err error) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("stream %q is not being captioned", name), err)
}

// getCaptions answers GET /api/v1/streams/{name}/captions.
func (s *Server) getCaptions(c echo.Context, name string) error {
	if s.captions == nil {
		return notCaptioned(name, nil)
	}
	in, ok := s.captions.Info(name)
	if !ok {
		return notCaptioned(name, nil)
	}
	return c.JSON(http.StatusOK, in)
}

// putCaptions answers PUT /api/v1/streams/{name}/captions with
// {"engine", "language", "label"} (each optional): it starts captioning
// the stream, or restarts it with other options.
func (s *Server) putCaptions(c echo.Context, name string) error {
	if s.captions == nil {
		return errNoCaptions()
	}
	var o livecaptions.Options
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, maxCaptionsBody+1))
	if err != nil || len(b) > maxCaptionsBody {
		return apiError(http.StatusBadRequest, "body unreadable or too large", err)
	}
	if len(strings.TrimSpace(string(b))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return apiError(http.StatusBadRequest, `invalid body: `+err.Error()+`; send {"engine": "pocketsphinx", "language": "en", "label": "English"}`, err)
		}
	}
	if err := s.captions.Start(name, o); err != nil {
		switch {
		case errors.Is(err, livecaptions.ErrNoStream):
			return notFound(name, err)
		case errors.Is(err, livecaptions.ErrUnknownEngine):
			return apiError(http.StatusBadRequest, err.Error(), err)
		case errors.Is(err, livecaptions.ErrClosed):
			return apiError(http.StatusServiceUnavailable, err.Error(), err)
		}
		return fmt.Errorf("captions of %s: %w", name, err)
	}
	s.log.Info("live captions started through the API", "stream", name, "remote", c.Request().RemoteAddr)
	in, ok := s.captions.Info(name)
	if !ok {
		return notCaptioned(name, nil) // the stream ended at once
	}
	return c.JSON(http.StatusOK, in)
}

// deleteCaptions answers DELETE /api/v1/streams/{name}/captions.
func (s *Server) deleteCaptions(c echo.Context, name string) error {
	if s.captions == nil {
		return notCaptioned(name, nil)
	}
	if err := s.captions.Stop(name); err != nil {
		return notCaptioned(name, err)
	}
	s.log.Info("live captions stopped through the API", "stream", name, "remote", c.Request().RemoteAddr)
	return c.NoContent(http.StatusNoContent)
}
