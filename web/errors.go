package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// ErrorBody is the JSON body of every API error.
type ErrorBody struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
}

// apiError is an error with the status and message a client sees; cause
// is kept for errors.Is and the log.
func apiError(code int, msg string, cause error) error {
	return &echo.HTTPError{Code: code, Message: msg, Internal: cause}
}

// handleError writes err as {"error": ..., "code": ...}.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	body := s.errorBody(err, c)
	var werr error
	if c.Request().Method == http.MethodHead {
		werr = c.NoContent(body.Code)
	} else {
		werr = c.JSON(body.Code, body)
	}
	if werr != nil {
		s.log.Debug("write error response", "path", c.Request().URL.Path, "error", werr)
	}
}

func (s *Server) errorBody(err error, c echo.Context) ErrorBody {
	r := c.Request()
	var he *echo.HTTPError
	if !errors.As(err, &he) {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		return ErrorBody{Error: "internal server error", Code: http.StatusInternalServerError}
	}
	switch {
	case he.Code == http.StatusNotFound && he.Message == echo.ErrNotFound.Message:
		return ErrorBody{Error: fmt.Sprintf("no API endpoint %s", r.URL.Path), Code: he.Code}
	case he.Code == http.StatusMethodNotAllowed:
		msg := fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)
		if allow := c.Response().Header().Get(echo.HeaderAllow); allow != "" {
			msg += "; allowed: " + allow
		}
		return ErrorBody{Error: msg, Code: he.Code}
	}
	msg, ok := he.Message.(string)
	if !ok {
		msg = http.StatusText(he.Code)
	}
	return ErrorBody{Error: msg, Code: he.Code}
}
