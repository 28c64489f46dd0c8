package stream

import (
	"bytes"
	"testing"
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
