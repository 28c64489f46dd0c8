package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/ingest/pull"
	"github.com/mps-dev/mps/livecaptions"
	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/transcoder"
)

// StreamInfo is a stream as the API reports it: the hub's snapshot, plus
// its ladder when one runs.
type StreamInfo struct {
	stream.Info
	Ladder *transcoder.LadderInfo `json:"ladder,omitempty"`
	// Pull is the state of the pull source that feeds the stream, if any.
	Pull *pull.State `json:"pull,omitempty"`
	// Recording is what the stream's recording does, while it records.
	Recording *recorder.Status `json:"recording,omitempty"`
	// Captions is the state of the stream's live captions, while it is
	// captioned.
	Captions *livecaptions.Info `json:"captions,omitempty"`
	// Node is the cluster node the stream lives on (cluster mode), and
	// NodeAddress where that node is reached; Remote marks a stream of
	// another node, of which only the registry's facts are known here.
	Node        string `json:"node,omitempty"`
	NodeAddress string `json:"node_address,omitempty"`
	Remote      bool   `json:"remote,omitempty"`
}

// streamInfo adds the ladder, pull source and recording of st, if any, to
// its snapshot.
func (s *Server) streamInfo(st *stream.Stream) StreamInfo {
	in := StreamInfo{Info: st.Info()}
	if s.cluster != nil {
		in.Node = s.cluster.NodeID()
	}
	if s.ladders != nil {
		if li, ok := s.ladders.Info(in.Name); ok {
			in.Ladder = &li
		}
	}
	if s.pulls != nil {
		if ps, ok := s.pulls.Get(in.Name); ok {
			in.Pull = &ps
		}
	}
	if s.recordings != nil {
		if rs, ok := s.recordings.Status(in.Name); ok {
			in.Recording = &rs
		}
	}
	if s.captions != nil {
		if ci, ok := s.captions.Info(in.Name); ok {
			in.Captions = &ci
		}
	}
	return in
}

// listStreams answers GET /api/v1/streams with every stream, ordered by name.
func (s *Server) listStreams(c echo.Context) error {
	streams := s.hub.Streams()
	infos := make([]StreamInfo, 0, len(streams))
	for _, st := range streams {
		infos = append(infos, s.streamInfo(st))
	}
	infos = append(infos, s.remoteStreams(c.Request().Context())...)
	slices.SortFunc(infos, func(a, b StreamInfo) int { return strings.Compare(a.Name, b.Name) })
	return c.JSON(http.StatusOK, infos)
}

// getStream answers GET /api/v1/streams/{name} and GET on its ladder,
// recording and captions.
func (s *Server) getStream(c echo.Context) error {
	name, sub, err := streamPath(c)
	if err != nil {
		return err
	}
	switch sub {
	case subLadder:
		return s.getLadder(c, name)
	case subRecording:
		return s.getStreamRecording(c, name)
	case subCaptions:
		return s.getCaptions(c, name)
	}
	st, err := s.hub.Get(name)
	if err != nil {
		if e, ok := s.locateRemote(c.Request().Context(), name); ok {
			return c.JSON(http.StatusOK, remoteStreamInfo(e))
		}
		return notFound(name, err)
	}
	return c.JSON(http.StatusOK, s.streamInfo(st))
}

// putStream answers PUT /api/v1/streams/{name}/ladder and .../captions;
// a stream itself cannot be put.
func (s *Server) putStream(c echo.Context) error {
	name, sub, err := streamPath(c)
	if err != nil {
		return err
	}
	switch sub {
	case subLadder:
		return s.putLadder(c, name)
	case subCaptions:
		return s.putCaptions(c, name)
	case subRecording:
		c.Response().Header().Set(echo.HeaderAllow, "GET, POST, DELETE")
		return echo.ErrMethodNotAllowed
	}
	c.Response().Header().Set(echo.HeaderAllow, "GET, DELETE")
	return echo.ErrMethodNotAllowed
}

// postStream answers POST /api/v1/streams/{name}/recording; only the
// recording can be posted.
func (s *Server) postStream(c echo.Context) error {
	name, sub, err := streamPath(c)
	if err != nil {
		return err
	}
	switch sub {
	case subRecording:
		return s.startStreamRecording(c, name)
	case subLadder, subCaptions:
		c.Response().Header().Set(echo.HeaderAllow, "GET, PUT, DELETE")
	default:
		c.Response().Header().Set(echo.HeaderAllow, "GET, DELETE")
	}
	return echo.ErrMethodNotAllowed
}

// deleteStream answers DELETE /api/v1/streams/{name} (kick the
// publisher) and DELETE on its ladder, recording and captions (stop them).
func (s *Server) deleteStream(c echo.Context) error {
	name, sub, err := streamPath(c)
	if err != nil {
		return err
	}
	switch sub {
	case subLadder:
		return s.deleteLadder(c, name)
	case subRecording:
		return s.stopStreamRecording(c, name)
	case subCaptions:
		return s.deleteCaptions(c, name)
	}
	return s.kickStream(c, name)
}

// kickStream disconnects the publisher of name. The stream then waits out
// its grace period, as after any disconnect, and ends unless the publisher
// comes back.
func (s *Server) kickStream(c echo.Context, name string) error {
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

// subLadder is the sub-resource of a stream that is its ladder:
// /api/v1/streams/live/cam1/ladder.
const subLadder = "ladder"

// streamSubresources are the sub-resources a stream path may end with.
var streamSubresources = []string{subLadder, subRecording, subCaptions}

// streamPath splits the {name}[/{sub}] part of a /api/v1/streams/ path,
// such as "live/cam1" or "live/cam1/ladder", into the stream name and the
// sub-resource ("" for the stream itself). A trailing "/ladder",
// "/recording" or "/captions" after a name of two or more parts is that sub-resource. It
// would hide a rung of that name, so rungs must not be named so (see the
// transcoder's reserved rung names). A stream needs an application and a
// name, so "live/ladder" stays the stream of that name. It returns a 400
// error for an invalid stream name.
func streamPath(c echo.Context) (name, sub string, err error) {
	raw := c.Param("*")
	full, err := url.PathUnescape(raw)
	if err != nil {
		return "", "", apiError(http.StatusBadRequest, fmt.Sprintf("invalid stream name %q: bad escape", raw), err)
	}
	for _, sub := range streamSubresources {
		if base, ok := strings.CutSuffix(full, "/"+sub); ok && strings.Contains(base, "/") && stream.ValidateName(base) == nil {
			return base, sub, nil
		}
	}
	if err := stream.ValidateName(full); err != nil {
		return "", "", apiError(http.StatusBadRequest, err.Error(), err)
	}
	return full, "", nil
}

func notFound(name string, err error) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("stream %q not found", name), err)
}

// health answers /healthz.
func (s *Server) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
