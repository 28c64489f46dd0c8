package stream

import (
	"bytes"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
)

func TestSplitParameterSets(t *testing.T) {
	sps, pps, aud, idr := []byte{0x67, 1}, []byte{0x68, 2}, []byte{0x09, 0xf0}, []byte{0x65, 3}
	nalus, vps, gotSPS, gotPPS := SplitParameterSets([][]byte{aud, sps, {}, pps, idr}, false)
	if len(nalus) != 1 || !bytes.Equal(nalus[0], idr) || vps != nil || !bytes.Equal(gotSPS, sps) || !bytes.Equal(gotPPS, pps) {
		t.Fatalf("h264: nalus %x vps %x sps %x pps %x", nalus, vps, gotSPS, gotPPS)
	}

	hvps, hsps, hpps, haud, hidr := []byte{0x40, 1}, []byte{0x42, 1}, []byte{0x44, 1}, []byte{0x46, 1}, []byte{0x26, 1}
	nalus, vps, gotSPS, gotPPS = SplitParameterSets([][]byte{haud, hvps, hsps, hpps, hidr, nil}, true)
	if len(nalus) != 1 || !bytes.Equal(nalus[0], hidr) || !bytes.Equal(vps, hvps) || !bytes.Equal(gotSPS, hsps) || !bytes.Equal(gotPPS, hpps) {
		t.Fatalf("h265: nalus %x vps %x sps %x pps %x", nalus, vps, gotSPS, gotPPS)
	}
}

// MergeParameterSets keeps the sets an access unit did not carry and
// gives no codec while they are incomplete or do not parse.
func TestMergeParameterSets(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x58, 0xba, 0x80}
	pps1, pps2 := []byte{0x68, 0xce, 0x3c, 0x80}, []byte{0x68, 0xce, 0x3c, 0x81}
	if c := MergeParameterSets(nil, false, nil, sps, nil); c != nil {
		t.Fatalf("an SPS alone gave %v", c)
	}
	c := MergeParameterSets(nil, false, nil, sps, pps1)
	if h, ok := c.(*codecs.H264); !ok || !bytes.Equal(h.SPS, sps) || !bytes.Equal(h.PPS, pps1) {
		t.Fatalf("SPS and PPS gave %v", c)
	}
	c = MergeParameterSets(c, false, nil, nil, pps2)
	if h, ok := c.(*codecs.H264); !ok || !bytes.Equal(h.SPS, sps) || !bytes.Equal(h.PPS, pps2) {
		t.Fatalf("a new PPS gave %v", c)
	}
	if c := MergeParameterSets(nil, false, nil, []byte{0x67}, pps1); c != nil {
		t.Fatalf("an SPS that does not parse gave %v", c)
	}
	if c := MergeParameterSets(nil, true, nil, sps, pps1); c != nil {
		t.Fatalf("H.265 without a VPS gave %v", c)
	}
}
