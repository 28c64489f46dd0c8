package webrtc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/ice/v4"
	rtpcodecs "github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/mps-dev/mps/stream"
	"github.com/mps-dev/mps/test/testutil"
)

// ivfFrame is one frame of an IVF file.
type ivfFrame struct {
	data []byte
	pts  uint64
}

// parseIVF reads an IVF file: its header fields and frames.
func parseIVF(b []byte) (fourcc string, width, height int, den uint32, frames []ivfFrame, err error) {
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		return "", 0, 0, 0, nil, errors.New("not IVF")
	}
	hl := int(binary.LittleEndian.Uint16(b[6:8]))
	if hl < 32 || hl > len(b) {
		return "", 0, 0, 0, nil, errors.New("bad IVF header size")
	}
	fourcc = string(b[8:12])
	width = int(binary.LittleEndian.Uint16(b[12:14]))
	height = int(binary.LittleEndian.Uint16(b[14:16]))
	den = binary.LittleEndian.Uint32(b[16:20])
	b = b[hl:]
	for len(b) > 0 {
		if len(b) < 12 {
			return fourcc, width, height, den, frames, errors.New("truncated IVF frame header")
		}
		n := int(binary.LittleEndian.Uint32(b[0:4]))
		pts := binary.LittleEndian.Uint64(b[4:12])
		if n > len(b)-12 {
			return fourcc, width, height, den, frames, errors.New("truncated IVF frame")
		}
		frames = append(frames, ivfFrame{data: b[12 : 12+n], pts: pts})
		b = b[12+n:]
	}
	return fourcc, width, height, den, frames, nil
}

// makeVP8 encodes seconds of a test pattern at 30 fps as VP8 frames.
func makeVP8(t testing.TB, seconds, width, height int) (frames [][]byte) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc=size=%dx%d:rate=30", width, height),
		"-t", time.Duration(seconds*int(time.Second)).String(), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
		"-g", "30", "-b:v", "500k", "-f", "ivf", "-").Output()
	if err != nil {
		t.Fatalf("encode vp8: %v", err)
	}
	fourcc, w, h, _, fr, err := parseIVF(out)
	if err != nil || fourcc != "VP80" || w != width || h != height || len(fr) != seconds*30 {
		t.Fatalf("vp8 IVF: %v %s %dx%d %d frames", err, fourcc, w, h, len(fr))
	}
	for _, f := range fr {
		frames = append(frames, f.data)
	}
	if k, _, _ := vp8KeyFrame(frames[0]); !k {
		t.Fatal("first VP8 frame is no keyframe")
	}
	return frames
}

// newVP8Fixture is newFixture with VP8 transcoding on.
func newVP8Fixture(t *testing.T, ffmpeg string) *fixture {
	t.Helper()
	lb := &testutil.LogBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: log})
	srv := &Server{Hub: hub, Auth: keyPolicy(), UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", FFmpeg: "ffmpeg", VP8FFmpeg: ffmpeg,
		Logger: log, ConnectTimeout: 10 * time.Second}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		hub.Close()
		if t.Failed() {
			t.Logf("log:\n%s", testutil.Tail(lb.String(), 80))
		}
	})
	return &fixture{hub: hub, srv: srv, log: lb}
}

