package rtmp

import (
	"net/url"
	"strings"
)

// parseTarget turns the URL that gortmplib builds from the connect tcUrl and
// the publish/play stream key into a hub stream name and query values.
//
//	tcUrl rtmp://h/live, key cam1?key=S   -> rtmp://h/live/cam1?key=S -> "live/cam1", key=S
//	tcUrl rtmp://h/live?key=S, key cam1   -> rtmp://h/live?key=S/cam1 -> "live/cam1", key=S
//
// The name is returned as the client sent it (percent escapes decoded); it
// still has to pass stream.ValidateName.
func parseTarget(u *url.URL) (name string, query url.Values) {
	if u == nil {
		return "", url.Values{}
	}
	path := u.Path
	rawQuery := u.RawQuery
	query = url.Values{}

	// A query in the tcUrl swallows the stream key that gortmplib appends
	// after a '/': move that part back into the path. Only when the path is
	// the application alone, because keys may contain '/' themselves.
	if q, rest, ok := strings.Cut(rawQuery, "/"); ok && !strings.Contains(strings.Trim(path, "/"), "/") {
		keyPath, keyQuery, _ := strings.Cut(rest, "?")
		if p, err := url.PathUnescape(keyPath); err == nil {
			keyPath = p
		}
		path = strings.TrimSuffix(path, "/") + "/" + keyPath
		rawQuery = q
		addQuery(query, keyQuery)
	}
	addQuery(query, rawQuery)
	return strings.TrimPrefix(path, "/"), query
}

// addQuery adds "a=1&b=2" to q. RTMP clients do not URL-encode stream keys,
// so '+' stays a '+', and a value with a bad percent escape is kept as sent.
func addQuery(q url.Values, raw string) {
	for kv := range strings.SplitSeq(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if dk, err := url.PathUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		q.Add(k, v)
	}
}
