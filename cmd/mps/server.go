package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mps-dev/mps/cluster"
	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/events"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/ingest/pull"
	"github.com/mps-dev/mps/ingest/rtmp"
	"github.com/mps-dev/mps/ingest/rtsp"
	"github.com/mps-dev/mps/ingest/srt"
	"github.com/mps-dev/mps/livecaptions"
	"github.com/mps-dev/mps/liveqc"
	"github.com/mps-dev/mps/packager"
	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/transcoder"
	"github.com/mps-dev/mps/vod"
	"github.com/mps-dev/mps/web"
)

// shutdownTimeout bounds how long in-flight HTTP requests may take to
// finish once the server is asked to stop.
const shutdownTimeout = 5 * time.Second

// server is one running MPS: the hub with its packager, the RTMP listener
// and the HTTP listener.
type server struct {
	log         *slog.Logger
	hub         *stream.Hub
	packager    *packager.Packager
	transcoding *transcoding
	events      *events.Bus
	recorder    *recorder.Recorder
	captions    *livecaptions.Manager
	cluster     *cluster.Cluster // nil on a single node
	store       *objectStore
	stopUploads func()
	qc          *liveqc.Manager
	jobs        *vod.Engine  // nil when jobs are disabled
	rtmp        *rtmp.Server // nil when RTMP is disabled
	srt         *srt.Server  // nil when SRT is disabled
	rtsp        *rtsp.Server // nil when RTSP is disabled
	stopWebRTC  func()
	pulls       *pull.Manager
	http        *http.Server
	httpLn      net.Listener
	// cancelRequests cancels the context of every HTTP request, so that
	// blocking playlist requests return at shutdown.
	cancelRequests context.CancelFunc
	httpDone       chan error
}

// startServer starts every component of cfg and returns once all of them
// listen. On error, whatever was started is stopped again.
func startServer(cfg *config.Config, log *slog.Logger) (_ *server, err error) {
	s := &server{log: log}
	defer func() {
		if err != nil {
			s.close()
		}
	}()

	if s.store, err = startStorage(context.Background(), cfg, log); err != nil {
		return nil, err
	}
	s.hub = stream.NewHub(hubConfig(cfg.Hub, log))
	if s.cluster, err = startCluster(context.Background(), cfg, s.hub, log); err != nil {
		return nil, err
	}
	s.transcoding, err = startTranscoding(cfg, s.hub, log)
	if err != nil {
		return nil, err
	}
	engines := speechEngines(cfg, log)
	s.captions = startLiveCaptions(cfg, s.hub, engines, log)
	pcfg := packagerConfig(cfg.Packager, log)
	pcfg.Ladders = s.transcoding.manager
	pcfg.Captions = s.captions
	s.packager = packager.New(s.hub, pcfg)
	s.events = events.NewBus(0)
	s.events.LogTo(log)
	publishStreamEvents(s.hub, s.events)
	s.recorder, err = startRecorder(cfg, s.hub, s.transcoding.manager, s.events, s.store.recordingMirror(), log)
	if err != nil {
		return nil, err
	}
	s.jobs, err = startJobs(context.Background(), cfg, s.transcoding.caps, s.recorder, s.events, engines, s.cluster, s.store, log)
	if err != nil {
		return nil, err
	}
	var jobs web.JobControl
	if s.jobs != nil {
		jobs = s.jobs
		s.stopUploads = s.store.uploadJobOutputs(s.events, cfg.Jobs.Dir, log)
	}

	s.qc = liveqc.New(liveqc.Config{Hub: s.hub, Events: s.events, FFmpeg: cfg.Transcoder.FFmpeg, Logger: log})
	publishHooks := onPublishAll(s.transcoding.onPublish, recordParam(s.recorder, log), captionRules(cfg, s.captions, log),
		liveQCRules(cfg, s.qc, log))
	wrtc, stopWebRTC, err := startWebRTC(cfg, s.hub, s.transcoding.admit, publishHooks, log)
	if err != nil {
		return nil, err
	}
	s.stopWebRTC = stopWebRTC
	if s.pulls, err = startPull(cfg, s.hub, s.transcoding.admit, publishHooks, log); err != nil {
		return nil, err
	}
	api, err := web.New(web.Config{
		WebRTC:       wrtc,
		Hub:          s.hub,
		Playback:     clusterPlayback(s.cluster, cfg, s.transcoding.serveThumbnails(s.packager)),
		Token:        cfg.API.Token,
		Logger:       log,
		Ladders:      s.transcoding.manager,
		Templates:    cfg.Ladder,
		TemplateList: func() []transcoder.Template { return cfg.Ladders },
		Capabilities: s.transcoding.caps,
		Recordings:   s.recorder,
		Captions:     s.captions,
		Cluster:      clusterView(s.cluster),
		Presign:      s.store.presigner(cfg.Storage.S3.Presign),
		Info:         s.info(cfg),
		Events:       s.events,
		Jobs:         jobs,
		JobsDir:      cfg.Jobs.Dir,
		Pulls:        s.pulls,
	})
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if err := registerRecorderMetrics(api.Registry(), s.recorder); err != nil {
		return nil, err
	}
	if err := registerSpoolMetrics(api.Registry(), s.store); err != nil {
		return nil, err
	}

	if cfg.RTMP.Enabled {
		s.rtmp = &rtmp.Server{
			Addr:      cfg.RTMP.Address,
			Hub:       s.hub,
			Auth:      authPolicy(cfg.Applications),
			Logger:    log,
			Admit:     s.transcoding.admit,
			OnPublish: publishHooks,
		}
		if err := s.rtmp.Initialize(); err != nil {
			s.rtmp = nil
			return nil, err
		}
	}

	if s.srt, err = startSRT(cfg, s.hub, s.transcoding.admit, publishHooks, log); err != nil {
		return nil, err
	}
	if s.rtsp, err = startRTSP(cfg, s.hub, s.transcoding.admit, publishHooks, log); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", cfg.HTTP.Address, err)
	}
	s.httpLn = ln
	reqCtx, cancel := context.WithCancel(context.Background())
	s.cancelRequests = cancel
	s.http = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.httpDone = make(chan error, 1)
	go func() { s.httpDone <- s.http.Serve(ln) }()

	s.logReady(cfg)
	return s, nil
}

