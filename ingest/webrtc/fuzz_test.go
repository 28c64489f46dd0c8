package webrtc

import (
	"bytes"
	"encoding/binary"
	"testing"
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
