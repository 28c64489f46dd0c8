package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestWebRTCFromEnv(t *testing.T) {
	cfg, err := load(t, "../configs/mps.yaml",
		"MPS_WEBRTC_ENABLED=true", "MPS_WEBRTC_UDP_ADDRESS=:9000", "MPS_WEBRTC_TCP_ADDRESS=:9001",
		"MPS_WEBRTC_NAT_1TO1_IPS=203.0.113.7, 2001:db8::1", "MPS_WEBRTC_AAC_TO_OPUS=false")
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.WebRTC
	if !w.Enabled || w.UDPAddress != ":9000" || w.TCPAddress != ":9001" || w.AACToOpus {
		t.Errorf("webrtc %+v", w)
	}
	if got := w.NAT1To1IPList(); !reflect.DeepEqual(got, []string{"203.0.113.7", "2001:db8::1"}) {
		t.Errorf("NAT1To1IPList %q", got)
	}
}

func TestWebRTCValidation(t *testing.T) {
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "mps.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, err := load(t, write("webrtc:\n  enabled: true\n  udp_address: nope\n"))
	mustFail(t, err, "webrtc.udp_address")
	_, err = load(t, write("webrtc:\n  enabled: true\n  tcp_address: \":8080\"\n"))
	mustFail(t, err, "webrtc.tcp_address and http.address")
	_, err = load(t, write("webrtc:\n  enabled: true\n  nat_1to1_ips: \"1.2.3.4,host.example\"\n"))
	mustFail(t, err, "webrtc.nat_1to1_ips", "host.example")
	_, err = load(t, write("webrtc:\n  enabled: true\napplications:\n  - name: whip\n"))
	mustFail(t, err, `"whip" is reserved`)
	// Disabled: the addresses are not checked.
	if _, err := load(t, write("webrtc:\n  enabled: false\n  udp_address: nope\n")); err != nil {
		t.Errorf("disabled webrtc checked: %v", err)
	}
	_, err = load(t, write("webrtc:\n  enabld: true\n"))
	mustFail(t, err, "enabld")
}
