package srt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mps-dev/mps/stream"
)

// Mode is what a caller wants to do with a stream.
type Mode int

// Modes of a stream ID.
const (
	ModeRead Mode = iota
	ModePublish
)

func (m Mode) String() string {
	if m == ModePublish {
		return "publish"
	}
	return "read"
}

// StreamID is a parsed SRT stream ID.
type StreamID struct {
	Mode Mode
	// Name is the hub stream name, such as "live/cam1".
	Name string
	// Key is the stream key given by a publisher ("" when none).
	Key string
	// User is the "u=" key of the access-control syntax, if any.
	User string
}

// ErrBadStreamID marks a stream ID that could not be parsed.
var ErrBadStreamID = errors.New("bad stream id")

// maxStreamID is the longest stream ID SRT carries.
const maxStreamID = 512

// ParseStreamID parses the two stream ID syntaxes MPS accepts:
//
//	#!::r=live/NAME,m=publish,s=KEY   (SRT access control; u= and other keys ignored)
//	#!::r=live/NAME,m=request         (m defaults to request)
//	publish:live/NAME:KEY             (KEY optional)
//	read:live/NAME
//
// The name must be a valid hub stream name with an application part.
func ParseStreamID(s string) (StreamID, error) {
	var id StreamID
	if s == "" {
		return id, fmt.Errorf("%w: empty (use #!::r=live/NAME,m=publish,s=KEY or publish:live/NAME:KEY)", ErrBadStreamID)
	}
	if len(s) > maxStreamID {
		return id, fmt.Errorf("%w: longer than %d bytes", ErrBadStreamID, maxStreamID)
	}
	if strings.HasPrefix(s, "#!::") {
		if err := id.parseAccessControl(s[len("#!::"):]); err != nil {
			return StreamID{}, err
		}
	} else if err := id.parseColon(s); err != nil {
		return StreamID{}, err
	}
	if err := stream.ValidateName(id.Name); err != nil {
		return StreamID{}, fmt.Errorf("%w: %w", ErrBadStreamID, err)
	}
	if !strings.Contains(id.Name, "/") {
		return StreamID{}, fmt.Errorf("%w: %q has no application (want APP/NAME, such as live/cam1)", ErrBadStreamID, id.Name)
	}
	if id.Mode == ModeRead && id.Key != "" {
		// A reader's key is not checked; keep it out of logs all the same.
		id.Key = ""
	}
	return id, nil
}

func (id *StreamID) parseAccessControl(body string) error {
	seen := map[string]bool{}
	mode := "request"
	for kv := range strings.SplitSeq(body, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: %q is not key=value", ErrBadStreamID, kv)
		}
		if seen[k] {
			return fmt.Errorf("%w: key %q given twice", ErrBadStreamID, k)
		}
		seen[k] = true
		switch k {
		case "r":
			id.Name = v
		case "m":
			mode = v
		case "s":
			id.Key = v
		case "u":
			id.User = v
		default:
			// h=, t= and custom keys carry nothing MPS uses.
		}
	}
	if !seen["r"] {
		return fmt.Errorf("%w: no r= (resource) key", ErrBadStreamID)
	}
	switch mode {
	case "publish":
		id.Mode = ModePublish
	case "request":
		id.Mode = ModeRead
	default:
		return fmt.Errorf("%w: m=%q: want publish or request", ErrBadStreamID, mode)
	}
	return nil
}

func (id *StreamID) parseColon(s string) error {
	verb, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%w: %q: want publish:APP/NAME[:KEY] or read:APP/NAME", ErrBadStreamID, s)
	}
	switch verb {
	case "publish":
		id.Mode = ModePublish
		id.Name, id.Key, _ = strings.Cut(rest, ":")
	case "read":
		id.Mode = ModeRead
		if strings.Contains(rest, ":") {
			return fmt.Errorf("%w: read takes no key", ErrBadStreamID)
		}
		id.Name = rest
	default:
		return fmt.Errorf("%w: %q: want publish or read", ErrBadStreamID, verb)
	}
	return nil
}
