package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRTSPDefaults(t *testing.T) {
	d := Default()
	want := RTSP{Address: ":8554", UDPRTPAddress: ":8000", UDPRTCPAddress: ":8001", ReadTimeout: 10 * time.Second}
	if d.RTSP != want {
		t.Fatalf("RTSP defaults %+v", d.RTSP)
	}
	cfg, err := load(t, "../configs/mps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.RTSP, d.RTSP) {
		t.Fatalf("configs/mps.yaml rtsp %+v, Default %+v", cfg.RTSP, d.RTSP)
	}
}

func TestRTSPSection(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
rtsp:
  enabled: true
  address: "127.0.0.1:9554"
  udp_rtp_address: "127.0.0.1:9000"
  udp_rtcp_address: "127.0.0.1:9001"
  read_timeout: 3s
`))
	if err != nil {
		t.Fatal(err)
	}
	want := RTSP{Enabled: true, Address: "127.0.0.1:9554", UDPRTPAddress: "127.0.0.1:9000", UDPRTCPAddress: "127.0.0.1:9001", ReadTimeout: 3 * time.Second}
	if cfg.RTSP != want {
		t.Fatalf("got %+v", cfg.RTSP)
	}
	// TCP only.
	cfg, err = load(t, writeConfig(t, "rtsp: {enabled: true, udp_rtp_address: \"\", udp_rtcp_address: \"\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RTSP.UDPRTPAddress != "" || cfg.RTSP.UDPRTCPAddress != "" {
		t.Fatalf("got %+v", cfg.RTSP)
	}
}

func TestRTSPEnv(t *testing.T) {
	cfg, err := load(t, "../configs/mps.yaml", "MPS_RTSP_ENABLED=true", "MPS_RTSP_ADDRESS=:7554",
		"MPS_RTSP_UDP_RTP_ADDRESS=:7000", "MPS_RTSP_UDP_RTCP_ADDRESS=:7001", "MPS_RTSP_READ_TIMEOUT=5s")
	if err != nil {
		t.Fatal(err)
	}
	want := RTSP{Enabled: true, Address: ":7554", UDPRTPAddress: ":7000", UDPRTCPAddress: ":7001", ReadTimeout: 5 * time.Second}
	if cfg.RTSP != want {
		t.Fatalf("got %+v", cfg.RTSP)
	}
}

func TestRTSPValidation(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"rtsp: {enabled: true, address: nope}", "rtsp.address"},
		{"rtsp: {enabled: true, address: \":8080\"}", "rtsp.address and http.address"},
		{"rtsp: {enabled: true, address: \":1935\"}", "rtsp.address and rtmp.address"},
		{"rtsp: {read_timeout: 0s}", "rtsp.read_timeout"},
		{"rtsp: {read_timeout: 10}", "no unit"},
		{"rtsp: {enabled: true, udp_rtp_address: \"\"}", "set both"},
		{"rtsp: {enabled: true, udp_rtp_address: \":8001\", udp_rtcp_address: \":8002\"}", "must be even"},
		{"rtsp: {enabled: true, udp_rtp_address: \":8000\", udp_rtcp_address: \":8003\"}", "RTP port plus one"},
		{"rtsp: {enabled: true, udp_rtp_address: \":0\", udp_rtcp_address: \":1\"}", "fixed port"},
		{"rtsp: {enabled: true, udp_rtp_address: \"x\", udp_rtcp_address: \":8001\"}", "rtsp.udp_rtp_address"},
		{"rtsp: {bogus: 1}", "bogus"},
	} {
		_, err := load(t, writeConfig(t, c.body+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.body, err, c.want)
		}
	}
	// Disabled: the addresses are not checked.
	if _, err := load(t, writeConfig(t, "rtsp: {enabled: false, address: nope}\n")); err != nil {
		t.Errorf("disabled rtsp with a bad address: %v", err)
	}
}