// newCodecClientPC is a pion peer connection whose only video codec is
// mime (with fmtp), plus Opus, as a browser told to prefer it is.
func newCodecClientPC(t testing.TB, mime, fmtp string) *webrtc.PeerConnection {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack", Parameter: "pli"}}},
		PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// publishVP8 publishes 30 fps VP8 and Opus to name from a pion client
// until the test ends, and returns the WHIP session id.
func publishVP8(t *testing.T, f *fixture, name string, frames [][]byte) string {
	return publishFrames(t, f, name, webrtc.MimeTypeVP8, "", frames)
}

// publishFrames publishes 30 fps video frames of codec mime and Opus to
// name from a pion client until the test ends, and returns the WHIP
// session id.
func publishFrames(t *testing.T, f *fixture, name, mime, fmtp string, frames [][]byte) string {
	t.Helper()
	opusPkts := makeOpus(t, 2)
	pc := newCodecClientPC(t, mime, fmtp)
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: mime}, "video", "test")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	answer, id, err := f.srv.Publish(context.Background(), name, "s3cret", "127.0.0.1:40000", nil, makeOffer(t, pc))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(mime, "video/") + "/90000"; !strings.Contains(string(answer), want) {
		t.Fatalf("answer has no %s:\n%s", want, answer)
	}
	setAnswer(t, pc, answer)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		const frameDur = time.Second / 30
		start := time.Now()
		vi, ai := 0, 0
		for {
			vt := time.Duration(vi) * frameDur
			at := time.Duration(ai) * 20 * time.Millisecond
			next := min(vt, at)
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(next))):
			}
			if at < vt {
				audio.WriteSample(media.Sample{Data: opusPkts[ai%len(opusPkts)], Duration: 20 * time.Millisecond})
				ai++
				continue
			}
			video.WriteSample(media.Sample{Data: frames[vi%len(frames)], Duration: frameDur})
			vi++
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
	return id
}

