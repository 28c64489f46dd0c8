package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// RTSP configures the RTSP listener: publishers (ANNOUNCE/RECORD) and
// players (DESCRIBE/SETUP/PLAY) over TCP, and over UDP when the UDP
// addresses are set.
type RTSP struct {
	Enabled bool   `koanf:"enabled"`
	Address string `koanf:"address"`
	// UDPRTPAddress and UDPRTCPAddress carry the RTP and RTCP packets of
	// clients that use the UDP transport: both set, with an even RTP port
	// and the RTCP port next to it, or both empty for TCP only.
	UDPRTPAddress  string `koanf:"udp_rtp_address"`
	UDPRTCPAddress string `koanf:"udp_rtcp_address"`
	// ReadTimeout bounds every wait for a request or for a publisher's media.
	ReadTimeout time.Duration `koanf:"read_timeout"`
}

// DefaultRTSP is the RTSP section of Default: off, on TCP :8554 with UDP
// ports 8000 (RTP) and 8001 (RTCP), and a 10 s read timeout.
func DefaultRTSP() RTSP {
	return RTSP{Address: ":8554", UDPRTPAddress: ":8000", UDPRTCPAddress: ":8001", ReadTimeout: 10 * time.Second}
}

func (c *Config) validateRTSP() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	r := c.RTSP
	if r.ReadTimeout <= 0 {
		add("rtsp.read_timeout %s: must be more than 0", r.ReadTimeout)
	}
	if !r.Enabled {
		return errs
	}
	if err := checkAddress(r.Address); err != nil {
		add("rtsp.address: %w", err)
	} else {
		if sameListener(r.Address, c.HTTP.Address) {
			add("rtsp.address and http.address are both %q; give each its own port", r.Address)
		}
		if c.RTMP.Enabled && sameListener(r.Address, c.RTMP.Address) {
			add("rtsp.address and rtmp.address are both %q; give each its own port", r.Address)
		}
	}
	switch {
	case r.UDPRTPAddress == "" && r.UDPRTCPAddress == "":
		// TCP only.
	case r.UDPRTPAddress == "" || r.UDPRTCPAddress == "":
		add("rtsp.udp_rtp_address and rtsp.udp_rtcp_address: set both (such as :8000 and :8001) or leave both empty for TCP only")
	default:
		rtp, err1 := udpPort(r.UDPRTPAddress)
		rtcp, err2 := udpPort(r.UDPRTCPAddress)
		if err1 != nil {
			add("rtsp.udp_rtp_address: %w", err1)
		}
		if err2 != nil {
			add("rtsp.udp_rtcp_address: %w", err2)
		}
		if err1 == nil && err2 == nil {
			if rtp%2 != 0 {
				add("rtsp.udp_rtp_address %q: the RTP port must be even", r.UDPRTPAddress)
			}
			if rtcp != rtp+1 {
				add("rtsp.udp_rtcp_address %q: the RTCP port must be the RTP port plus one (%d)", r.UDPRTCPAddress, rtp+1)
			}
		}
	}
	return errs
}

// udpPort checks an RTP or RTCP address, which needs a fixed port: clients
// are told the port numbers, and RTCP's must follow RTP's.
func udpPort(addr string) (int, error) {
	if err := checkAddress(addr); err != nil {
		return 0, err
	}
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	if n == 0 {
		return 0, fmt.Errorf("%q: needs a fixed port, not 0", addr)
	}
	return n, nil
}
