package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/mps-dev/mps/transcoder"
)

// decodeLadders decodes the ladders list. Each entry is a
// transcoder.Template as written: WithDefaults fills in what it leaves out.
func decodeLadders(v any) ([]transcoder.Template, error) {
	list, err := entries(v, "ladders")
	if err != nil {
		return nil, err
	}
	out := make([]transcoder.Template, 0, len(list))
	for i, m := range list {
		where := fmt.Sprintf("ladders[%d]", i)
		if err := checkTree(m, reflect.TypeFor[transcoder.Template](), where); err != nil {
			return nil, err
		}
		var tpl transcoder.Template
		if err := decode(m, &tpl); err != nil {
			return nil, prefixLines(where+".", err)
		}
		out = append(out, tpl)
	}
	return out, nil
}

// decodeLadderRules decodes the ladder_rules list.
func decodeLadderRules(v any) ([]LadderRule, error) {
	list, err := entries(v, "ladder_rules")
	if err != nil {
		return nil, err
	}
	out := make([]LadderRule, 0, len(list))
	for i, m := range list {
		where := fmt.Sprintf("ladder_rules[%d]", i)
		if err := checkTree(m, reflect.TypeFor[LadderRule](), where); err != nil {
			return nil, err
		}
		var r LadderRule
		if err := decode(m, &r); err != nil {
			return nil, prefixLines(where+".", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// entries checks that v is a list of maps.
func entries(v any, key string) ([]map[string]any, error) {
	if v == nil {
		return []map[string]any{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a list, got %T", key, v)
	}
	out := make([]map[string]any, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s[%d] must be a map, got %T", key, i, item)
		}
		out = append(out, m)
	}
	return out, nil
}

// checkTree refuses the first key in v that the type t does not have,
// naming it by its full path ("ladders[0].rungs[1].video.bitrat"). Values
// of the wrong shape are left to the decoder, which reports them.
func checkTree(v any, t reflect.Type, where string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			if tag := f.Tag.Get("koanf"); tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("unknown key %q (known keys in %s: %s)", where+"."+k, where,
					strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			}
			if err := checkTree(m[k], ft, where+"."+k); err != nil {
				return err
			}
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, item := range list {
			if err := checkTree(item, t.Elem(), fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// prefixLines puts prefix before each of the joined errors in err.
func prefixLines(prefix string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		out = append(out, fmt.Errorf("%s%w", prefix, e))
	}
	return errors.Join(out...)
}

// validateLadders checks the ladders, the ladder rules, the transcoder and
// the admission webhook.
func (c *Config) validateLadders() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	seen := map[string]int{}
	for i := range c.Ladders {
		tpl := &c.Ladders[i]
		where := fmt.Sprintf("ladders[%d]", i)
		// Capabilities are checked at server start, against the ffmpeg
		// that will run.
		if err := tpl.Validate(nil); err != nil {
			errs = append(errs, prefixLines(where+": ", err))
		}
		if j, dup := seen[tpl.Name]; dup && tpl.Name != "" {
			add("%s.name %q: already used by ladders[%d]", where, tpl.Name, j)
		} else {
			seen[tpl.Name] = i
		}
	}
	delete(seen, "")
	known := slices.Sorted(maps.Keys(seen))

	for i, r := range c.LadderRules {
		where := fmt.Sprintf("ladder_rules[%d]", i)
		switch {
		case r.Match == "":
			add("%s.match: must be set, like live/* or live/cam-*", where)
		case !strings.Contains(r.Match, "/"):
			add("%s.match %q: matches no stream; stream names have an application and a name, so write it like %s/*",
				where, r.Match, r.Match)
		default:
			if _, err := path.Match(r.Match, ""); err != nil {
				add("%s.match %q: %v (see Go's path.Match: *, ?, [a-z] and \\ to escape)", where, r.Match, err)
			}
		}
		switch _, ok := seen[r.Ladder]; {
		case r.Ladder == "":
			add("%s.ladder: must be set to the name of one of the ladders", where)
		case !ok:
			list := "there are none"
			if len(known) > 0 {
				list = "known: " + strings.Join(known, ", ")
			}
			add("%s.ladder %q: no such ladder (%s)", where, r.Ladder, list)
		}
	}

	t := c.Transcoder
	if strings.TrimSpace(t.FFmpeg) == "" {
		add("transcoder.ffmpeg: must be set, like ffmpeg or /usr/bin/ffmpeg")
	}
	if t.RestartBackoffMax <= 0 {
		add("transcoder.restart_backoff_max %s: must be more than 0", t.RestartBackoffMax)
	}
	th := t.Thumbnails
	if th.Interval < 0 {
		add("transcoder.thumbnails.interval %s: must be 0 (off) or more", th.Interval)
	}
	if th.Width < 16 || th.Width > 3840 || th.Width%2 != 0 {
		add("transcoder.thumbnails.width %d: must be an even number from 16 to 3840", th.Width)
	}
	switch {
	case th.StoreInterval < 0:
		add("transcoder.thumbnails.store_interval %s: must be 0 (off) or more", th.StoreInterval)
	case th.StoreInterval == 0:
	case th.Interval == 0:
		add("transcoder.thumbnails.store_interval %s: thumbnails are off (transcoder.thumbnails.interval 0), so there is nothing to store", th.StoreInterval)
	case th.StoreInterval < th.Interval:
		add("transcoder.thumbnails.store_interval %s: must be at least transcoder.thumbnails.interval %s", th.StoreInterval, th.Interval)
	}
	if th.StoreInterval > 0 && strings.TrimSpace(th.StorePath) == "" {
		add("transcoder.thumbnails.store_path: must be set when store_interval is not 0")
	}

	a := c.Admission
	if a.URL != "" {
		if err := checkHTTPURL(a.URL); err != nil {
			add("admission.url %q: %v", a.URL, err)
		}
	}
	if a.Timeout <= 0 {
		add("admission.timeout %s: must be more than 0", a.Timeout)
	}
	switch a.OnError {
	case OnErrorDeny, OnErrorAllow:
	default:
		add("admission.on_error %q: want %s or %s", a.OnError, OnErrorDeny, OnErrorAllow)
	}
	return errs
}

// checkHTTPURL accepts absolute http and https URLs.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must start with http:// or https://")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("has no host")
	}
	return nil
}