// info is what GET /api/v1/server tells of this server.
func (s *server) info(cfg *config.Config) web.ServerInfo {
	in := web.ServerInfo{Version: version, WebRTC: cfg.WebRTC.Enabled, Jobs: s.jobs != nil, Recording: s.recorder != nil,
		Captions: s.captions != nil}
	if s.cluster != nil {
		in.Node = s.cluster.NodeID()
	}
	if cfg.RTMP.Enabled {
		in.RTMP = cfg.RTMP.Address
	}
	if cfg.SRT.Enabled {
		in.SRT = cfg.SRT.Address
	}
	if cfg.RTSP.Enabled {
		in.RTSP = cfg.RTSP.Address
	}
	return in
}

// logReady logs the addresses actually bound, which differ from the
// configured ones when a port is 0.
func (s *server) logReady(cfg *config.Config) {
	attrs := []any{"http", s.httpLn.Addr().String()}
	if s.rtmp != nil {
		attrs = append(attrs, "rtmp", s.rtmp.ListenAddr().String())
	} else {
		attrs = append(attrs, "rtmp", "disabled")
	}
	if s.srt != nil {
		attrs = append(attrs, "srt", s.srt.ListenAddr().String())
	}
	if s.rtsp != nil {
		attrs = append(attrs, "rtsp", s.rtsp.ListenAddr().String())
	}
	apiAccess := "bearer token"
	if cfg.API.Token == "" {
		apiAccess = "loopback clients only (no api.token)"
	}
	attrs = append(attrs, "api_access", apiAccess)
	s.log.Info("mps ready", attrs...)
}

// HTTPAddr is the address the HTTP listener is bound to.
func (s *server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// RTMPAddr is the address the RTMP listener is bound to, or nil.
func (s *server) RTMPAddr() net.Addr {
	if s.rtmp == nil {
		return nil
	}
	return s.rtmp.ListenAddr()
}

// run serves until ctx ends or the HTTP listener fails, then shuts down.
func (s *server) run(ctx context.Context) error {
	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("mps stopping", "reason", context.Cause(ctx))
	case err := <-s.httpDone:
		s.httpDone <- err
		serveErr = fmt.Errorf("http server: %w", err)
		s.log.Error("http server failed", "error", err)
	}
	s.close()
	s.log.Info("mps stopped")
	return serveErr
}

// close stops the components in order: no new publishers, then no new
// requests (in-flight ones get shutdownTimeout), then packaging, then the
// hub. It is safe on a partly started server.
func (s *server) close() {
	if s.pulls != nil {
		s.pulls.Close()
	}
	if s.rtmp != nil {
		s.rtmp.Close()
	}
	s.srt.Close()
	if s.rtsp != nil {
		s.rtsp.Close()
	}
	if s.stopWebRTC != nil {
		s.stopWebRTC()
	}
	if s.http != nil {
		s.cancelRequests()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := s.http.Shutdown(ctx); err != nil {
			s.log.Warn("http shutdown", "error", err)
			_ = s.http.Close()
		}
		cancel()
		if err := <-s.httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Debug("http serve ended", "error", err)
		}
	} else if s.httpLn != nil {
		_ = s.httpLn.Close()
	}
	s.transcoding.close()
	if s.captions != nil {
		s.captions.Close()
	}
	if s.qc != nil {
		s.qc.Close()
	}
	if s.recorder != nil {
		s.recorder.Close()
	}
	// After the recorder: the recordings it closed may trigger workflows.
	if s.jobs != nil {
		s.jobs.Close()
	}
	if s.stopUploads != nil {
		s.stopUploads()
	}
	if s.cluster != nil {
		s.cluster.Close()
	}
	// Last: what the recorder and the jobs handed over stays queued on disk.
	s.store.close()
	if s.packager != nil {
		s.packager.Close()
	}
	if s.hub != nil {
		s.hub.Close()
	}
}

// onPublishAll calls each of fns for a new publisher, in order.
func onPublishAll(fns ...func(auth.PublishInfo)) func(auth.PublishInfo) {
	return func(pi auth.PublishInfo) {
		for _, fn := range fns {
			fn(pi)
		}
	}
}

// publishStreamEvents sends stream.started when a stream is created and
// stream.ended when it ends (after its grace period).
func publishStreamEvents(hub *stream.Hub, bus *events.Bus) {
	hub.OnStreamCreated(func(st *stream.Stream) {
		name, created := st.Name(), time.Now()
		bus.Publish(events.Event{Type: events.StreamStarted, Stream: name})
		go func() {
			<-st.Ended()
			bus.Publish(events.Event{Type: events.StreamEnded, Stream: name, Data: map[string]any{"duration": time.Since(created).Seconds()}})
		}()
	})
}
