package config

import (
	"fmt"
	"time"
)

// SRT configures the SRT listener: MPEG-TS publishers and readers over UDP.
type SRT struct {
	Enabled bool   `koanf:"enabled"`
	Address string `koanf:"address"`
	// Latency is the SRT receive latency (TSBPD delay); the larger of it
	// and the caller's applies.
	Latency time.Duration `koanf:"latency"`
	// Passphrases give applications an SRT passphrase (AES encryption):
	// their callers must use it, and callers of other applications must
	// not use one.
	Passphrases []SRTPassphrase `koanf:"passphrases"`
}

// SRTPassphrase is the SRT passphrase of one application.
type SRTPassphrase struct {
	Application string `koanf:"application"`
	Passphrase  string `koanf:"passphrase"`
}

// SRT passphrase lengths, as SRT defines them.
const (
	srtMinPassphrase = 10
	srtMaxPassphrase = 79
)

// DefaultSRT is the SRT section of Default: off, on UDP :8890, 120 ms.
func DefaultSRT() SRT {
	return SRT{Address: ":8890", Latency: 120 * time.Millisecond, Passphrases: []SRTPassphrase{}}
}

// PassphraseMap maps each application to its SRT passphrase.
func (s SRT) PassphraseMap() map[string]string {
	m := make(map[string]string, len(s.Passphrases))
	for _, p := range s.Passphrases {
		m[p.Application] = p.Passphrase
	}
	return m
}

func (c *Config) validateSRT() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	s := c.SRT
	if s.Enabled {
		if err := checkAddress(s.Address); err != nil {
			add("srt.address: %w", err)
		}
	}
	if s.Latency < 0 || s.Latency > 60*time.Second {
		add("srt.latency %s: want 0 (the default, 120ms) to 60s", s.Latency)
	} else if s.Latency%time.Millisecond != 0 {
		add("srt.latency %s: SRT counts whole milliseconds", s.Latency)
	}
	seen := map[string]bool{}
	for i, p := range s.Passphrases {
		key := fmt.Sprintf("srt.passphrases[%d]", i)
		switch {
		case p.Application == "":
			add("%s.application: missing", key)
		case !c.hasApplication(p.Application):
			add("%s.application %q: no such application in applications", key, p.Application)
		case seen[p.Application]:
			add("%s.application %q: listed twice", key, p.Application)
		}
		seen[p.Application] = true
		if n := len(p.Passphrase); n < srtMinPassphrase || n > srtMaxPassphrase {
			add("%s.passphrase: %d characters; SRT wants %d to %d", key, n, srtMinPassphrase, srtMaxPassphrase)
		}
	}
	return errs
}

func (c *Config) hasApplication(name string) bool {
	for _, a := range c.Applications {
		if a.Name == name {
			return true
		}
	}
	return false
}
