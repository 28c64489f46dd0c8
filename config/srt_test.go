package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSRTDefaults(t *testing.T) {
	d := Default()
	if d.SRT.Enabled || d.SRT.Address != ":8890" || d.SRT.Latency != 120*time.Millisecond || len(d.SRT.Passphrases) != 0 {
		t.Fatalf("SRT defaults %+v", d.SRT)
	}
	cfg, err := load(t, "../configs/mps.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.SRT, d.SRT) {
		t.Fatalf("configs/mps.yaml srt %+v, Default %+v", cfg.SRT, d.SRT)
	}
}

func TestSRTSection(t *testing.T) {
	cfg, err := load(t, writeConfig(t, `
srt:
  enabled: true
  address: "127.0.0.1:9000"
  latency: 400ms
  passphrases:
    - application: live
      passphrase: "0123456789abc"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := SRT{Enabled: true, Address: "127.0.0.1:9000", Latency: 400 * time.Millisecond,
		Passphrases: []SRTPassphrase{{Application: "live", Passphrase: "0123456789abc"}}}
	if !reflect.DeepEqual(cfg.SRT, want) {
		t.Fatalf("got %+v", cfg.SRT)
	}
	if m := cfg.SRT.PassphraseMap(); m["live"] != "0123456789abc" || len(m) != 1 {
		t.Fatalf("map %v", m)
	}
}

func TestSRTEnv(t *testing.T) {
	cfg, err := load(t, "../configs/mps.yaml", "MPS_SRT_ENABLED=true", "MPS_SRT_ADDRESS=:7000", "MPS_SRT_LATENCY=1s")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.SRT.Enabled || cfg.SRT.Address != ":7000" || cfg.SRT.Latency != time.Second {
		t.Fatalf("got %+v", cfg.SRT)
	}
}

func TestSRTValidation(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"srt: {enabled: true, address: nope}", "srt.address"},
		{"srt: {latency: -1s}", "srt.latency"},
		{"srt: {latency: 1500us}", "whole milliseconds"},
		{"srt: {latency: 10}", "no unit"},
		{"srt: {passphrases: [{application: live, passphrase: short}]}", "srt.passphrases[0].passphrase: 5 characters"},
		{"srt: {passphrases: [{application: live, passphrase: " + strings.Repeat("x", 80) + "}]}", "80 characters"},
		{"srt: {passphrases: [{application: nosuch, passphrase: 0123456789}]}", "no such application"},
		{"srt: {passphrases: [{passphrase: 0123456789}]}", "application: missing"},
		{"srt: {passphrases: [{application: live, passphrase: 0123456789}, {application: live, passphrase: 0123456789}]}", "listed twice"},
		{"srt: {passphrases: {live: x}}", "passphrases"},
		{"srt: {bogus: 1}", "bogus"},
	} {
		_, err := load(t, writeConfig(t, c.body+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.body, err, c.want)
		}
	}
}