// TestWHIPVP8WithoutFFmpeg checks that a VP8 session whose transcoder
// cannot start ends cleanly.
func TestWHIPVP8WithoutFFmpeg(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	f := newVP8Fixture(t, "/nonexistent/ffmpeg")
	publishVP8(t, f, "live/noff", makeVP8(t, 1, 320, 240))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(f.log.String(), "whip session ended") {
		if time.Now().After(deadline) {
			t.Fatal("the session did not end")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(f.log.String(), "whip vp8 transcoder") {
		t.Error("no transcoder error logged")
	}
	if st, err := f.hub.Get("live/noff"); err == nil && st.State() == stream.StateLive {
		t.Error("stream live without video")
	}
}

// TestWHIPPublishVP8 publishes VP8 and Opus from a pion client: the hub
// gets H.264 made by ffmpeg, which decodes, and the Opus as sent.
func TestWHIPPublishVP8(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	f := newVP8Fixture(t, "ffmpeg")
	id := publishVP8(t, f, "live/vp8", makeVP8(t, 2, 320, 240))

	st := waitLive(t, f.hub, "live/vp8", 10*time.Second)
	sess, aus := readFor(t, st, 3*time.Second)
	if sess == nil || sess.Protocol != Protocol {
		t.Fatalf("session %+v", sess)
	}
	if len(sess.Tracks) != 2 || sess.Tracks[0].CodecName() != "h264" || sess.Tracks[1].CodecName() != "opus" {
		t.Fatalf("tracks %v", trackCodecs(sess.Tracks))
	}
	var vids []*stream.AccessUnit
	nAudio := 0
	var lastV, lastA time.Duration = -1, -1
	for _, au := range aus {
		if au.Track.IsVideo() {
			if au.PTS <= lastV {
				t.Errorf("video PTS did not advance: %v after %v", au.PTS, lastV)
			}
			lastV = au.PTS
			vids = append(vids, au)
		} else {
			lastA = au.PTS
			nAudio++
		}
	}
	if len(vids) < 60 || nAudio < 100 {
		t.Fatalf("got %d video and %d audio units in 3 s", len(vids), nAudio)
	}
	if !vids[0].Key {
		t.Fatal("first video unit is no keyframe")
	}
	// Frames are 1/30 s apart: the times come from the VP8 frames' RTP times.
	for i := 1; i < len(vids); i++ {
		if d := vids[i].PTS - vids[i-1].PTS; d < 25*time.Millisecond || d > 45*time.Millisecond {
			t.Errorf("video frame %d: %v after the previous one", i, d)
			break
		}
	}
	// The transcode delays video a little, but both timelines advance together.
	t.Logf("%d H.264 frames, %d Opus packets in 3 s; the last video unit read trails the last audio one by %v", len(vids), nAudio, lastA-lastV)
	if d := lastV - lastA; d > 600*time.Millisecond || d < -600*time.Millisecond {
		t.Errorf("audio and video timelines differ by %v", d)
	}
	keys := 0
	for _, au := range vids {
		if au.Key {
			keys++
		}
	}
	if keys < 2 {
		t.Errorf("%d keyframes in %d frames: want one every 2 s", keys, len(vids))
	}
	n := decodeH264(t, sess.Tracks[0].Codec.(*codecs.H264), vids)
	if n < len(vids)-1 {
		t.Errorf("decoded %d of %d frames", n, len(vids))
	}
	if w, h := sess.Tracks[0].Resolution(); w != 320 || h != 240 {
		t.Errorf("resolution %dx%d", w, h)
	}

	if err := f.srv.EndSession("whip", "live/vp8", id); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after DELETE")
	}
}

// TestWHIPVP8SizeChange sends VP8 whose size changes at a keyframe: the
// transcoder restarts, and the hub gets a new session with the new size.
func TestWHIPVP8SizeChange(t *testing.T) {
	testutil.RequireTools(t, "ffmpeg")
	f := newVP8Fixture(t, "ffmpeg")
	frames := append(makeVP8(t, 1, 320, 240), makeVP8(t, 1, 480, 360)...)
	publishVP8(t, f, "live/size", frames)
	// Each size is a hub session; with no grace period, each is a new stream.
	sizes := map[string]bool{}
	deadline := time.Now().Add(8 * time.Second)
	for len(sizes) < 2 && time.Now().Before(deadline) {
		st := waitLive(t, f.hub, "live/size", 5*time.Second)
		r, err := st.NewReader("test", "")
		if err != nil {
			continue // ended meanwhile
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		it, err := r.Read(ctx)
		cancel()
		r.Close()
		if err == nil && it.Session != nil && len(it.Session.Tracks) > 0 {
			w, h := it.Session.Tracks[0].Resolution()
			sizes[fmt.Sprintf("%dx%d", w, h)] = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !sizes["320x240"] || !sizes["480x360"] {
		t.Errorf("sizes %v", sizes)
	}
}

// TestWHIPAnswerPrefersH264 checks that an offer with VP8 first and H.264
// later is answered with H.264 only.
func TestWHIPAnswerPrefersH264(t *testing.T) {
	f := newVP8Fixture(t, "ffmpeg")
	pc := newClientPC(t, false) // pion's default codecs: VP8 first, then VP9, H.264...
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	answer, id, err := f.srv.Publish(context.Background(), "live/both", "s3cret", "127.0.0.1:1", nil, makeOffer(t, pc))
	if err != nil {
		t.Fatal(err)
	}
	defer f.srv.EndSession("whip", "live/both", id)
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(answer)); err != nil {
		t.Fatal(err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && !strings.Contains(a.Value, "H264/90000") {
				t.Errorf("answer video codec %q", a.Value)
			}
		}
	}
}

// vp8Payloads packetizes a VP8 frame as pion does.
func vp8Payloads(frame []byte, mtu uint16) [][]byte {
	var p rtpcodecs.VP8Payloader
	return p.Payload(mtu, frame)
}

func TestVP8DepacketizerRoundTrip(t *testing.T) {
	key := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
	key = append(key, bytes.Repeat([]byte{0xab}, 3000)...)
	inter := append([]byte{0x31, 0x02, 0x00}, bytes.Repeat([]byte{0xcd}, 700)...)
	var d vp8Depacketizer
	seq := uint16(65530)
	send := func(frame []byte, ts uint32, drop int) ([]byte, error) {
		var got []byte
		var gerr error
		pl := vp8Payloads(frame, 1000)
		for i, p := range pl {
			seq++
			if i == drop {
				continue
			}
			out, fts, err := d.push(seq, ts, i == len(pl)-1, p)
			if err != nil {
				gerr = err
			}
			if out != nil {
				if fts != ts {
					t.Fatalf("frame ts %d, want %d", fts, ts)
				}
				got = out
			}
		}
		return got, gerr
	}
	got, err := send(key, 1000, -1)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("keyframe: %v, %d bytes", err, len(got))
	}
	if k, w, h := vp8KeyFrame(got); !k || w != 320 || h != 240 {
		t.Fatalf("keyframe header: %v %dx%d", k, w, h)
	}
	got, err = send(inter, 4000, -1)
	if err != nil || !bytes.Equal(got, inter) {
		t.Fatalf("inter frame: %v, %d bytes", err, len(got))
	}
	if k, _, _ := vp8KeyFrame(got); k {
		t.Fatal("inter frame taken for a keyframe")
	}
	// A lost middle packet loses the frame and reports it.
	got, err = send(key, 7000, 1)
	if got != nil || err == nil {
		t.Fatalf("frame with a lost packet: %v, %d bytes", err, len(got))
	}
	// The next whole frame comes through.
	got, _ = send(inter, 10000, -1)
	if !bytes.Equal(got, inter) {
		t.Fatal("frame after a loss")
	}
	// Padding packets between frames are no loss; a late duplicate is ignored.
	seq++
	d.padding(seq)
	seq++
	d.padding(seq)
	if _, _, err := d.push(seq-5, 10000, true, []byte{0x10, 0x00}); err != nil {
		t.Fatalf("late duplicate: %v", err)
	}
	got, err = send(inter, 13000, -1)
	if err != nil || !bytes.Equal(got, inter) {
		t.Fatalf("frame after padding: %v", err)
	}
}

func TestIVFRoundTrip(t *testing.T) {
	b := ivfHeader(640, 360, 90000)
	b = appendIVFFrame(b, []byte{1, 2, 3}, 0)
	b = appendIVFFrame(b, []byte{4}, 3000)
	fourcc, w, h, den, frames, err := parseIVF(b)
	if err != nil || fourcc != "VP80" || w != 640 || h != 360 || den != 90000 || len(frames) != 2 ||
		!bytes.Equal(frames[1].data, []byte{4}) || frames[1].pts != 3000 {
		t.Fatalf("%v %s %dx%d %d %v", err, fourcc, w, h, den, frames)
	}
	// ffmpeg reads it.
	testutil.RequireTools(t, "ffmpeg", "ffprobe")
	vp8 := makeVP8(t, 1, 320, 240)
	out := ivfHeader(320, 240, 90000)
	for i, f := range vp8 {
		out = appendIVFFrame(out, f, uint64(i*3000))
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-f", "ivf", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames,width",
		"-of", "csv=p=0", "-")
	cmd.Stdin = bytes.NewReader(out)
	res, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(res)) != "vp8,320,30" {
		t.Fatalf("ffprobe: %v %q", err, res)
	}
}

func TestAnnexBSplitter(t *testing.T) {
	aud := []byte{0x09, 0xf0}
	sps := []byte{0x67, 0x42, 0x00, 0x1f}
	idr := []byte{0x65, 0x88, 0x00, 0x00, 0x03, 0x01}
	p := []byte{0x41, 0x9a, 0x01}
	var stream []byte
	add := func(nalus ...[]byte) {
		for i, n := range nalus {
			if i == 0 {
				stream = append(stream, 0, 0, 0, 1)
			} else {
				stream = append(stream, 0, 0, 1)
			}
			stream = append(stream, n...)
		}
	}
	add(aud, sps, idr)
	add(aud, p)
	add(aud, p)
	// Every chunking gives the same access units.
	for chunk := 1; chunk <= len(stream); chunk++ {
		var s annexBSplitter
		var aus [][][]byte
		emit := func(au [][]byte) { aus = append(aus, au) }
		for i := 0; i < len(stream); i += chunk {
			if err := s.write(stream[i:min(i+chunk, len(stream))], emit); err != nil {
				t.Fatal(err)
			}
		}
		if len(aus) != 2 {
			t.Fatalf("chunk %d: %d access units before the end", chunk, len(aus))
		}
		s.end(emit)
		if len(aus) != 3 || len(aus[0]) != 3 || !bytes.Equal(aus[0][2], idr) || !bytes.Equal(aus[0][1], sps) ||
			len(aus[2]) != 2 || !bytes.Equal(aus[2][1], p) {
			t.Fatalf("chunk %d: %q", chunk, aus)
		}
	}
}

// FuzzVP8Depacketizer feeds RTP payloads (with sequence numbers, marker
// bits and timestamps taken from the input) to the VP8 depacketizer.
func FuzzVP8Depacketizer(f *testing.F) {
	f.Add([]byte{0, 1, 0x8d, 0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}) // one-packet keyframe
	f.Add([]byte{0, 1, 0x04, 0x90, 0x80, 0x05, 0x31, 0, 2, 0x84, 0x80, 0x80, 0x05, 0x22})       // extended header, two packets
	f.Add([]byte{0, 1, 0x82, 0x00, 0x00, 0, 3, 0xc2, 0x10, 0x01})                               // continuation without a start
	f.Add([]byte{0, 1, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d vp8Depacketizer
		var ts uint32
		for len(data) >= 3 {
			seq := binary.BigEndian.Uint16(data)
			marker := data[2]&0x80 != 0
			if data[2]&0x40 != 0 {
				ts += 3000
			}
			n := int(data[2] & 0x3f)
			data = data[3:]
			n = min(n, len(data))
			frame, _, _ := d.push(seq, ts, marker, data[:n])
			if frame != nil {
				if len(frame) == 0 || len(frame) > maxVP8Frame {
					t.Fatalf("frame of %d bytes", len(frame))
				}
				vp8KeyFrame(frame)
			}
			data = data[n:]
		}
	})
}

// FuzzIVF writes frames from the input as IVF and reads them back.
func FuzzIVF(f *testing.F) {
	f.Add(uint16(320), uint16(240), []byte{1, 2, 3, 4, 5}, uint64(3000))
	f.Add(uint16(0), uint16(0), []byte{}, uint64(0))
	f.Fuzz(func(t *testing.T, w, h uint16, data []byte, pts uint64) {
		b := ivfHeader(int(w), int(h), 90000)
		half := len(data) / 2
		b = appendIVFFrame(b, data[:half], pts)
		b = appendIVFFrame(b, data[half:], pts+1)
		fourcc, gw, gh, den, frames, err := parseIVF(b)
		if err != nil || fourcc != "VP80" || gw != int(w) || gh != int(h) || den != 90000 || len(frames) != 2 ||
			!bytes.Equal(frames[0].data, data[:half]) || !bytes.Equal(frames[1].data, data[half:]) || frames[1].pts != pts+1 {
			t.Fatalf("round trip: %v", err)
		}
		parseIVF(data) // garbage must not panic
	})
}

// FuzzAnnexBSplitter splits arbitrary bytes, in chunks sized by the input.
func FuzzAnnexBSplitter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x65, 0x88, 0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41}, uint8(3))
	f.Add([]byte{0, 0, 1}, uint8(1))
	f.Add([]byte{0, 0, 0, 0, 0, 1, 9, 0, 0, 1}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		c := int(chunk) + 1
		var s annexBSplitter
		total := 0
		emit := func(au [][]byte) {
			if len(au) == 0 {
				t.Fatal("empty access unit")
			}
			for _, n := range au {
				if len(n) == 0 {
					t.Fatal("empty NAL unit")
				}
				total += len(n)
			}
		}
		for i := 0; i < len(data); i += c {
			s.write(data[i:min(i+c, len(data))], emit)
		}
		s.end(emit)
		if total > len(data) {
			t.Fatalf("%d NAL bytes out of %d", total, len(data))
		}
	})
}
