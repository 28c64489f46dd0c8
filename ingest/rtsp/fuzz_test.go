package rtsp

import (
	"strings"
	"testing"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/mps-dev/mps/stream"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		path, query, name, key, params string
		ok                             bool
	}{
		{"/live/cam1", "", "live/cam1", "", "", true},
		{"/live/cam1/", "key=S/", "live/cam1", "S", "key=S", true},
		{"/live/cam1", "key=a+b&record=1", "live/cam1", "a+b", "key=a%2Bb&record=1", true},
		{"/live/cam1", "key=100%", "live/cam1", "100%", "key=100%25", true},
		{"/live/a/b", "ladder=hd", "live/a/b", "", "ladder=hd", true},
		{"/", "", "", "", "", false},
		{"/live/../x", "", "", "", "", false},
		{"/live//x", "", "", "", "", false},
		{"/live/a b", "", "", "", "", false},
	} {
		name, key, q, err := parseTarget(tc.path, tc.query)
		if (err == nil) != tc.ok {
			t.Errorf("parseTarget(%q, %q) error %v, want ok=%v", tc.path, tc.query, err, tc.ok)
			continue
		}
		if tc.ok && (name != tc.name || key != tc.key || q.Encode() != tc.params) {
			t.Errorf("parseTarget(%q, %q) = %q, %q, %q; want %q, %q, %q", tc.path, tc.query, name, key, q.Encode(), tc.name, tc.key, tc.params)
		}
	}
}

// FuzzParseTarget: no panic, and no accepted name can climb a folder.
func FuzzParseTarget(f *testing.F) {
	for _, s := range [][2]string{
		{"/live/cam1", "key=S"}, {"/live/cam1/", "key=S&x=y/"}, {"/live/..", ""}, {"//live//x/", "%zz"},
		{"/live/a%2f..", "key=%"}, {"", "/"}, {strings.Repeat("/a", 300), ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		name, _, q, err := parseTarget(path, query)
		if err != nil {
			return
		}
		if stream.ValidateName(name) != nil || q == nil {
			t.Fatalf("parseTarget(%q, %q) accepted %q", path, query, name)
		}
		for part := range strings.SplitSeq(name, "/") {
			if part == ".." || part == "." || part == "" {
				t.Fatalf("name %q from %q passed", name, path)
			}
		}
	})
}

// FuzzPacket feeds arbitrary RTP payloads to the depacketizing path of
// every supported codec: nothing may panic, and whatever reaches the hub
// must be a well-formed access unit.
func FuzzPacket(f *testing.F) {
	for _, s := range []struct {
		codec   byte
		payload []byte
		marker  bool
	}{
		{0, []byte{0x65, 0x88, 0x84, 0x00}, true},                         // H.264 IDR slice
		{0, []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47}, true}, // H.264 SPS
		{0, []byte{0x7c, 0x85, 0x88, 0x84}, false},                        // H.264 FU-A start
		{0, []byte{0x18, 0x00, 0x02, 0x09, 0x10, 0x00, 0x01, 0x65}, true}, // H.264 STAP-A
		{1, []byte{0x26, 0x01, 0xaf, 0x00}, true},                         // H.265 IDR
		{1, []byte{0x62, 0x01, 0x93, 0xaf}, false},                        // H.265 FU
		{2, []byte{0x00, 0x10, 0x00, 0x20, 0x21, 0x10}, true},             // AAC, one AU
		{3, []byte{0xfc, 0xff, 0xfe}, true},                               // Opus
	} {
		f.Add(s.codec, s.payload, s.marker, uint32(0))
	}
	f.Fuzz(func(t *testing.T, codec byte, payload []byte, marker bool, ts uint32) {
		hub := stream.NewHub(stream.HubConfig{GracePeriod: -1, Logger: discardLogger()})
		defer hub.Close()
		s := &Server{Hub: hub}
		s.closing = make(chan struct{})
		ps := &publishSession{s: s, c: &connState{log: discardLogger()}, name: "live/fuzz",
			opts: stream.PublishOptions{Protocol: Protocol}, kill: func() {}}
		var forma format.Format
		switch codec % 4 {
		case 0:
			forma = &format.H264{PayloadTyp: 96, PacketizationMode: 1}
		case 1:
			forma = &format.H265{PayloadTyp: 96}
		case 2:
			forma = &format.MPEG4Audio{PayloadTyp: 96, Config: aacConfig(), SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
		case 3:
			forma = &format.Opus{PayloadTyp: 96, ChannelCount: 2}
		}
		tr := newInTrack(&description.Media{Formats: []format.Format{forma}}, forma)
		if tr == nil {
			t.Fatal("no track")
		}
		ps.tracks = []*inTrack{tr}
		for i := range 3 { // the same payload thrice: fragments and repeats
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: ts, Marker: marker}, Payload: payload}
			ps.handlePacket(tr, pkt, int64(i)*3000)
		}
		ps.close(nil)
	})
}
