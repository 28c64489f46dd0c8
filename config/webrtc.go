package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// WebRTC configures WHIP ingest (POST /whip/<application>/<stream>) and
// WHEP playback (POST /whep/<application>/<stream>) on the HTTP listener,
// and the ports their media flows through.
type WebRTC struct {
	// Enabled mounts the WHIP and WHEP endpoints and opens the ICE ports.
	Enabled bool `koanf:"enabled"`
	// UDPAddress is the one UDP port every WebRTC session's media uses
	// (ICE UDP mux), such as ":8189".
	UDPAddress string `koanf:"udp_address"`
	// TCPAddress is the ICE-TCP port, for clients behind firewalls that
	// block UDP. Empty disables ICE over TCP.
	TCPAddress string `koanf:"tcp_address"`
	// NAT1To1IPs is a comma-separated list of public IP addresses to
	// announce as host candidates instead of the machine's own addresses
	// (a server behind 1:1 NAT, a container with published ports).
	NAT1To1IPs string `koanf:"nat_1to1_ips"`
	// AACToOpus makes Opus audio for WHEP readers of a stream whose audio
	// is AAC (RTMP from OBS), with an ffmpeg child per reader. Off means
	// such readers get video only.
	AACToOpus bool `koanf:"aac_to_opus"`
}

// DefaultWebRTC is the webrtc section of Default: off, with ICE on UDP and
// TCP port 8189 once enabled.
func DefaultWebRTC() WebRTC {
	return WebRTC{UDPAddress: ":8189", TCPAddress: ":8189", AACToOpus: true}
}

// NAT1To1IPList returns the addresses of NAT1To1IPs.
func (w WebRTC) NAT1To1IPList() []string {
	var out []string
	for _, s := range strings.Split(w.NAT1To1IPs, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// validateWebRTC checks the webrtc section.
func (c *Config) validateWebRTC() []error {
	w := c.WebRTC
	if !w.Enabled {
		return nil
	}
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := checkAddress(w.UDPAddress); err != nil {
		add("webrtc.udp_address: %w", err)
	}
	if w.TCPAddress != "" {
		if err := checkAddress(w.TCPAddress); err != nil {
			add("webrtc.tcp_address: %w", err)
		} else if sameListener(w.TCPAddress, c.HTTP.Address) {
			add("webrtc.tcp_address and http.address are both %q; give each its own port", w.TCPAddress)
		} else if c.RTMP.Enabled && sameListener(w.TCPAddress, c.RTMP.Address) {
			add("webrtc.tcp_address and rtmp.address are both %q; give each its own port", w.TCPAddress)
		}
	}
	for _, app := range c.Applications {
		if app.Name == "whip" || app.Name == "whep" {
			add("applications: the name %q is reserved while webrtc.enabled is true (WHIP and WHEP use /%s/ paths); choose another name", app.Name, app.Name)
		}
	}
	for _, ip := range w.NAT1To1IPList() {
		if _, err := netip.ParseAddr(ip); err != nil {
			add("webrtc.nat_1to1_ips: %q is not an IP address", ip)
		}
	}
	return errs
}
