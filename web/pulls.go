package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/ingest/pull"
	"github.com/mps-dev/mps/stream"
)

// PullControl runs pull sources. *pull.Manager implements it.
type PullControl interface {
	List() []pull.State
	Get(name string) (pull.State, bool)
	// Start fails with pull.ErrInvalid, pull.ErrExists or pull.ErrClosed.
	Start(src pull.Source, origin string) (pull.State, error)
	// Stop fails with pull.ErrNotFound.
	Stop(name string) error
}

// maxPullBody bounds the body of POST /api/v1/pulls.
const maxPullBody = 16 << 10

// PullRequest is the body of POST /api/v1/pulls.
type PullRequest struct {
	// Name is the stream to publish, such as "live/cam9".
	Name string `json:"name"`
	// URL is rtsp(s)://, rtmp(s)://, srt:// or an HLS http(s):// playlist.
	URL string `json:"url"`
	// RTSPTransport is "", "udp" or "tcp", for rtsp:// URLs.
	RTSPTransport string `json:"rtsp_transport,omitempty"`
	// OnDemand must be false: on-demand pulls are not supported yet.
	OnDemand bool `json:"on_demand,omitempty"`
}

func errNoPulls() error {
	return apiError(http.StatusNotImplemented, "this server runs no pull sources", nil)
}

// listPulls answers GET /api/v1/pulls.
func (s *Server) listPulls(c echo.Context) error {
	if s.pulls == nil {
		return c.JSON(http.StatusOK, []pull.State{})
	}
	return c.JSON(http.StatusOK, s.pulls.List())
}

// getPull answers GET /api/v1/pulls/{name}.
func (s *Server) getPull(c echo.Context) error {
	name, err := pullName(c)
	if err != nil {
		return err
	}
	if s.pulls == nil {
		return noPull(name, nil)
	}
	st, ok := s.pulls.Get(name)
	if !ok {
		return noPull(name, nil)
	}
	return c.JSON(http.StatusOK, st)
}

// startPull answers POST /api/v1/pulls {"name": ..., "url": ...}: 201
// with the new pull's state.
func (s *Server) startPull(c echo.Context) error {
	if s.pulls == nil {
		return errNoPulls()
	}
	const hint = `want {"name": "live/cam9", "url": "rtsp://..."}`
	var req PullRequest
	if err := readJSON(c.Request().Body, maxPullBody, &req, hint); err != nil {
		return err
	}
	if req.OnDemand {
		return apiError(http.StatusBadRequest, "on_demand pulls are not supported yet; leave on_demand false", nil)
	}
	st, err := s.pulls.Start(pull.Source{Name: req.Name, URL: req.URL, RTSPTransport: req.RTSPTransport}, pull.OriginAPI)
	switch {
	case errors.Is(err, pull.ErrInvalid):
		return apiError(http.StatusBadRequest, err.Error(), err)
	case errors.Is(err, pull.ErrExists):
		return apiError(http.StatusConflict, fmt.Sprintf("a pull of %q already runs; delete it first", req.Name), err)
	case errors.Is(err, pull.ErrClosed):
		return apiError(http.StatusServiceUnavailable, "the server is shutting down", err)
	case err != nil:
		return err
	}
	s.log.Info("pull started through the API", "pull", st.Name, "url", st.URL, "remote", c.Request().RemoteAddr)
	return c.JSON(http.StatusCreated, st)
}

// stopPull answers DELETE /api/v1/pulls/{name}: the pull stops, its
// session ends, and the stream ends after the hub's grace period.
func (s *Server) stopPull(c echo.Context) error {
	name, err := pullName(c)
	if err != nil {
		return err
	}
	if s.pulls == nil {
		return noPull(name, nil)
	}
	if err := s.pulls.Stop(name); err != nil {
		if errors.Is(err, pull.ErrNotFound) {
			return noPull(name, err)
		}
		return err
	}
	s.log.Info("pull stopped through the API", "pull", name, "remote", c.Request().RemoteAddr)
	return c.NoContent(http.StatusNoContent)
}

func pullName(c echo.Context) (string, error) {
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

func noPull(name string, err error) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("no pull %q", name), err)
}
