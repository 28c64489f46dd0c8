// Package web is MPS's HTTP front: the admin API (/api/v1/...), /healthz
// and /metrics, the playback of recordings (/recordings/...) and the files
// of VOD jobs (/outputs/...), with every other path handed to the playback
// handler (the packager's LL-HLS and DASH routes).
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/transcoder"
	"github.com/mps-dev/mps/web/ui"
)

// Config configures a Server.
type Config struct {
	// Hub is the stream hub the API reports on and acts on. Required.
	Hub *stream.Hub
	// Playback serves every path outside the API, such as
	// /live/cam1/index.m3u8. Nil answers those paths with 404.
	Playback http.Handler
	// Token is the bearer token the API and /metrics require. Empty means
	// they answer loopback clients only.
	Token string
	// Logger receives the request log (at debug level) and server errors.
	// Nil means slog.Default().
	Logger *slog.Logger

	// Ladders starts, stops and describes the live transcoding ladders
	// (a *transcoder.Manager). Nil means this server does not transcode:
	// the ladder routes answer 501.
	Ladders LadderControl
	// Templates finds a ladder template by name. Nil means it is looked up
	// in TemplateList.
	Templates func(name string) (*transcoder.Template, bool)
	// TemplateList lists the ladder templates, for GET /api/v1/ladders.
	// Nil means there are none.
	TemplateList func() []transcoder.Template
	// Capabilities is what the server's ffmpeg can do, for GET
	// /api/v1/capabilities; templates are checked against it before they
	// start. Nil means ffmpeg was not probed (the route answers 503).
	Capabilities *transcoder.Capabilities

	// Recordings records streams and serves the recordings (a
	// *recorder.Recorder). Nil (an untyped nil: not a nil pointer in the
	// interface) means this server does not record: the recording routes
	// and /recordings/ playback answer 501.
	Recordings RecordingControl
	// Captions runs the live captions of streams (a *livecaptions.Manager).
	// Nil answers the captions routes with 501.
	Captions CaptionControl
	// Cluster, in cluster mode, lists the other nodes' streams with the
	// local ones and answers GET /api/v1/nodes. Nil: a single node.
	Cluster ClusterView
	// Info is what GET /api/v1/server answers.
	Info ServerInfo
	// Presign, when set, returns a presigned URL of an object in the
	// media bucket ("recordings/...", "jobs/...") that exists: recording
	// downloads redirect there, and so do job outputs this node has no
	// copy of.
	Presign func(ctx context.Context, key string) (string, bool)
	// Events is the event bus GET /api/v1/events reads. Nil answers that
	// route with 501.
	Events *events.Bus

	// Jobs runs VOD jobs and keeps their templates and workflows (a
	// *vod.Engine). Nil (an untyped nil: not a nil pointer in the
	// interface) means this server runs no jobs: the job, template and
	// workflow routes and /outputs/ answer 501.
	Jobs JobControl
	// JobsDir is the jobs folder (jobs.dir), whose files /outputs/ serves.
	// Empty answers /outputs/ with 501.
	JobsDir string

	// WebRTC answers WHIP (/whip/{name}) and WHEP (/whep/{name}) requests
	// (an *ingest/webrtc.Server). Nil (untyped) answers them with 501.
	WebRTC WebRTC

	// Pulls runs pull sources (an *ingest/pull.Manager). Nil (untyped)
	// lists none and answers POST /api/v1/pulls with 501.
	Pulls PullControl
}

// Server is the HTTP handler of an MPS server.
type Server struct {
	hub      *stream.Hub
	token    string
	log      *slog.Logger
	echo     *echo.Echo
	playback http.Handler
	registry *prometheus.Registry
	handler  http.Handler

	ladders      LadderControl
	templates    func(name string) (*transcoder.Template, bool)
	templateList func() []transcoder.Template
	caps         *transcoder.Capabilities

	recordings RecordingControl
	captions   CaptionControl
	cluster    ClusterView
	presign    func(ctx context.Context, key string) (string, bool)
	info       ServerInfo
	events     *events.Bus
	// recordingPlayback serves /recordings/ paths.
	recordingPlayback http.Handler
	console           http.Handler
	// serveVOD serves a file of a recorded range; packager.ServeVOD.
	serveVOD func(w http.ResponseWriter, r *http.Request, v *packager.VOD, file string)

	jobs    JobControl
	jobsDir string
	// outputPlayback serves /outputs/ paths.
	outputPlayback http.Handler

	webrtc WebRTC
	pulls  PullControl
}

// New builds the handler. Its metrics registry is its own: several servers
// can live in one process.
func New(cfg Config) (*Server, error) {
	if cfg.Hub == nil {
		return nil, errors.New("web: Config.Hub is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	playback := cfg.Playback
	if playback == nil {
		playback = http.NotFoundHandler()
	}
	s := &Server{
		hub:      cfg.Hub,
		token:    cfg.Token,
		log:      log,
		playback: withCORS(playback),

		ladders:      cfg.Ladders,
		templates:    cfg.Templates,
		templateList: cfg.TemplateList,
		caps:         cfg.Capabilities,

		recordings: cfg.Recordings,
		captions:   cfg.Captions,
		cluster:    cfg.Cluster,
		presign:    cfg.Presign,
		info:       cfg.Info,
		events:     cfg.Events,
		serveVOD:   packager.ServeVOD,

		jobs:    cfg.Jobs,
		jobsDir: cfg.JobsDir,

		webrtc: cfg.WebRTC,
		pulls:  cfg.Pulls,
	}
	s.recordingPlayback = withCORS(http.HandlerFunc(s.serveRecordings))
	s.console = ui.Handler()
	s.outputPlayback = withCORS(http.HandlerFunc(s.serveOutputs))
	reg, err := newRegistry(cfg.Hub, cfg.Ladders, cfg.Cluster)
	if err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	s.registry = reg
	s.echo = s.routes()
	s.handler = withRequestLog(log, http.HandlerFunc(s.dispatch))
	return s, nil
}

// Registry is the Prometheus registry behind /metrics. Other components may
// register their own collectors on it.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// ServeHTTP serves the API, health, metrics and playback.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// dispatch sends API paths to the router, /recordings/ paths to the
// playback of recordings, /outputs/ paths to the files of jobs and
// everything else to live playback, so that the API's JSON errors and the
// playback handler's own answers never mix.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	switch {
	case isAPIPath(r.URL.Path):
		s.echo.ServeHTTP(w, r)
	case isRecordingPath(r.URL.Path):
		s.recordingPlayback.ServeHTTP(w, r)
	case isOutputPath(r.URL.Path):
		s.outputPlayback.ServeHTTP(w, r)
	case isWebRTCPath(r.URL.Path):
		s.serveWebRTC(w, r)
	case ui.IsPath(r.URL.Path):
		s.console.ServeHTTP(w, r)
	default:
		s.playback.ServeHTTP(w, r)
	}
}

// isAPIPath reports whether path belongs to the router rather than to
// playback.
func isAPIPath(path string) bool {
	return path == pathHealth || path == pathMetrics || path == "/api" || strings.HasPrefix(path, "/api/")
}
