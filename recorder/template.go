package recorder

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// pathVars are the values of one archive's path template.
type pathVars struct {
	Name      string // full stream name, "live/cam1"
	Rendition string
	Session   string
	Seq       int
	Time      time.Time
}

// PathFields are the fields a path template may use, each in braces:
// {name} is the full stream name (live/cam1), {app} and {stream} its
// application and the rest (live, cam1), {rendition} the recorded
// rendition (source, 720p), {date} and {time} the archive's start (UTC),
// {seq} its number in the recording session and {session} the session id.
var PathFields = []string{"name", "app", "stream", "rendition", "date", "time", "seq", "session"}

// ParsePathTemplate checks a path template such as
// "{name}/{date}/{time}-{rendition}-{seq}": relative, no empty, "." or
// ".." elements, balanced braces around known fields, and {seq} or {time}
// so that archives never share a name.
func ParsePathTemplate(tpl string) error {
	if strings.TrimSpace(tpl) == "" {
		return errors.New("must be set, like " + DefaultPathTemplate)
	}
	if path.IsAbs(tpl) || filepath.IsAbs(tpl) {
		return errors.New("must be relative to recording.dir, not absolute")
	}
	for elem := range strings.SplitSeq(tpl, "/") {
		switch elem {
		case "":
			return errors.New("has an empty path element (a doubled or trailing '/')")
		case ".", "..":
			return fmt.Errorf("must not contain a %q path element", elem)
		}
	}
	for rest := tpl; rest != ""; {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			break
		}
		if rest[i] == '}' {
			return errors.New("has a '}' without its '{'")
		}
		j := strings.IndexAny(rest[i+1:], "{}")
		if j < 0 || rest[i+1+j] == '{' {
			return errors.New("has a '{' without its '}'")
		}
		field := rest[i+1 : i+1+j]
		if !slices.Contains(PathFields, field) {
			return fmt.Errorf("unknown field {%s} (known: {%s})", field, strings.Join(PathFields, "} {"))
		}
		rest = rest[i+j+2:]
	}
	if !strings.Contains(tpl, "{seq}") && !strings.Contains(tpl, "{time}") {
		return errors.New("needs {seq} or {time}, or archives would overwrite each other")
	}
	return nil
}

// expandPath fills in a template checked by ParsePathTemplate. Stream names
// are validated by the hub ([A-Za-z0-9_.-] parts, no "." or ".."), so the
// result stays below the recordings folder; it is checked again anyway.
func expandPath(tpl string, v pathVars) (string, error) {
	app, rest, ok := strings.Cut(v.Name, "/")
	if !ok {
		rest = app
	}
	t := v.Time.UTC()
	r := strings.NewReplacer(
		"{name}", v.Name,
		"{app}", app,
		"{stream}", rest,
		"{rendition}", v.Rendition,
		"{date}", t.Format("2006-01-02"),
		"{time}", t.Format("150405"),
		"{seq}", fmt.Sprintf("%04d", v.Seq),
		"{session}", v.Session,
	)
	p := r.Replace(tpl)
	if !filepath.IsLocal(p) || path.Clean(p) != p {
		return "", fmt.Errorf("archive path %q escapes the recordings folder", p)
	}
	return p, nil
}
