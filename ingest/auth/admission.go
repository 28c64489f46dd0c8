package auth

import (
	"context"
	"errors"
	"net/url"
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
