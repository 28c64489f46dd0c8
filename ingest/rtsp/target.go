package rtsp

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/mps-dev/mps/ingest/auth"
	"github.com/mps-dev/mps/stream"
)

// maxTargetLength bounds the path and the query that parseTarget accepts.
const maxTargetLength = 4096

// parseTarget turns the path and raw query of an RTSP URL
// (rtsp://HOST:8554/live/cam1?key=SECRET) into the hub stream name
// ("live/cam1"), the stream key and the query parameters. The leading and
// trailing slashes of the path are dropped, and the name must pass
// stream.ValidateName. Query values are decoded leniently, as the RTMP
// ingest does: '+' stays a '+', and a bad percent escape is kept as sent.
func parseTarget(path, rawQuery string) (name, key string, query url.Values, err error) {
	if len(path) > maxTargetLength || len(rawQuery) > maxTargetLength {
		return "", "", nil, fmt.Errorf("%w: URL longer than %d bytes", stream.ErrInvalidName, maxTargetLength)
	}
	name = strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/")
	if err := stream.ValidateName(name); err != nil {
		return "", "", nil, err
	}
	// FFmpeg ends the query of some requests with a '/'.
	rawQuery = strings.TrimSuffix(rawQuery, "/")
	query = url.Values{}
	for kv := range strings.SplitSeq(rawQuery, "&") {
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
		query.Add(k, v)
	}
	return name, query.Get(auth.ParamKey), query, nil
}
