package config

import (
	"fmt"
	"path"
	"reflect"
	"strings"
	"time"

	"github.com/mps-dev/mps/recorder"
	"github.com/mps-dev/mps/stream"
)

// Recording configures the recorder: where archives go, how they are cut,
// how long they are kept, and which streams record from their first frame.
type Recording struct {
	// Dir is the folder every archive lives below.
	Dir string `koanf:"dir"`
	// Path is the template of an archive's path below Dir, without the
	// extension, made of the fields recorder.ParsePathTemplate knows, such as
	// "{name}/{date}/{time}-{rendition}-{seq}".
	Path string `koanf:"path"`
	// Format is RecordingFormatFMP4 or RecordingFormatHLS.
	Format string `koanf:"format"`
	// FragmentDuration bounds how long media waits before it is flushed to
	// disk: a crash loses at most this much. 0 means the default, 1 s.
	FragmentDuration time.Duration `koanf:"fragment_duration"`
	// Rollover is how long an archive lasts before the next keyframe
	// starts a new one.
	Rollover time.Duration `koanf:"rollover"`
	// Finalize also writes a faststart, non-fragmented MP4 of each archive
	// that ends cleanly.
	Finalize  bool      `koanf:"finalize"`
	Retention Retention `koanf:"retention"`
	// Rules pick the streams that record from their first frame; the first
	// one that matches applies.
	Rules []RecordingRule `koanf:"rules"`
}

// Retention configures the deletion of old archives.
type Retention struct {
	// MaxAge deletes archives that ended longer ago than this; 0 keeps them.
	MaxAge time.Duration `koanf:"max_age"`
	// MaxSize bounds the bytes of archives kept per Scope, deleting the
	// oldest first; 0 sets no bound.
	MaxSize int64 `koanf:"max_size"`
	// Scope is RetentionScopeStream or RetentionScopeApplication: what
	// MaxSize applies to.
	Scope string `koanf:"scope"`
	// Interval is how often retention runs.
	Interval time.Duration `koanf:"interval"`
}

// RecordingRule makes the streams it matches record. It sets exactly one
// of Match and Application.
type RecordingRule struct {
	// Match is a path.Match glob on the full stream name, such as "live/*".
	Match string `koanf:"match"`
	// Application matches every stream of this application.
	Application string `koanf:"application"`
	// Renditions lists what to record: RecordingRenditionSource, rung names
	// such as "720p", or RecordingRenditionsAll alone. Empty means the
	// source only.
	Renditions []string `koanf:"renditions"`
	// Format overrides Recording.Format when set.
	Format string `koanf:"format"`
}

// Values of recording.format and of a rule's format.
const (
	RecordingFormatFMP4 = "fmp4"
	RecordingFormatHLS  = "hls"
)

// Values of recording.retention.scope.
const (
	RetentionScopeStream      = "stream"
	RetentionScopeApplication = "application"
)

// Names in a recording rule's renditions.
const (
	RecordingRenditionSource = "source"
	RecordingRenditionsAll   = "all"
)

// Bounds of recording.fragment_duration and recording.rollover.
const (
	DefaultFragmentDuration = time.Second
	MinFragmentDuration     = 100 * time.Millisecond
	MaxFragmentDuration     = time.Second
	MinRollover             = time.Second
)

// DefaultRecording returns the recording section of Default: archives in
// data/recordings, fragmented MP4, hourly rollover, kept for ever, and no
// rules, so that nothing records unless asked.
func DefaultRecording() Recording {
	return Recording{
		Dir:              "data/recordings",
		Path:             "{name}/{date}/{time}-{rendition}-{seq}",
		Format:           RecordingFormatFMP4,
		FragmentDuration: DefaultFragmentDuration,
		Rollover:         time.Hour,
		Retention: Retention{
			Scope:    RetentionScopeStream,
			Interval: time.Minute,
		},
		Rules: []RecordingRule{},
	}
}

// RecordingRuleFor returns the first recording rule that matches the full
// stream name (such as "live/cam1"). A rule with an application matches
// every stream whose first part is that application.
func (c *Config) RecordingRuleFor(streamName string) (RecordingRule, bool) {
	for _, r := range c.Recording.Rules {
		if r.matches(streamName) {
			return r, true
		}
	}
	return RecordingRule{}, false
}

func (r RecordingRule) matches(streamName string) bool {
	if r.Application != "" {
		app, _, ok := strings.Cut(streamName, "/")
		return ok && app == r.Application
	}
	ok, err := path.Match(r.Match, streamName)
	return err == nil && ok
}

// applyDefaults fills in the values that 0 stands for.
func (r *Recording) applyDefaults() {
	if r.FragmentDuration == 0 {
		r.FragmentDuration = DefaultFragmentDuration
	}
}

