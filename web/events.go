package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mps-dev/mps/events"
)

// EventList is the body of GET /api/v1/events.
type EventList struct {
	// Events are the kept events that match, oldest first.
	Events []events.Event `json:"events"`
}

// listEvents answers GET /api/v1/events?since=SEQ&type=PREFIX&stream=NAME
// with the recent events: those numbered above since, whose type starts
// with the prefix and whose stream is name. A client polls with since set
// to the last seq it saw.
func (s *Server) listEvents(c echo.Context) error {
	if s.events == nil {
		return apiError(http.StatusNotImplemented, "this server keeps no events", nil)
	}
	q := c.QueryParams()
	var since uint64
	if raw := q.Get("since"); raw != "" {
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return apiError(http.StatusBadRequest, "since "+strconv.Quote(raw)+": want the seq of an event, a whole number of at least 0", err)
		}
		since = n
	}
	typ, name := q.Get("type"), q.Get("stream")
	keep := func(e events.Event) bool {
		return strings.HasPrefix(e.Type, typ) && (name == "" || e.Stream == name)
	}
	return c.JSON(http.StatusOK, EventList{Events: s.events.Recent(since, keep)})
}
