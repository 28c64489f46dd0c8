package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/stream"
)

// listStreams answers GET /api/v1/streams with every stream, ordered by name.
func (s *Server) listStreams(c echo.Context) error {
	streams := s.hub.Streams()
	infos := make([]stream.Info, 0, len(streams))
	for _, st := range streams {
		infos = append(infos, st.Info())
	}
	return c.JSON(http.StatusOK, infos)
}

// getStream answers GET /api/v1/streams/{name}.
func (s *Server) getStream(c echo.Context) error {
	name, err := streamName(c)
	if err != nil {
		return err
	}
	st, err := s.hub.Get(name)
	if err != nil {
		return notFound(name, err)
	}
	return c.JSON(http.StatusOK, st.Info())
}

// kickStream answers DELETE /api/v1/streams/{name}: it disconnects the
// publisher. The stream then waits out its grace period, as after any
// disconnect, and ends unless the publisher comes back.
func (s *Server) kickStream(c echo.Context) error {
	name, err := streamName(c)
	if err != nil {
		return err
	}
	if _, err := s.hub.Get(name); err != nil {
		return notFound(name, err)
	}
	if err := s.hub.Kick(name); err != nil {
		if errors.Is(err, stream.ErrNotFound) {
			return apiError(http.StatusNotFound, fmt.Sprintf("stream %q has no publisher connected", name), err)
		}
		return fmt.Errorf("kick %s: %w", name, err)
	}
	s.log.Info("publisher kicked through the API", "stream", name, "remote", c.Request().RemoteAddr)
	return c.NoContent(http.StatusNoContent)
}

// streamName returns the {name} part of a /api/v1/streams/{name} path,
// such as "live/cam1", or a 400 error when it is not a valid stream name.
func streamName(c echo.Context) (string, error) {
	raw := c.Param("*")
	name, err := url.PathUnescape(raw)
	if err != nil {
		return "", apiError(http.StatusBadRequest, fmt.Sprintf("invalid stream name %q: bad escape", raw), err)
	}
	if err := stream.ValidateName(name); err != nil {
		return "", apiError(http.StatusBadRequest, err.Error(), err)
	}
	return name, nil
}

func notFound(name string, err error) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("stream %q not found", name), err)
}

// health answers /healthz.
func (s *Server) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
