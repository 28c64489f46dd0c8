package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// ServerInfo is what GET /api/v1/server answers: the server's version
// and how its services are reached, for tools such as the web console
// that show publish URLs.
type ServerInfo struct {
	Version string `json:"version"`
	// Node is the cluster node id, in cluster mode.
	Node string `json:"node,omitempty"`
	// RTMP, SRT and RTSP are the listen addresses of the enabled ingests
	// ("" when off); a host left empty means every interface.
	RTMP string `json:"rtmp"`
	SRT  string `json:"srt"`
	RTSP string `json:"rtsp"`
	// WebRTC says whether WHIP and WHEP are on.
	WebRTC bool `json:"webrtc"`
	// Jobs, Recording and Captions say whether those features run.
	Jobs      bool `json:"jobs"`
	Recording bool `json:"recording"`
	Captions  bool `json:"captions"`
}

// getServerInfo answers GET /api/v1/server.
func (s *Server) getServerInfo(c echo.Context) error {
	return c.JSON(http.StatusOK, s.info)
}
