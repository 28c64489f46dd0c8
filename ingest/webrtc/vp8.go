package webrtc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// VP8 from WHIP publishers is transcoded to H.264 by an ffmpeg child per
// session: the VP8 frames go in as IVF on stdin, H.264 Annex B comes out
// on stdout with an access unit delimiter before every frame. With
// -bf 0 and -fps_mode passthrough ffmpeg keeps the frames' order and
// count, so output frame n gets the RTP time of input frame n.

// vp8GOP is the keyframe interval of the H.264 made from VP8: a segment.
const vp8GOP = 2 * time.Second

// maxVP8Frame bounds a depacketized VP8 frame.
const maxVP8Frame = 4 << 20

// maxAnnexBAU bounds the H.264 read back from ffmpeg before an access unit ends.
const maxAnnexBAU = 16 << 20

// vp8QueueLen is how many frames may wait for ffmpeg's stdin.
const vp8QueueLen = 128

var (
	errVP8Lost       = errors.New("vp8: packet lost")
	errVP8Incomplete = errors.New("vp8: frame without its last packet")
	errVP8TooLarge   = errors.New("vp8: frame too large")
	errAnnexBTooLong = errors.New("h264: access unit too large")
)

// vp8Depacketizer reassembles VP8 frames (RFC 7741) from RTP payloads.
type vp8Depacketizer struct {
	buf     []byte
	ts      uint32
	active  bool
	lastSeq uint16
	hasSeq  bool
}

// push takes one RTP packet. It returns a complete frame and its RTP
// timestamp when the packet ends one, and an error when packets were lost
// or malformed (a frame may come with an error: it is whole, but frames
// before it were lost).
func (d *vp8Depacketizer) push(seq uint16, ts uint32, marker bool, payload []byte) (frame []byte, frameTS uint32, err error) {
	if d.hasSeq && seq != d.lastSeq+1 {
		if int16(seq-d.lastSeq) <= 0 {
			return nil, 0, nil // duplicate or late (a retransmission): ignore
		}
		err = errVP8Lost
		d.active = false
	}
	d.lastSeq, d.hasSeq = seq, true
	var p codecs.VP8Packet
	body, perr := p.Unmarshal(payload)
	if perr != nil {
		d.active = false
		return nil, 0, fmt.Errorf("vp8: %w", perr)
	}
	if d.active && ts != d.ts {
		d.active = false
		err = errVP8Incomplete
	}
	switch {
	case p.S == 1 && p.PID == 0:
		d.buf = append(d.buf[:0], body...)
		d.ts = ts
		d.active = true
	case d.active:
		if len(d.buf)+len(body) > maxVP8Frame {
			d.active = false
			return nil, 0, errVP8TooLarge
		}
		d.buf = append(d.buf, body...)
	default:
		return nil, 0, err // the middle of a frame whose start we lack
	}
	if marker {
		d.active = false
		if len(d.buf) == 0 {
			return nil, 0, err
		}
		return append([]byte(nil), d.buf...), d.ts, err
	}
	return nil, 0, err
}

// padding notes a packet without payload (bandwidth probing), so that its
// sequence number is not taken for a loss.
func (d *vp8Depacketizer) padding(seq uint16) {
	if d.hasSeq && seq == d.lastSeq+1 {
		d.lastSeq = seq
	}
}

// vp8KeyFrame tells whether frame is a VP8 keyframe, and its size.
func vp8KeyFrame(frame []byte) (key bool, width, height int) {
	if len(frame) < 10 || frame[0]&1 != 0 {
		return false, 0, 0
	}
	if frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return false, 0, 0
	}
	width = int(binary.LittleEndian.Uint16(frame[6:8]) & 0x3fff)
	height = int(binary.LittleEndian.Uint16(frame[8:10]) & 0x3fff)
	return true, width, height
}

// vp8Shown tells whether a VP8 frame is displayed (its show_frame bit).
func vp8Shown(frame []byte) bool {
	return len(frame) > 0 && frame[0]&0x10 != 0
}

// ivfHeader is the 32-byte IVF file header of a VP8 stream whose frame
// times count in 1/timebase seconds.
func ivfHeader(width, height int, timebase uint32) []byte {
	h := make([]byte, 32)
	copy(h, "DKIF")
	binary.LittleEndian.PutUint16(h[4:], 0)  // version
	binary.LittleEndian.PutUint16(h[6:], 32) // header size
	copy(h[8:], "VP80")
	binary.LittleEndian.PutUint16(h[12:], uint16(width))
	binary.LittleEndian.PutUint16(h[14:], uint16(height))
	binary.LittleEndian.PutUint32(h[16:], timebase) // time base denominator
	binary.LittleEndian.PutUint32(h[20:], 1)        // time base numerator
	binary.LittleEndian.PutUint32(h[24:], 0)        // frame count: unknown
	return h
}

