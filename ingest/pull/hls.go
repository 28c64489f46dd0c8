package pull

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	hlscodecs "github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// HLSProtocol is the protocol name the hub shows for streams pulled from
// an HLS playlist.
const HLSProtocol = "pull-hls"

// maxPending bounds the access units held while a video track waits for
// its parameter sets.
const maxPending = 1024

var errCodecChanged = errors.New("codec parameters changed")

func checkHLSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("hls pull: bad URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("hls pull: URL %q: want http(s)://HOST/...m3u8", Redact(raw))
	}
	return nil
}

type hlsConfig struct {
	url         string
	hub         *stream.Hub
	name        string
	app         auth.App
	params      url.Values
	onPublish   func(auth.PublishInfo)
	readTimeout time.Duration
	log         *slog.Logger
}

// hlsSession converts what gohlslib reads into hub access units. Data
// callbacks come from one goroutine per track: mu guards everything.
type hlsSession struct {
	cfg    hlsConfig
	remote string
	log    *slog.Logger
	kill   func(error)
	client *gohlslib.Client

	mu        sync.Mutex
	tracks    []*hlsTrack
	pub       *stream.Publisher
	published bool
	pending   []pendingUnit
	baseSet   bool
	baseDur   time.Duration
	lastData  time.Time
	stopWatch func()
	err       error
}

type hlsTrack struct {
	codec     codecs.Codec // nil until the parameter sets are known
	clockRate int
	st        *stream.Track
}

type pendingUnit struct {
	t  *hlsTrack
	au *stream.AccessUnit
}

// pullHLS plays an HLS playlist (MPEG-TS or fMP4 segments, LL-HLS parts)
// and publishes it as cfg.name: H.264, H.265, AAC and Opus tracks.
func pullHLS(ctx context.Context, cfg hlsConfig) (err error) {
	if err := checkHLSURL(cfg.url); err != nil {
		return err
	}
	remote := hostOf(cfg.url)
	log := cfg.log.With("protocol", HLSProtocol, "stream", cfg.name, "source", remote)
	failed := make(chan struct{})
	var once sync.Once
	hs := &hlsSession{cfg: cfg, remote: remote, log: log, lastData: time.Now()}
	hs.kill = func(error) { once.Do(func() { close(failed) }) }

	c := &gohlslib.Client{
		URI:        cfg.url,
		HTTPClient: &http.Client{Timeout: cfg.readTimeout},
		OnTracks:   hs.onTracks,
		// Quiet: the default callbacks print every download.
		OnDownloadPrimaryPlaylist: func(string) {},
		OnDownloadStreamPlaylist:  func(string) {},
		OnDownloadSegment:         func(string) {},
		OnDownloadPart:            func(string) {},
		OnDecodeError: func(err error) {
			log.Debug("hls decode error", "error", err.Error())
		},
	}
	hs.client = c
	if err := c.Start(); err != nil {
		return fmt.Errorf("hls pull %s: %w", cfg.name, err)
	}
	defer func() {
		c.Close()
		reason := err
		if ctx.Err() != nil {
			err = ctx.Err()
			reason = fmt.Errorf("pull stopped: %w", context.Cause(ctx))
		}
		hs.mu.Lock()
		hs.stopPublisher(reason)
		hs.mu.Unlock()
	}()

	waitErr := make(chan error, 1)
	go func() { waitErr <- c.Wait2() }()
	// A source that stops sending (a live playlist that is no longer
	// updated) is dropped after readTimeout without new media.
	tick := time.NewTicker(cfg.readTimeout / 2)
	defer tick.Stop()
	for {
		select {
		case err := <-waitErr:
			if err == nil {
				err = errors.New("playlist ended")
			}
			return fmt.Errorf("hls pull %s: %w", cfg.name, err)
		case <-failed:
			hs.mu.Lock()
			err := hs.err
			if err == nil && hs.pub != nil {
				err = hs.pub.Err()
			}
			hs.mu.Unlock()
			if err == nil {
				err = errors.New("closed")
			}
			return fmt.Errorf("hls pull %s: %w", cfg.name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			hs.mu.Lock()
			idle := time.Since(hs.lastData)
			hs.mu.Unlock()
			if idle > cfg.readTimeout {
				return fmt.Errorf("hls pull %s: no media for %s", cfg.name, idle.Round(time.Second))
			}
		}
	}
}

func (hs *hlsSession) onTracks(tracks []*gohlslib.Track) error {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.lastData = time.Now()
	c := hs.client
	for _, tr := range tracks {
		switch hc := tr.Codec.(type) {
		case *hlscodecs.H264:
			t := hs.add(stream.H26xCodec(false, nil, hc.SPS, hc.PPS), 90000)
			c.OnDataH26x(tr, func(pts, dts int64, au [][]byte) { hs.onH26x(t, tr.ClockRate, pts, dts, au, false) })
		case *hlscodecs.H265:
			t := hs.add(stream.H26xCodec(true, hc.VPS, hc.SPS, hc.PPS), 90000)
			c.OnDataH26x(tr, func(pts, dts int64, au [][]byte) { hs.onH26x(t, tr.ClockRate, pts, dts, au, true) })
		case *hlscodecs.MPEG4Audio:
			if hc.Config.SampleRate <= 0 {
				continue
			}
			t := hs.add(&codecs.MPEG4Audio{Config: hc.Config}, hc.Config.SampleRate)
			c.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) {
				hs.mu.Lock()
				defer hs.mu.Unlock()
				for i, au := range aus {
					d := ticks(pts, tr.ClockRate) + ticks(int64(i)*mpeg4audio.SamplesPerAccessUnit, hc.Config.SampleRate)
					hs.emit(t, d, d, true, au)
				}
			})
		case *hlscodecs.Opus:
			t := hs.add(&codecs.Opus{ChannelCount: max(hc.ChannelCount, 1)}, 48000)
			c.OnDataOpus(tr, func(pts int64, packets [][]byte) {
				hs.mu.Lock()
				defer hs.mu.Unlock()
				d := ticks(pts, tr.ClockRate)
				for _, p := range packets {
					hs.emit(t, d, d, true, p)
					d += 20 * time.Millisecond
				}
			})
		default:
			hs.log.Warn("hls track ignored: unsupported codec", "codec", fmt.Sprintf("%T", tr.Codec))
		}
	}
	if len(hs.tracks) == 0 {
		return errors.New("no supported tracks")
	}
	return nil
}

