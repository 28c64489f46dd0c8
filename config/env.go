package config

import "strings"

// EnvPrefix starts every environment variable MPS reads.
const EnvPrefix = "MPS_"

// EnvConfigPath names the configuration file, like `mps serve --config`.
const EnvConfigPath = EnvPrefix + "CONFIG"

// EnvName is the environment variable that overrides key, for example
// "rtmp.address" is MPS_RTMP_ADDRESS and "hub.grace_period" is
// MPS_HUB_GRACE_PERIOD.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// EnvNames lists every environment variable that overrides a configuration
// key, in the order of the file. Applications cannot be set this way.
func EnvNames() []string {
	out := []string{EnvConfigPath}
	for _, k := range configKeys().leaves {
		out = append(out, EnvName(k))
	}
	return out
}

// envKeys maps each override variable to its key.
func envKeys() map[string]string {
	m := map[string]string{}
	for _, k := range configKeys().leaves {
		m[EnvName(k)] = k
	}
	return m
}

// lookupEnv returns the last value of name in environ.
func lookupEnv(environ []string, name string) (string, bool) {
	val, found := "", false
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			val, found = v, true
		}
	}
	return val, found
}
