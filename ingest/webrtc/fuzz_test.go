package webrtc

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// FuzzH264Depacketizer feeds RTP payloads (with sequence numbers, marker
// bits and timestamps taken from the input) to the depacketizer.
func FuzzH264Depacketizer(f *testing.F) {
	f.Add([]byte{0, 1, 0x80, 0x65, 0xb8, 0x00, 0x01})                               // single NALU with marker
	f.Add([]byte{0, 1, 0x80, 0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}) // STAP-A
	f.Add([]byte{0, 1, 0x00, 0x7c, 0x85, 0xaa, 0, 2, 0x80, 0x7c, 0x45, 0xbb})       // FU-A start + end
	f.Add([]byte{0, 1, 0x80, 0x7c, 0x45, 0xbb})                                     // FU-A end without start
	f.Add([]byte{0, 1, 0x80, 0x1e, 0x00})                                           // unsupported type
	f.Fuzz(func(t *testing.T, data []byte) {
		var d h264Depacketizer
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
			au, _, _ := d.push(seq, ts, marker, data[:n])
			for _, nalu := range au {
				if len(nalu) == 0 {
					t.Fatal("empty NAL unit in an access unit")
				}
			}
			data = data[n:]
		}
	})
}

// FuzzOggPackets reads arbitrary bytes as an Ogg stream.
func FuzzOggPackets(f *testing.F) {
	page := func(segs []byte, body []byte) []byte {
		h := make([]byte, 27)
		copy(h, "OggS")
		h[26] = byte(len(segs))
		return append(append(h, segs...), body...)
	}
	f.Add(page([]byte{8}, []byte("OpusHead")))
	f.Add(append(page([]byte{255}, bytes.Repeat([]byte{1}, 255)), page([]byte{3}, []byte{1, 2, 3})...))
	f.Add([]byte("OggS"))
	f.Fuzz(func(t *testing.T, data []byte) {
		readOggPackets(bytes.NewReader(data), func(p []byte) error {
			if len(p) == 0 || len(p) > maxOggPacket {
				t.Fatalf("packet of %d bytes", len(p))
			}
			return nil
		})
	})
}

// FuzzCheckOffer checks that no offer makes the SDP check panic.
func FuzzCheckOffer(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n"))
	f.Add([]byte("v=0\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOffer(data)
	})
}

func TestFragmentH264RoundTrip(t *testing.T) {
	nalu := append([]byte{0x65}, bytes.Repeat([]byte{7}, 5000)...)
	var d h264Depacketizer
	var got [][]byte
	frags := fragmentH264(nalu, rtpMTU)
	for i, p := range frags {
		au, _, err := d.push(uint16(i), 9000, i == len(frags)-1, p)
		if err != nil {
			t.Fatal(err)
		}
		if au != nil {
			got = au
		}
	}
	if len(got) != 1 || !bytes.Equal(got[0], nalu) {
		t.Fatalf("round trip: %d NAL units", len(got))
	}
	// A lost fragment drops the access unit and reports the loss.
	d = h264Depacketizer{}
	var loss bool
	for i, p := range frags {
		if i == 1 {
			continue
		}
		au, _, err := d.push(uint16(100+i), 12000, i == len(frags)-1, p)
		if err == errRTPLoss {
			loss = true
		}
		if au != nil {
			t.Fatal("damaged access unit returned")
		}
	}
	if !loss {
		t.Fatal("loss not reported")
	}
}

// FuzzOfferedVideo checks the listing of an offer's video codecs.
func FuzzOfferedVideo(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP9/90000\r\na=rtpmap:97 rtx/90000\r\n"))
	f.Add([]byte("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96\r\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		names, hasVideo := offeredVideo(data)
		if len(names) > 0 && !hasVideo {
			t.Fatalf("codecs %v without a video section", names)
		}
	})
}

// FuzzFrameIn feeds VP9 and AV1 RTP payloads to the WHIP depacketizer: no
// input may panic it, and a unit it returns comes with codec parameters.
func FuzzFrameIn(f *testing.F) {
	// VP9: a one-packet keyframe header (B and E set); AV1: one packet with
	// a sequence header OBU and a frame OBU.
	f.Add(true, []byte{0x8c, 0x80, 0x01, 0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6, 0x00})
	f.Add(false, []byte{0x18, 0x0b, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x02, 0xaf, 0xff, 0x9f, 0xff, 0x30, 0x08, 0x32, 0x01, 0x10})
	f.Add(false, []byte{0x40, 0x32, 0x00})
	f.Fuzz(func(t *testing.T, vp9 bool, payload []byte) {
		mime := webrtc.MimeTypeAV1
		if vp9 {
			mime = webrtc.MimeTypeVP9
		}
		in := newFrameIn(mime)
		for i := 0; i < 3; i++ {
			c, _, unit, _ := in.push(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: 3000, Marker: true}, Payload: payload})
			if unit != nil && c == nil {
				t.Fatal("a unit without codec parameters")
			}
		}
	})
}
