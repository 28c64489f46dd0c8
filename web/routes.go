package web

import (
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Paths served by the router. The OpenAPI document (api/openapi.yaml) lists
// the same routes; a test keeps the two in step.
const (
	pathHealth  = "/healthz"
	pathMetrics = "/metrics"
	pathAPI     = "/api/v1"
)

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// Only the connection's own address counts: a client cannot claim to
	// be on loopback through X-Forwarded-For.
	e.IPExtractor = echo.ExtractIPDirect()
	e.HTTPErrorHandler = s.handleError
	e.Use(s.authorize)

	e.GET(pathHealth, s.health)
	e.GET(pathMetrics, echo.WrapHandler(promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog: promLogger{s.log},
	})))

	api := e.Group(pathAPI)
	api.GET("/streams", s.listStreams)
	api.GET("/nodes", s.listNodes)
	api.GET("/server", s.getServerInfo)
	// Stream names contain slashes, so one wildcard route per method takes
	// both /streams/{name} and its sub-resources (/streams/{name}/ladder);
	// the handlers tell them apart (see streamPath).
	api.GET("/streams/*", s.getStream)
	api.PUT("/streams/*", s.putStream)
	api.POST("/streams/*", s.postStream)
	api.DELETE("/streams/*", s.deleteStream)
	api.GET("/pulls", s.listPulls)
	api.POST("/pulls", s.startPull)
	api.GET("/pulls/*", s.getPull)
	api.DELETE("/pulls/*", s.stopPull)
	api.GET("/ladders", s.listLadders)
	api.GET("/capabilities", s.capabilities)
	api.GET("/recordings", s.listRecordings)
	api.GET("/recordings/:id", s.getRecording)
	api.DELETE("/recordings/:id", s.deleteRecording)
	api.GET("/recordings/:id/download", s.downloadRecording)
	api.GET("/events", s.listEvents)
	api.GET("/jobs", s.listJobs)
	api.POST("/jobs", s.submitJob)
	api.GET("/jobs/:id", s.getJob)
	api.POST("/jobs/:id/cancel", s.cancelJob)
	api.POST("/jobs/:id/retry", s.retryJob)
	api.GET("/templates", s.listTaskTemplates)
	api.POST("/templates", s.createTaskTemplate)
	api.GET("/templates/:type/:name", s.getTaskTemplate)
	api.PUT("/templates/:type/:name", s.putTaskTemplate)
	api.DELETE("/templates/:type/:name", s.deleteTaskTemplate)
	api.GET("/workflows", s.listWorkflows)
	api.POST("/workflows", s.createWorkflow)
	api.GET("/workflows/:name", s.getWorkflow)
	api.PUT("/workflows/:name", s.putWorkflow)
	api.DELETE("/workflows/:name", s.deleteWorkflow)
	return e
}
