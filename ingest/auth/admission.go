package auth

import (
	"context"
	"errors"
	"net/url"

	"github.com/mps-dev/mps/stream"
)

// ErrAdmissionRefused marks a publisher that an admission hook turned away.
var ErrAdmissionRefused = errors.New("refused by admission")

// PublishRequest describes a publisher that the key policy has authorised,
// as an admission hook sees it.
type PublishRequest struct {
	Name       string // full stream name, such as "live/cam1"
	Protocol   string
	RemoteAddr string
	App        App
	// Params are the publisher's query parameters that App lets through.
	Params url.Values
}

// Admitter decides, after the key check and before any media is accepted,
// whether a publisher may go on. It returns the parameters to publish with
// (it may add or change some, such as "ladder"), or an error that refuses
// the publisher; the error's text is the logged reason.
type Admitter func(ctx context.Context, req PublishRequest) (url.Values, error)

// PublishInfo describes a publisher that the hub has accepted, whatever
// its protocol.
type PublishInfo struct {
	// Name is the hub stream name, such as "live/cam1".
	Name string
	// App is the application policy that authorised the publisher.
	App App
	// Params holds the query parameters of the stream key that App lets
	// through (see App.Params): never the key itself.
	Params url.Values
	// Protocol is the ingest protocol, such as "rtmp" or "srt".
	Protocol   string
	RemoteAddr string
	// Publisher is the publisher of the connection's first session. A
	// change of codec parameters mid-stream starts a new session with a
	// new Publisher (readers see it as a new stream.Session).
	Publisher *stream.Publisher
}
