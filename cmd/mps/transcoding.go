package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mps-dev/mps/config"
	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/transcoder"
	"github.com/mps-dev/mps/web/admission"
)

// probeTimeout bounds the start-up questions to ffmpeg.
const probeTimeout = 20 * time.Second

// transcoding is a server's live transcoding: the ladder manager, the
// thumbnails, and the choice of a ladder for each new publisher.
type transcoding struct {
	cfg       *config.Config
	log       *slog.Logger
	caps      *transcoder.Capabilities
	manager   *transcoder.Manager
	thumbs    *transcoder.Thumbnails          // nil when thumbnails are off
	keyframes *transcoder.KeyframeThumbnailer // nil when thumbnails are off
	admit     auth.Admitter
}

// startTranscoding probes ffmpeg, checks every template against what it can
// do (a template it cannot run stops the server with the reason), and
// starts the thumbnailer.
func startTranscoding(cfg *config.Config, hub *stream.Hub, log *slog.Logger) (*transcoding, error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	caps, err := transcoder.Probe(ctx, cfg.Transcoder.FFmpeg)
	if err != nil {
		return nil, fmt.Errorf("transcoder: %w", err)
	}
	for i := range cfg.Ladders {
		if err := cfg.Ladders[i].Validate(caps); err != nil {
			return nil, fmt.Errorf("ladders: %w", err)
		}
	}
	t := &transcoding{
		cfg:  cfg,
		log:  log,
		caps: caps,
		manager: &transcoder.Manager{
			Hub:               hub,
			FFmpeg:            cfg.Transcoder.FFmpeg,
			Logger:            log,
			RestartBackoffMax: cfg.Transcoder.RestartBackoffMax,
		},
	}
	if th := cfg.Transcoder.Thumbnails; th.Interval > 0 {
		t.thumbs = &transcoder.Thumbnails{StorePath: th.StorePath, StoreInterval: th.StoreInterval, Logger: log}
		t.manager.Thumbnails = t.thumbs
		t.manager.ThumbnailInterval = th.Interval
		t.keyframes = &transcoder.KeyframeThumbnailer{
			Hub:      hub,
			FFmpeg:   cfg.Transcoder.FFmpeg,
			Interval: th.Interval,
			Width:    th.Width,
			Sink:     t.thumbs,
			Skip:     t.ladderMakesThumbnails,
			Logger:   log,
		}
		if err := t.keyframes.Start(); err != nil {
			return nil, fmt.Errorf("thumbnails: %w", err)
		}
	}
	t.admit = t.checkLadderParam
	if a := cfg.Admission; a.URL != "" {
		hook := (&admission.Client{URL: a.URL, Timeout: a.Timeout}).Admitter(a.OnError == config.OnErrorAllow, log)
		t.admit = func(ctx context.Context, req auth.PublishRequest) (url.Values, error) {
			params, err := hook(ctx, req)
			if err != nil {
				return nil, err
			}
			req.Params = params
			return t.checkLadderParam(ctx, req)
		}
	}
	return t, nil
}

// ladderMakesThumbnails tells the keyframe thumbnailer to leave a stream
// alone: its ladder makes its thumbnails, or it is a rendition.
func (t *transcoding) ladderMakesThumbnails(name string) bool {
	if _, isRendition := t.manager.SourceOf(name); isRendition {
		return true
	}
	return t.manager.MakesThumbnails(name)
}

// checkLadderParam refuses a publisher that asks for a ladder that does
// not exist, so that it learns of its mistake at once.
func (t *transcoding) checkLadderParam(_ context.Context, req auth.PublishRequest) (url.Values, error) {
	if name := req.Params.Get(auth.ParamLadder); name != "" {
		if _, ok := t.cfg.Ladder(name); !ok {
			return nil, fmt.Errorf("%w: unknown ladder %q", auth.ErrAdmissionRefused, name)
		}
	}
	return req.Params, nil
}

// onPublish starts the ladder a new publisher gets: the one named by its
// ladder parameter (which the admission webhook may have set), else the
// first matching rule's. A reconnect keeps the ladder that runs.
func (t *transcoding) onPublish(pi auth.PublishInfo) {
	name := pi.Params.Get(auth.ParamLadder)
	if name == "" {
		name = t.cfg.LadderFor(pi.Name)
	}
	if name == "" {
		return
	}
	if info, ok := t.manager.Info(pi.Name); ok && info.Template == name {
		return
	}
	tpl, ok := t.cfg.Ladder(name)
	if !ok {
		t.log.Warn("ladder not started: unknown template", "stream", pi.Name, "ladder", name)
		return
	}
	// Start waits for a replaced ladder's child to stop: keep it off the
	// publisher's goroutine.
	go func() {
		if err := t.manager.Start(pi.Name, tpl); err != nil {
			t.log.Warn("ladder not started", "stream", pi.Name, "ladder", name, "error", err)
			return
		}
		t.log.Info("ladder started", "stream", pi.Name, "ladder", name)
	}()
}

// serveThumbnails answers /{name}/thumbnail.jpg from the thumbnails and
// hands every other path to next.
func (t *transcoding) serveThumbnails(next http.Handler) http.Handler {
	if t == nil || t.thumbs == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/thumbnail.jpg")
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if stream.ValidateName(name) != nil {
			http.Error(w, "no such stream", http.StatusNotFound)
			return
		}
		t.thumbs.Serve(w, r, name)
	})
}

// close stops every ladder and the thumbnailer. It is safe on nil.
func (t *transcoding) close() {
	if t == nil {
		return
	}
	if t.keyframes != nil {
		t.keyframes.Close()
	}
	t.manager.Close()
}
