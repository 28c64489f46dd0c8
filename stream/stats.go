package stream

import (
	"math"
	"sync/atomic"
	"time"
)

// rateWindow is the media-time span over which bitrate and fps are measured.
const rateWindow = time.Second

// maxWindowGap is the largest DTS step taken as continuous; a bigger jump
// (or a backwards one) restarts the measurement window.
const maxWindowGap = 10 * time.Second

type trackStats struct {
	frames      uint64
	bytes       uint64
	windowStart time.Duration
	windowSet   bool
	winFrames   int
	winBytes    int
	fps         float64
	bitrate     float64
}

type streamStats struct {
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	tracks   []trackStats // guarded by Stream.mu
}

func (st *streamStats) startSession(tracks []*Track) {
	st.tracks = make([]trackStats, len(tracks))
}

// record updates the per-track rates; called with Stream.mu held.
func (st *streamStats) record(au *AccessUnit) {
	if au.Track.Index >= len(st.tracks) {
		return
	}
	ts := &st.tracks[au.Track.Index]
	ts.frames++
	ts.bytes += uint64(len(au.Payload))
	span := au.DTS - ts.windowStart
	if !ts.windowSet || span < 0 || span > maxWindowGap {
		// First frame, or a timestamp jump: start a new window.
		ts.windowStart, ts.windowSet = au.DTS, true
		ts.winFrames, ts.winBytes = 1, len(au.Payload)
		return
	}
	if span >= rateWindow {
		// The window holds the frames in [windowStart, au.DTS): au itself
		// opens the next window, so every frame is counted once.
		sec := span.Seconds()
		ts.fps = float64(ts.winFrames) / sec
		ts.bitrate = float64(ts.winBytes*8) / sec
		ts.windowStart, ts.winFrames, ts.winBytes = au.DTS, 1, len(au.Payload)
		return
	}
	ts.winFrames++
	ts.winBytes += len(au.Payload)
}

// TrackInfo describes one track for the API.
type TrackInfo struct {
	Index      int     `json:"index"`
	Kind       string  `json:"kind"`
	Codec      string  `json:"codec"`
	Width      int     `json:"width,omitempty"`
	Height     int     `json:"height,omitempty"`
	FPS        float64 `json:"fps,omitempty"`
	SampleRate int     `json:"sample_rate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
	Bitrate    int64   `json:"bitrate"`
	Frames     uint64  `json:"frames"`
}

// Info is a snapshot of a stream for the API and the metrics.
type Info struct {
	Name          string       `json:"name"`
	State         State        `json:"state"`
	Protocol      string       `json:"protocol,omitempty"`
	RemoteAddr    string       `json:"remote_addr,omitempty"`
	Session       int          `json:"session"`
	CreatedAt     time.Time    `json:"created_at"`
	SessionStart  time.Time    `json:"session_started_at"`
	UptimeSeconds float64      `json:"uptime_seconds"`
	Tracks        []TrackInfo  `json:"tracks"`
	Bitrate       int64        `json:"bitrate"`
	BytesIn       uint64       `json:"bytes_in"`
	BytesOut      uint64       `json:"bytes_out"`
	ReaderCount   int          `json:"reader_count"`
	Readers       []ReaderInfo `json:"readers"`
}

// Info returns a snapshot of the stream's state and statistics.
func (s *Stream) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := Info{
		Name:      s.name,
		State:     s.state,
		CreatedAt: s.created,
		BytesIn:   s.stats.bytesIn.Load(),
		BytesOut:  s.stats.bytesOut.Load(),
		Readers:   s.readerInfosLocked(),
		Tracks:    []TrackInfo{},
	}
	in.ReaderCount = len(in.Readers)
	in.UptimeSeconds = math.Round(time.Since(s.created).Seconds()*10) / 10
	if s.session == nil {
		return in
	}
	in.Protocol = s.session.Protocol
	in.RemoteAddr = s.session.RemoteAddr
	in.Session = s.session.ID
	in.SessionStart = s.session.Started
	for i, t := range s.session.Tracks {
		ti := TrackInfo{Index: i, Kind: "audio", Codec: t.CodecName()}
		if t.IsVideo() {
			ti.Kind = "video"
			ti.Width, ti.Height = t.Resolution()
		} else {
			ti.SampleRate, ti.Channels = t.AudioFormat()
		}
		if i < len(s.stats.tracks) {
			ts := s.stats.tracks[i]
			ti.Frames = ts.frames
			ti.Bitrate = int64(ts.bitrate)
			if t.IsVideo() {
				ti.FPS = math.Round(ts.fps*100) / 100
			}
		}
		in.Bitrate += ti.Bitrate
		in.Tracks = append(in.Tracks, ti)
	}
	return in
}