// decodeRecordingRules decodes the recording.rules list.
func decodeRecordingRules(v any) ([]RecordingRule, error) {
	const key = "recording.rules"
	list, err := entries(v, key)
	if err != nil {
		return nil, err
	}
	out := make([]RecordingRule, 0, len(list))
	for i, m := range list {
		where := fmt.Sprintf("%s[%d]", key, i)
		if err := checkTree(m, reflect.TypeFor[RecordingRule](), where); err != nil {
			return nil, err
		}
		var r RecordingRule
		if err := decode(m, &r); err != nil {
			return nil, prefixLines(where+".", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// takeRecordingRules removes recording.rules from raw and decodes it; ok
// is false when the file does not set it.
func takeRecordingRules(raw map[string]any) (rules []RecordingRule, ok bool, err error) {
	section, isMap := raw["recording"].(map[string]any)
	if !isMap {
		return nil, false, nil
	}
	v, ok := section["rules"]
	if !ok {
		return nil, false, nil
	}
	delete(section, "rules")
	rules, err = decodeRecordingRules(v)
	return rules, true, err
}

// validateRecording checks the recording section and packager.dvr_window.
func (c *Config) validateRecording() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Packager.DVRWindow < 0 {
		add("packager.dvr_window %s: must be 0 (off) or more", c.Packager.DVRWindow)
	}

	r := c.Recording
	if strings.TrimSpace(r.Dir) == "" {
		add("recording.dir: must be set, like data/recordings")
	}
	if err := recorder.ParsePathTemplate(r.Path); err != nil {
		add("recording.path %q: %w", r.Path, err)
	}
	if err := checkFormat(r.Format); err != nil {
		add("recording.format %q: %w", r.Format, err)
	}
	if d := r.FragmentDuration; d != 0 && (d < MinFragmentDuration || d > MaxFragmentDuration) {
		add("recording.fragment_duration %s: must be from %s to %s (0 means %s)",
			d, MinFragmentDuration, MaxFragmentDuration, DefaultFragmentDuration)
	}
	if r.Rollover < MinRollover {
		add("recording.rollover %s: must be at least %s", r.Rollover, MinRollover)
	}
	errs = append(errs, r.Retention.validate()...)
	for i, rule := range r.Rules {
		errs = append(errs, c.validateRecordingRule(fmt.Sprintf("recording.rules[%d]", i), rule)...)
	}
	return errs
}

func (rt Retention) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if rt.MaxAge < 0 {
		add("recording.retention.max_age %s: must be 0 (keep) or more", rt.MaxAge)
	}
	if rt.MaxSize < 0 {
		add("recording.retention.max_size %d: must be 0 (no limit) or more bytes", rt.MaxSize)
	}
	switch rt.Scope {
	case RetentionScopeStream, RetentionScopeApplication:
	default:
		add("recording.retention.scope %q: want %s or %s", rt.Scope, RetentionScopeStream, RetentionScopeApplication)
	}
	if rt.Interval <= 0 {
		add("recording.retention.interval %s: must be more than 0", rt.Interval)
	}
	return errs
}

func (c *Config) validateRecordingRule(where string, r RecordingRule) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case r.Match == "" && r.Application == "":
		add("%s: set match (a glob like live/*) or application (like live)", where)
	case r.Match != "" && r.Application != "":
		add("%s: set only one of match %q and application %q", where, r.Match, r.Application)
	case r.Match != "":
		if err := checkMatch(r.Match); err != nil {
			add("%s.match %q: %w", where, r.Match, err)
		}
	default:
		if _, ok := c.application(r.Application); !ok {
			add("%s.application %q: no such application (known: %s)", where, r.Application, strings.Join(c.applicationNames(), ", "))
		}
	}
	for _, err := range checkRenditions(r.Renditions) {
		add("%s.renditions%w", where, err)
	}
	if r.Format != "" {
		if err := checkFormat(r.Format); err != nil {
			add("%s.format %q: %w", where, r.Format, err)
		}
	}
	return errs
}

// checkMatch checks a glob on full stream names.
func checkMatch(pattern string) error {
	if !strings.Contains(pattern, "/") {
		return fmt.Errorf("matches no stream; stream names have an application and a name, so write it like %s/*", pattern)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("%w (see Go's path.Match: *, ?, [a-z] and \\ to escape)", err)
	}
	return nil
}

// checkRenditions checks a rule's renditions; each error starts with the
// entry's index ("[1]: ...") or ": " for the whole list.
func checkRenditions(list []string) []error {
	var errs []error
	seen := map[string]bool{}
	for i, name := range list {
		switch {
		case strings.TrimSpace(name) == "":
			errs = append(errs, fmt.Errorf("[%d]: must not be empty", i))
		case name == RecordingRenditionsAll && len(list) > 1:
			errs = append(errs, fmt.Errorf("[%d]: %q must be the only entry", i, RecordingRenditionsAll))
		case strings.Contains(name, "/") || stream.ValidateName(name) != nil:
			errs = append(errs, fmt.Errorf("[%d] %q: want %s, %s or a rung name (letters, digits, '_', '-' and '.')",
				i, name, RecordingRenditionSource, RecordingRenditionsAll))
		case seen[name]:
			errs = append(errs, fmt.Errorf("[%d] %q: listed twice", i, name))
		}
		seen[name] = true
	}
	return errs
}

func checkFormat(format string) error {
	if format != RecordingFormatFMP4 && format != RecordingFormatHLS {
		return fmt.Errorf("want %s or %s", RecordingFormatFMP4, RecordingFormatHLS)
	}
	return nil
}

// application returns the application called name.
func (c *Config) application(name string) (Application, bool) {
	for _, a := range c.Applications {
		if a.Name == name {
			return a, true
		}
	}
	return Application{}, false
}

func (c *Config) applicationNames() []string {
	names := make([]string, 0, len(c.Applications))
	for _, a := range c.Applications {
		names = append(names, a.Name)
	}
	return names
}
