package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// LoadOptions says where Load reads from.
type LoadOptions struct {
	// Path is the configuration file. Empty means MPS_CONFIG, and when
	// that is unset too, DefaultPath, which may be missing (the built-in
	// defaults are used then). A file named by Path or MPS_CONFIG must exist.
	Path string
	// Environ is the environment, as "KEY=value" strings. Nil means the
	// process environment.
	Environ []string
}

// Load reads the configuration file, applies the MPS_* environment
// variables on top of it and validates the result.
func Load(opts LoadOptions) (*Config, error) {
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	cfg := Default()

	path, required := opts.Path, true
	if path == "" {
		if p, ok := lookupEnv(environ, EnvConfigPath); ok && p != "" {
			path = p
		} else {
			path, required = DefaultPath, false
		}
	}
	if err := loadFile(&cfg, path, required); err != nil {
		return nil, err
	}
	if err := loadEnv(&cfg, environ); err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	cfg.Recording.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration%s: %w", sourceLabel(cfg.Source), err)
	}
	return &cfg, nil
}

func sourceLabel(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// loadFile merges the YAML file at path into cfg.
func loadFile(cfg *Config, path string, required bool) error {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		if !required && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read config %s: %w", path, err)
	}
	cfg.Source = path
	raw := k.Raw()
	// Before the key check, so that a map where the list belongs is
	// reported as such.
	rules, hasRules, err := takeRecordingRules(raw)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	workflows, hasWorkflows, err := takeJobWorkflows(raw)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if err := configKeys().unknown(k.Keys(), ""); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if apps, ok := raw["applications"]; ok {
		delete(raw, "applications")
		list, err := decodeApplications(apps)
		if err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		cfg.Applications = list
	}
	if ladders, ok := raw["ladders"]; ok {
		delete(raw, "ladders")
		list, err := decodeLadders(ladders)
		if err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		cfg.Ladders = list
	}
	if rules, ok := raw["ladder_rules"]; ok {
		delete(raw, "ladder_rules")
		list, err := decodeLadderRules(rules)
		if err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
		cfg.LadderRules = list
	}
	if err := decode(raw, cfg); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if hasRules {
		cfg.Recording.Rules = rules
	}
	if hasWorkflows {
		cfg.Jobs.Workflows = workflows
	}
	return nil
}

// loadEnv applies MPS_<SECTION>_<KEY> variables. Empty values are ignored,
// so that an unset variable in a container definition cannot wipe a value
// (such as the API token) from the file.
func loadEnv(cfg *Config, environ []string) error {
	keys := envKeys()
	k := koanf.New(".")
	err := k.Load(env.Provider(".", env.Opt{
		Prefix: EnvPrefix,
		TransformFunc: func(name, val string) (string, any) {
			if val == "" {
				return "", nil
			}
			return keys[name], val
		},
		EnvironFunc: func() []string { return environ },
	}), nil)
	if err != nil {
		return fmt.Errorf("read MPS_* variables: %w", err)
	}
	// One key at a time, so that an error names its variable.
	for _, key := range k.Keys() {
		one := koanf.New(".")
		if err := one.Set(key, k.Get(key)); err != nil {
			return fmt.Errorf("%s: %w", EnvName(key), err)
		}
		if err := decode(one.Raw(), cfg); err != nil {
			return fmt.Errorf("%s=%q: %w", EnvName(key), k.String(key), err)
		}
	}
	return nil
}

// decodeApplications decodes the applications list. Each entry starts from
// DefaultApplication, so that an entry only lists what it changes.
func decodeApplications(v any) ([]Application, error) {
	if v == nil {
		return []Application{}, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("applications must be a list, got %T", v)
	}
	out := make([]Application, 0, len(list))
	ks := keysOf(reflect.TypeFor[Application]())
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("applications[%d] must be a map with a name, got %T", i, item)
		}
		if err := ks.unknown(slices.Sorted(maps.Keys(m)), fmt.Sprintf(" in applications[%d]", i)); err != nil {
			return nil, err
		}
		app := DefaultApplication("")
		if err := decode(m, &app); err != nil {
			return nil, fmt.Errorf("applications[%d]: %w", i, err)
		}
		out = append(out, app)
	}
	return out, nil
}

// decode copies the values in m onto out, leaving absent fields as they
// are. Unknown keys are an error; durations need a unit.
func decode(m map[string]any, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "koanf",
		Result:           out,
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			mapstructure.StringToTimeDurationHookFunc(),
			// Bitrates: "128k", "2.5M".
			mapstructure.TextUnmarshallerHookFunc(),
		),
	})
	if err != nil {
		return fmt.Errorf("decoder: %w", err)
	}
	return plainDecodeError(d.Decode(m))
}

// plainDecodeError turns mapstructure's multi-line report into one line per
// problem, each starting with its key.
func plainDecodeError(err error) error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if de, ok := e.(*mapstructure.DecodeError); ok {
			if inner, ok := de.Unwrap().(interface{ Unwrap() []error }); ok {
				walk(inner.(error))
				return
			}
			out = append(out, fmt.Errorf("%s: %w", de.Name(), de.Unwrap()))
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e)
	}
	walk(errors.Unwrap(err))
	if len(out) == 0 {
		return err
	}
	return errors.Join(out...)
}

// durationHook refuses bare numbers for durations: "10" would otherwise
// mean ten nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, fmt.Errorf("duration %v has no unit; write it like 10s, 200ms or 1m", data)
	}
	return data, nil
}

// configKeys returns the keys of Config.
func configKeys() keySet { return keysOf(reflect.TypeFor[Config]()) }