// appendIVFFrame appends frame with its 12-byte IVF header to dst.
func appendIVFFrame(dst, frame []byte, pts uint64) []byte {
	var h [12]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(len(frame)))
	binary.LittleEndian.PutUint64(h[4:], pts)
	return append(append(dst, h[:]...), frame...)
}

// annexBSplitter cuts an H.264 Annex B byte stream into access units at
// its access unit delimiters.
type annexBSplitter struct {
	buf  []byte
	scan int // where to look for the next start code
	au   [][]byte
}

// startCode finds the next 00 00 01 in b at or after from.
func startCode(b []byte, from int) int {
	if from >= len(b) {
		return -1
	}
	i := bytes.Index(b[from:], []byte{0, 0, 1})
	if i < 0 {
		return -1
	}
	return from + i
}

// write adds p and calls emit with every access unit it completes.
func (s *annexBSplitter) write(p []byte, emit func([][]byte)) error {
	s.buf = append(s.buf, p...)
	for {
		i0 := startCode(s.buf, 0)
		if i0 < 0 {
			// Keep the last two bytes: they may begin a start code.
			if len(s.buf) > 2 {
				s.buf = append(s.buf[:0], s.buf[len(s.buf)-2:]...)
			}
			s.scan = 0
			return nil
		}
		from := max(i0+3, s.scan)
		i1 := startCode(s.buf, from)
		if i1 < 0 {
			if len(s.buf)-i0 > maxAnnexBAU {
				s.buf, s.scan, s.au = s.buf[:0], 0, nil
				return errAnnexBTooLong
			}
			// Rescan the last two bytes next time.
			s.scan = max(len(s.buf)-2, i0+3)
			if i0 > 0 {
				s.buf = append(s.buf[:0], s.buf[i0:]...)
				s.scan -= i0
			}
			return nil
		}
		s.scan = 0
		nalu := bytes.TrimRight(s.buf[i0+3:i1], "\x00")
		s.onNALU(nalu, emit)
		s.buf = s.buf[i1:]
	}
}

func (s *annexBSplitter) onNALU(nalu []byte, emit func([][]byte)) {
	if len(nalu) == 0 {
		return
	}
	if nalu[0]&0x1f == 9 { // access unit delimiter
		s.flush(emit)
	}
	s.au = append(s.au, append([]byte(nil), nalu...))
	n := 0
	for _, x := range s.au {
		n += len(x)
	}
	if n > maxAnnexBAU {
		s.au = nil
	}
}

// flush emits the access unit gathered so far.
func (s *annexBSplitter) flush(emit func([][]byte)) {
	if len(s.au) > 0 {
		emit(s.au)
	}
	s.au = nil
}

// end emits what is left at the end of the stream.
func (s *annexBSplitter) end(emit func([][]byte)) {
	if i0 := startCode(s.buf, 0); i0 >= 0 {
		s.onNALU(bytes.TrimRight(s.buf[i0+3:], "\x00"), emit)
	}
	s.buf, s.scan = s.buf[:0], 0
	s.flush(emit)
}

// vp8Transcoder is the ffmpeg child of one VP8 publisher.
type vp8Transcoder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	log    *slog.Logger
	in     chan []byte
	done   chan struct{}
	exited chan struct{}
	pumped chan struct{}
	once   sync.Once
	stderr tailBuffer

	// Guarded by ps.mu (the caller of feed).
	base    int64
	lastPTS int64
	fed     bool

	mu     sync.Mutex
	times  []int64 // RTP times of the frames inside ffmpeg, in order
	lastT  int64
	closed bool
}

// tailBuffer keeps the end of what is written to it.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = append(t.b[:0], t.b[len(t.b)-2048:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

// vp8FFmpegArgs is the command line of the transcoder.
func vp8FFmpegArgs() []string {
	return []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		// No -fflags nobuffer: with it ffmpeg 5.1 fails to decode IVF from a pipe.
		"-probesize", "32", "-analyzeduration", "0",
		"-threads", "1", "-f", "ivf", "-i", "pipe:0",
		"-an", "-fps_mode", "passthrough",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
		"-g", "600", "-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%g)", vp8GOP.Seconds()), "-bf", "0",
		"-bsf:v", "h264_metadata=aud=insert", "-flush_packets", "1", "-f", "h264", "pipe:1"}
}

