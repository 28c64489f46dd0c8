// Package admission asks an HTTP webhook whether a publisher may go on,
// and which ladder its stream gets.
//
// MPS POSTs a Request as JSON to the webhook's URL. The webhook answers:
//
//   - 2xx: admitted. The body may be empty, or a JSON object
//     {"ladder": "NAME"} that picks the stream's ladder ("" or absent: no
//     choice). Other fields are ignored.
//   - 401 or 403: refused. The reason is the answer's JSON "reason" field,
//     or else its body text.
//
// Any other status, a timeout, a connection failure or a 2xx body that is
// not such a JSON object is an error: the caller decides (admission.on_error)
// whether that admits or refuses the publisher.
package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/mps-dev/mps/ingest/auth"
)

// DefaultTimeout bounds a call when Client.Timeout is 0.
const DefaultTimeout = 2 * time.Second

// MaxAnswerSize bounds how much of an answer's body is read.
const MaxAnswerSize = 64 << 10

// maxReason bounds the reason kept from a refusal, as it goes to the log.
const maxReason = 500

// ErrRefused marks a publisher the webhook refused (401 or 403). It is
// auth.ErrAdmissionRefused, so that ingest reports it as a refusal.
var ErrRefused = auth.ErrAdmissionRefused

// Request is what the webhook receives.
type Request struct {
	// Stream is the full stream name, such as "live/cam1".
	Stream string `json:"stream"`
	// App is the stream's application, such as "live".
	App string `json:"app"`
	// Protocol is the ingest protocol, such as "rtmp".
	Protocol string `json:"protocol"`
	// RemoteAddr is the publisher's address, ip:port.
	RemoteAddr string `json:"remote_addr"`
	// Params are the publisher's query parameters that its application
	// lets through (never its key), such as {"ladder": ["default"]}.
	Params map[string][]string `json:"params"`
}

// Decision is an admitting answer.
type Decision struct {
	// Ladder is the ladder the webhook picked for the stream, or "" when
	// it picked none.
	Ladder string `json:"ladder"`
}

// Client calls the webhook. Set the fields before the first Check; it is
// safe for concurrent use.
type Client struct {
	// URL of the webhook (http or https).
	URL string
	// Timeout bounds each call, on top of the context's deadline
	// (0: DefaultTimeout).
	Timeout time.Duration
	// HTTP sends the requests (nil: http.DefaultClient).
	HTTP *http.Client
}

// Check asks the webhook about req. It returns the decision when the
// publisher is admitted, an error wrapping ErrRefused (with the webhook's
// reason) when it is refused, and any other error when the webhook could
// not be asked or gave an answer that does not follow the protocol.
func (c *Client) Check(ctx context.Context, req Request) (Decision, error) {
	if req.Params == nil {
		req.Params = map[string][]string{}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Decision{}, fmt.Errorf("admission webhook: encode request: %w", err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return Decision{}, fmt.Errorf("admission webhook: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", "mps-admission/1")
	client := c.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return Decision{}, fmt.Errorf("admission webhook: %w", redact(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerSize+1))
	if err != nil {
		return Decision{}, fmt.Errorf("admission webhook: read answer (status %d): %w", resp.StatusCode, err)
	}
	tooLarge := len(answer) > MaxAnswerSize
	if tooLarge {
		answer = answer[:MaxAnswerSize]
	}

	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Decision{}, fmt.Errorf("%w: %s", ErrRefused, reason(resp.StatusCode, answer))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		msg := fmt.Sprintf("admission webhook answered %s", resp.Status)
		if text := cleanText(string(answer)); text != "" {
			msg += ": " + text
		}
		return Decision{}, errors.New(msg)
	}
	if tooLarge {
		return Decision{}, fmt.Errorf("admission webhook: answer larger than %d bytes", MaxAnswerSize)
	}
	if len(bytes.TrimSpace(answer)) == 0 {
		return Decision{}, nil
	}
	var d Decision
	if err := json.Unmarshal(answer, &d); err != nil {
		return Decision{}, fmt.Errorf("admission webhook: answer (status %d) is not a JSON object like {\"ladder\": \"NAME\"}: %w",
			resp.StatusCode, err)
	}
	return d, nil
}

// reason is the reason of a refusal: the JSON "reason" field, the body
// text, or the status.
func reason(status int, answer []byte) string {
	var r struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(answer, &r); err == nil {
		if s := cleanText(r.Reason); s != "" {
			return s
		}
	}
	if s := cleanText(string(answer)); s != "" && !strings.HasPrefix(s, "{") {
		return s
	}
	return fmt.Sprintf("status %d %s", status, http.StatusText(status))
}

// cleanText makes text fit for one log line: control characters become
// spaces, and it is cut to maxReason bytes.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxReason {
		cut := maxReason
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// redact drops the query and user info of the webhook URL from a
// transport error, since they may hold a secret.
func redact(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return ue.Err
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
}

// Admitter returns an auth.Admitter that asks the webhook about each
// publisher. A refusal refuses the publisher. A ladder the webhook picks
// replaces the publisher's "ladder" parameter. When the webhook fails, the
// publisher is admitted with its own parameters if allowOnError, and
// refused otherwise; either way the failure is logged.
func (c *Client) Admitter(allowOnError bool, log *slog.Logger) auth.Admitter {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, pr auth.PublishRequest) (url.Values, error) {
		req := Request{
			Stream:     pr.Name,
			App:        pr.App.Name,
			Protocol:   pr.Protocol,
			RemoteAddr: pr.RemoteAddr,
			Params:     map[string][]string(pr.Params),
		}
		d, err := c.Check(ctx, req)
		switch {
		case errors.Is(err, ErrRefused):
			return nil, err
		case err != nil && allowOnError:
			log.Warn("admission webhook failed; admitting the publisher (admission.on_error: allow)",
				"stream", pr.Name, "remote", pr.RemoteAddr, "error", err)
			return pr.Params, nil
		case err != nil:
			log.Warn("admission webhook failed; refusing the publisher (admission.on_error: deny)",
				"stream", pr.Name, "remote", pr.RemoteAddr, "error", err)
			return nil, fmt.Errorf("%w: the webhook failed: %w", ErrRefused, err)
		}
		params := url.Values{}
		for k, v := range pr.Params {
			params[k] = append([]string(nil), v...)
		}
		if d.Ladder != "" {
			params.Set(auth.ParamLadder, d.Ladder)
		}
		return params, nil
	}
}
