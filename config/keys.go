package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// keySet lists the keys a struct accepts, flattened with "." between
// levels: sections ("hub") as well as leaves ("hub.grace_period").
type keySet struct {
	all    map[string]bool
	leaves []string        // scalar keys, in declaration order
	lists  map[string]bool // keys that hold a list
}

// keysOf walks the koanf tags of struct type t. Slices are leaves: their
// elements are checked on their own (see decodeApplications).
func keysOf(t reflect.Type) keySet {
	ks := keySet{all: map[string]bool{}, lists: map[string]bool{}}
	ks.walk(t, "")
	return ks
}

func (ks *keySet) walk(t reflect.Type, prefix string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("koanf")
		if tag == "" || tag == "-" {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		ks.all[key] = true
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == t.PkgPath() {
			ks.walk(f.Type, key)
			continue
		}
		if f.Type.Kind() == reflect.Slice {
			ks.lists[key] = true
		} else {
			ks.leaves = append(ks.leaves, key)
		}
	}
}

// unknown returns an error naming the first key in keys that ks does not
// accept, with the keys that its section does accept.
func (ks keySet) unknown(keys []string, where string) error {
	for _, k := range keys {
		if ks.all[k] {
			continue
		}
		// A key below a leaf ("hub.grace_period.x") is reported as written.
		section, _, nested := strings.Cut(k, ".")
		if nested && ks.lists[section] {
			return fmt.Errorf("%s must be a list (entries start with \"- \"), not a map with the key %q", section, k)
		}
		if !nested || !ks.all[section] {
			section = ""
		}
		return fmt.Errorf("unknown key %q%s (known keys%s: %s)", k, where,
			sectionLabel(section), strings.Join(ks.children(section), ", "))
	}
	return nil
}

func sectionLabel(section string) string {
	if section == "" {
		return ""
	}
	return " in " + section
}

// children lists the direct sub-keys of section ("" for the top level).
func (ks keySet) children(section string) []string {
	var out []string
	for k := range ks.all {
		rest := k
		if section != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(k, section+"."); !ok {
				continue
			}
		}
		if !strings.Contains(rest, ".") {
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out
}
