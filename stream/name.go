package stream

import (
	"errors"
	"fmt"
	"strings"
)

// MaxNameLength bounds a stream name, including its application prefix.
const MaxNameLength = 200

// ErrInvalidName is returned for stream names that could escape a URL path or
// a folder: empty parts, "." and "..", and anything beyond [A-Za-z0-9_.-].
var ErrInvalidName = errors.New("invalid stream name")

// ValidateName checks a full stream name such as "live/cam1". Names are
// slash-separated parts, so they map one-to-one onto URL paths and folders.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("%w: length must be 1 to %d", ErrInvalidName, MaxNameLength)
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%w: %q has an empty, '.' or '..' part", ErrInvalidName, name)
		}
		for _, r := range part {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
			if !ok {
				return fmt.Errorf("%w: %q contains %q", ErrInvalidName, name, r)
			}
		}
	}
	return nil
}