func (hs *hlsSession) add(c codecs.Codec, clockRate int) *hlsTrack {
	t := &hlsTrack{codec: c, clockRate: clockRate}
	hs.tracks = append(hs.tracks, t)
	return t
}

func ticks(v int64, clockRate int) time.Duration {
	cr := int64(clockRate)
	if cr <= 0 {
		return 0
	}
	return time.Duration(v/cr)*time.Second + time.Duration((v%cr)*int64(time.Second)/cr)
}

func (hs *hlsSession) onH26x(t *hlsTrack, clockRate int, pts, dts int64, au [][]byte, hevc bool) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	nalus, vps, sps, pps := stream.SplitParameterSets(au, hevc)
	if vps != nil || sps != nil || pps != nil {
		if c := stream.MergeParameterSets(t.codec, hevc, vps, sps, pps); c != nil {
			hs.setCodec(t, c)
		}
	}
	if len(nalus) == 0 || t.codec == nil {
		return
	}
	var key bool
	if hevc {
		key = h265.IsRandomAccess(nalus)
	} else {
		key = h264.IsRandomAccess(nalus)
	}
	payload, err := h264.AVCC(nalus).Marshal()
	if err != nil {
		hs.fail(fmt.Errorf("video access unit: %w", err))
		return
	}
	hs.emit(t, ticks(pts, clockRate), ticks(dts, clockRate), key, payload)
}

// setCodec configures a track; a change in a live session starts a new
// hub session. Called with mu held.
func (hs *hlsSession) setCodec(t *hlsTrack, c codecs.Codec) {
	if t.codec != nil && reflect.DeepEqual(t.codec, c) {
		return
	}
	old := t.codec
	t.codec = c
	if old != nil && hs.pub != nil {
		hs.log.Info("hls codec parameters changed, starting a new session", "codec", stream.CodecName(c))
		hs.stopPublisher(errCodecChanged)
		hs.baseSet = false
	}
}

// emit hands an access unit to the hub, publishing first if needed.
// Called with mu held.
func (hs *hlsSession) emit(t *hlsTrack, pts, dts time.Duration, key bool, payload []byte) {
	hs.lastData = time.Now()
	if hs.err != nil || len(payload) == 0 {
		return
	}
	if hs.pub == nil && !key && t.codec != nil && t.codec.IsVideo() {
		return // a session starts on a video keyframe
	}
	if !hs.baseSet {
		hs.baseDur, hs.baseSet = dts, true
	}
	au := &stream.AccessUnit{DTS: max(dts-hs.baseDur, 0), PTS: max(pts-hs.baseDur, 0), Key: key, Payload: payload}
	if hs.pub == nil {
		if !hs.ready() {
			if len(hs.pending) >= maxPending {
				hs.fail(errors.New("a video track sent no parameter sets"))
				return
			}
			hs.pending = append(hs.pending, pendingUnit{t: t, au: au})
			return
		}
		if err := hs.start(); err != nil {
			hs.fail(err)
			return
		}
	}
	au.Track = t.st
	hs.pub.WriteUnit(au)
	hs.pub.AddBytesIn(len(payload))
}

func (hs *hlsSession) ready() bool {
	for _, t := range hs.tracks {
		if t.codec == nil {
			return false
		}
	}
	return true
}

func (hs *hlsSession) start() error {
	tracks := make([]*stream.Track, len(hs.tracks))
	for i, t := range hs.tracks {
		t.st = &stream.Track{Codec: t.codec, ClockRate: t.clockRate}
		tracks[i] = t.st
	}
	pub, err := hs.cfg.hub.Publish(hs.cfg.name, tracks, stream.PublishOptions{
		Protocol: HLSProtocol, RemoteAddr: hs.remote, Takeover: hs.cfg.app.Takeover})
	if err != nil {
		return err
	}
	hs.pub = pub
	// The hub wants the publisher gone (kicked, taken over, shutdown):
	// end the pull's connection.
	hs.stopWatch = pub.WhenDone(hs.kill)
	if !hs.published {
		hs.published = true
		hs.log.Info("hls pull publishing", "session", pub.Session().ID)
		if fn := hs.cfg.onPublish; fn != nil {
			fn(auth.PublishInfo{Name: hs.cfg.name, App: hs.cfg.app, Params: hs.cfg.params,
				Protocol: HLSProtocol, RemoteAddr: hs.remote, Publisher: pub})
		}
	}
	for _, p := range hs.pending {
		p.au.Track = p.t.st
		pub.WriteUnit(p.au)
	}
	hs.pending = nil
	return nil
}

func (hs *hlsSession) stopPublisher(reason error) {
	if hs.pub == nil {
		return
	}
	hs.stopWatch()
	hs.pub.Close(reason)
	hs.pub = nil
}

func (hs *hlsSession) fail(err error) {
	if hs.err != nil {
		return
	}
	hs.err = err
	hs.kill(err)
}
