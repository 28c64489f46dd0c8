package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/mps-dev/mps/stream"
)

// minSecretLength is the shortest signing secret accepted.
const minSecretLength = 16

// reservedApplications cannot name applications: the HTTP listener serves
// other things than live playback under these paths (the API, the
// playback of recordings, the outputs of jobs, and the web console).
var reservedApplications = []string{"api", "recordings", "outputs", "ui"}

// Validate checks every value and returns all the problems found, one per
// line, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		add("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		add("log.format %q: want text or json", c.Log.Format)
	}

	if err := checkAddress(c.HTTP.Address); err != nil {
		add("http.address: %w", err)
	}
	if c.RTMP.Enabled {
		if err := checkAddress(c.RTMP.Address); err != nil {
			add("rtmp.address: %w", err)
		} else if sameListener(c.RTMP.Address, c.HTTP.Address) {
			add("rtmp.address and http.address are both %q; give each its own port", c.RTMP.Address)
		}
	}

	if c.Hub.GracePeriod < 0 {
		add("hub.grace_period %s: must be 0 (end at once) or more", c.Hub.GracePeriod)
	}
	if c.Hub.ReaderQueue <= 0 {
		add("hub.reader_queue %d: must be more than 0", c.Hub.ReaderQueue)
	}
	if c.Hub.GOPCacheLimit <= 0 {
		add("hub.gop_cache_limit %d: must be more than 0", c.Hub.GOPCacheLimit)
	} else if c.Hub.ReaderQueue > 0 && c.Hub.ReaderQueue <= c.Hub.GOPCacheLimit {
		add("hub.reader_queue %d: must be larger than hub.gop_cache_limit %d, since a new reader starts with the cached GOP",
			c.Hub.ReaderQueue, c.Hub.GOPCacheLimit)
	}

	p := c.Packager
	if p.SegmentDuration <= 0 {
		add("packager.segment_duration %s: must be more than 0", p.SegmentDuration)
	}
	if p.PartDuration <= 0 {
		add("packager.part_duration %s: must be more than 0", p.PartDuration)
	} else if p.SegmentDuration > 0 && p.PartDuration >= p.SegmentDuration {
		add("packager.part_duration %s: must be shorter than packager.segment_duration %s", p.PartDuration, p.SegmentDuration)
	}
	if p.PlaylistSegments <= 0 {
		add("packager.playlist_segments %d: must be more than 0", p.PlaylistSegments)
	}
	if p.Linger <= 0 {
		add("packager.linger %s: must be more than 0", p.Linger)
	}

	errs = append(errs, c.validateApplications()...)
	errs = append(errs, c.validateLadders()...)
	errs = append(errs, c.validateRecording()...)
	errs = append(errs, c.validateJobs()...)
	errs = append(errs, c.validateRTSP()...)
	errs = append(errs, c.validateSRT()...)
	errs = append(errs, c.validateWebRTC()...)
	errs = append(errs, c.validatePull()...)
	errs = append(errs, c.validateAI()...)
	errs = append(errs, c.validateStorage()...)
	errs = append(errs, c.validateCluster()...)
	return errors.Join(errs...)
}

func (c *Config) validateApplications() []error {
	var errs []error
	if len(c.Applications) == 0 {
		return []error{errors.New("applications: list at least one application, such as {name: live}")}
	}
	seen := map[string]int{}
	for i, app := range c.Applications {
		where := fmt.Sprintf("applications[%d]", i)
		if app.Name != "" {
			where = fmt.Sprintf("applications[%d] (%s)", i, app.Name)
		}
		switch {
		case app.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: must be set", where))
		case strings.Contains(app.Name, "/"):
			errs = append(errs, fmt.Errorf("%s.name %q: must be one path part, without '/'", where, app.Name))
		case slices.Contains(reservedApplications, app.Name):
			errs = append(errs, fmt.Errorf("%s.name %q: reserved, since /%s/ paths are not playback of live streams; choose another name", where, app.Name, app.Name))
		default:
			if err := stream.ValidateName(app.Name); err != nil {
				errs = append(errs, fmt.Errorf("%s.name: %w", where, err))
			}
		}
		if j, dup := seen[app.Name]; dup && app.Name != "" {
			errs = append(errs, fmt.Errorf("%s.name %q: already used by applications[%d]", where, app.Name, j))
		}
		seen[app.Name] = i
		for k, key := range app.Keys {
			if strings.TrimSpace(key) == "" {
				errs = append(errs, fmt.Errorf("%s.keys[%d]: must not be empty", where, k))
			}
		}
		if app.SigningSecret != "" && len(app.SigningSecret) < minSecretLength {
			errs = append(errs, fmt.Errorf("%s.signing_secret: too short (%d characters); use at least %d random characters",
				where, len(app.SigningSecret), minSecretLength))
		}
	}
	return errs
}

// checkAddress accepts "host:port" and ":port", with a numeric port
// (0 picks a free port).
func checkAddress(addr string) error {
	if addr == "" {
		return errors.New("must be set, like :8080 or 127.0.0.1:8080")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w (write it like :8080 or 127.0.0.1:8080)", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q must be a number from 0 to 65535", addr, port)
	}
	return nil
}

// sameListener reports whether two valid addresses name the same fixed
// host and port.
func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa == "0" || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}