// startVP8Transcoder starts ffmpeg for a VP8 stream of width x height.
// onAU gets every H.264 access unit (Annex B NALUs, AUD included) with the
// RTP time of its input frame; onExit is called when ffmpeg ends by itself.
// The child is started, and waited for, on a goroutine locked to its OS
// thread, so that Pdeathsig kills it only when mps dies.
func startVP8Transcoder(ffmpeg string, width, height int, log *slog.Logger, onAU func([][]byte, int64), onExit func(error)) (*vp8Transcoder, error) {
	t := &vp8Transcoder{log: log, in: make(chan []byte, vp8QueueLen), done: make(chan struct{}),
		exited: make(chan struct{}), pumped: make(chan struct{})}
	cmd := exec.Command(ffmpeg, vp8FFmpegArgs()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = &t.stderr
	var err error
	if t.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if t.stdout, err = cmd.StdoutPipe(); err != nil {
		t.stdin.Close()
		return nil, err
	}
	t.cmd = cmd
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start %s: %w", ffmpeg, err)
			close(t.exited)
			return
		}
		started <- nil
		werr := cmd.Wait()
		close(t.exited)
		select {
		case <-t.done:
		default:
			if onExit != nil {
				onExit(fmt.Errorf("vp8 transcoder exited: %v: %s", werr, t.stderr.String()))
			}
		}
	}()
	if err := <-started; err != nil {
		t.stdin.Close()
		t.stdout.Close()
		return nil, err
	}
	t.in <- ivfHeader(width, height, 90000)
	go t.writeLoop()
	go t.pump(onAU)
	return t, nil
}

func (t *vp8Transcoder) writeLoop() {
	for {
		select {
		case b := <-t.in:
			if _, err := t.stdin.Write(b); err != nil {
				return
			}
		case <-t.done:
			return
		}
	}
}

// feed queues one VP8 frame at unwrapped RTP time rtpTime. It never
// blocks: false means the queue was full and the frame was dropped.
// A frame that is not shown (show_frame 0) gives no output frame, so its
// time is not queued.
func (t *vp8Transcoder) feed(frame []byte, rtpTime int64) bool {
	if !t.fed {
		t.fed, t.base, t.lastPTS = true, rtpTime, -1
	}
	pts := rtpTime - t.base
	if pts <= t.lastPTS {
		pts = t.lastPTS + 1 // strictly increasing for the encoder
	}
	b := appendIVFFrame(make([]byte, 0, 12+len(frame)), frame, uint64(pts))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	select {
	case t.in <- b:
	default:
		return false
	}
	t.lastPTS = pts
	if vp8Shown(frame) {
		t.times = append(t.times, rtpTime)
	}
	return true
}

// pump reads H.264 from ffmpeg and hands out its access units.
func (t *vp8Transcoder) pump(onAU func([][]byte, int64)) {
	defer close(t.pumped)
	var sp annexBSplitter
	emit := func(au [][]byte) {
		t.mu.Lock()
		var ts int64
		if len(t.times) > 0 {
			ts = t.times[0]
			t.times = t.times[1:]
		} else {
			ts = t.lastT + 1 // should not happen: ffmpeg made more frames than it got
		}
		t.lastT = ts
		t.mu.Unlock()
		onAU(au, ts)
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := t.stdout.Read(buf)
		if n > 0 {
			if serr := sp.write(buf[:n], emit); serr != nil {
				t.log.Warn("whip vp8 transcoder output", "error", serr.Error())
			}
		}
		if err != nil {
			select {
			case <-t.done:
			default:
				sp.end(emit)
			}
			return
		}
	}
}

// close stops ffmpeg and waits for its goroutines.
func (t *vp8Transcoder) close() {
	t.once.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		close(t.done)
		t.stdin.Close()
		if t.cmd.Process != nil {
			t.cmd.Process.Kill()
		}
		<-t.exited
		<-t.pumped
	})
}

// vp8In is the VP8 state of a WHIP video track.
type vp8In struct {
	dep     vp8Depacketizer
	tc      *vp8Transcoder
	w, h    int  // the size tc was started for
	waitIDR bool // the H.264 out waits for its first IDR
	closed  bool
	stopped sync.WaitGroup // transcoders being stopped after a size change
}

// onVP8Packet handles one VP8 RTP packet at unwrapped RTP time rtpTime.
// Called with ps.mu held; it returns whether to ask for a keyframe.
func (ps *publishSession) onVP8Packet(v *videoIn, seq uint16, ts uint32, marker bool, payload []byte) (pli bool) {
	x := v.vp8
	frame, fts, derr := x.dep.push(seq, ts, marker, payload)
	if derr != nil {
		if !v.waitKy {
			ps.log.Debug("whip vp8 video damaged: waiting for a keyframe", "error", derr.Error())
		}
		v.waitKy = true
		pli = time.Since(v.lastPL) > pliInterval/2
	}
	if frame == nil || x.closed {
		return pli
	}
	t := v.clk.unwrapped + int64(int32(fts-v.clk.lastRTP))
	key, w, h := vp8KeyFrame(frame)
	if v.waitKy {
		if !key {
			return pli
		}
		v.waitKy = false
	}
	if key && x.tc != nil && (w != x.w || h != x.h) {
		// A new size (browsers change it with the bandwidth): a new
		// transcoder, whose H.264 has new parameter sets, so a new hub
		// session. ffmpeg would scale to the first size for ever.
		ps.log.Info("whip vp8 size changed, restarting the transcoder", "width", w, "height", h)
		old := x.tc
		x.tc = nil
		x.stopped.Add(1)
		go func() { // not under ps.mu: its output goroutine may wait for it
			defer x.stopped.Done()
			old.close()
		}()
	}
	if x.tc == nil {
		var tc *vp8Transcoder
		onAU := func(au [][]byte, t int64) { ps.onVP8AU(tc, au, t) }
		tc, err := startVP8Transcoder(ps.s.VP8FFmpeg, w, h, ps.log, onAU, func(err error) {
			ps.log.Warn("whip vp8 transcoder failed", "error", err.Error())
			ps.fail(err)
		})
		if err != nil {
			ps.log.Warn("whip vp8 transcoder", "error", err.Error())
			ps.fail(err)
			x.closed = true
			return false
		}
		x.tc, x.w, x.h = tc, w, h
		ps.log.Info("whip vp8 transcoding to h264", "width", w, "height", h)
	}
	if !x.tc.feed(frame, t) {
		ps.log.Debug("whip vp8 transcoder busy: frame dropped")
		v.waitKy = true
		return true
	}
	return pli
}

// onVideoPadding notes a video packet without payload.
func (ps *publishSession) onVideoPadding(seq uint16) {
	ps.mu.Lock()
	if v := ps.video; v != nil && v.vp8 != nil {
		v.vp8.dep.padding(seq)
	} else if v != nil && v.frames != nil {
		v.frames.padding(seq)
	}
	ps.mu.Unlock()
}

// onVP8AU publishes one H.264 access unit made from VP8.
func (ps *publishSession) onVP8AU(tc *vp8Transcoder, au [][]byte, t int64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.video == nil || ps.video.vp8 == nil || ps.video.vp8.closed || ps.video.vp8.tc != tc {
		return // the session ends, or tc was replaced
	}
	ps.onVideoAU(au, t)
}

// closeVP8 stops the VP8 transcoder, if there is one.
func (ps *publishSession) closeVP8() {
	ps.mu.Lock()
	var tc *vp8Transcoder
	var x *vp8In
	if ps.video != nil && ps.video.vp8 != nil {
		x = ps.video.vp8
		x.closed = true
		tc = x.tc
	}
	ps.mu.Unlock()
	if tc != nil {
		tc.close()
	}
	if x != nil {
		x.stopped.Wait()
	}
}

// preferH264 makes the answer's video codecs H.264 only when the offer has
// H.264, so that a publisher offering both sends H.264 and HLS needs no
// transcode; VP8 is answered only to offers without H.264.
func preferH264(pc *webrtc.PeerConnection) error {
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.Receiver() == nil {
			continue
		}
		var h264, other []webrtc.RTPCodecParameters
		for _, c := range tr.Receiver().GetParameters().Codecs {
			if strings.EqualFold(c.MimeType, webrtc.MimeTypeH264) {
				h264 = append(h264, c)
			} else {
				other = append(other, c)
			}
		}
		prefs := h264
		if len(prefs) == 0 {
			prefs = other
		}
		if len(prefs) == 0 {
			continue
		}
		if err := tr.SetCodecPreferences(prefs); err != nil {
			return statusErr(400, ErrBadOffer, "%v", err)
		}
	}
	return nil
}
