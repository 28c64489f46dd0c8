package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// WebRTC runs WHIP and WHEP sessions (an *ingest/webrtc.Server). The web
// package only speaks HTTP to it: SDP in, SDP out. Errors that carry an
// HTTPStatus() int method answer with that status; others with 500.
type WebRTC interface {
	// Publish authorises a WHIP publisher of name with key (the bearer
	// token, "" when none) and answers its SDP offer.
	Publish(ctx context.Context, name, key, remoteAddr string, query url.Values, offer []byte) (answer []byte, id string, err error)
	// Play answers a WHEP player's SDP offer for name.
	Play(ctx context.Context, name, remoteAddr string, offer []byte) (answer []byte, id string, err error)
	// EndSession ends session id of kind "whip" or "whep" on name.
	EndSession(kind, name, id string) error
}

// WHIP and WHEP paths: POST /whip/{name} publishes, POST /whep/{name}
// plays; the Location answered, /whip/{name}/{session}, is the session's
// resource, which DELETE ends.
const (
	prefixWHIP = "/whip/"
	prefixWHEP = "/whep/"
)

// maxOfferSize bounds an SDP offer's body.
const maxOfferSize = 64 << 10

// isWebRTCPath reports whether path is a WHIP or WHEP path.
func isWebRTCPath(path string) bool {
	return strings.HasPrefix(path, prefixWHIP) || strings.HasPrefix(path, prefixWHEP)
}

// serveWebRTC serves the WHIP and WHEP endpoints. They need no API token:
// a WHIP publisher's bearer token is its stream key, and WHEP playback is
// as open as HLS playback.
func (s *Server) serveWebRTC(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "POST, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link")

	kind, prefix := "whip", prefixWHIP
	if strings.HasPrefix(r.URL.Path, prefixWHEP) {
		kind, prefix = "whep", prefixWHEP
	}
	if s.webrtc == nil {
		writeWebRTCError(w, http.StatusNotImplemented, "WebRTC is not enabled on this server (webrtc.enabled)")
		return
	}
	rest := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix), "/")
	switch r.Method {
	case http.MethodOptions:
		h.Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		s.postWebRTC(w, r, kind, prefix, rest)
	case http.MethodDelete:
		i := strings.LastIndexByte(rest, '/')
		if i <= 0 {
			writeWebRTCError(w, http.StatusNotFound, "no such session")
			return
		}
		if err := s.webrtc.EndSession(kind, rest[:i], rest[i+1:]); err != nil {
			writeWebRTCErr(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		// Trickle ICE and ICE restarts are not supported: the answer holds
		// every candidate.
		h.Set("Allow", "POST, DELETE, OPTIONS")
		writeWebRTCError(w, http.StatusMethodNotAllowed, "trickle ICE is not supported; the answer carries every candidate")
	default:
		h.Set("Allow", "POST, DELETE, OPTIONS")
		writeWebRTCError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func (s *Server) postWebRTC(w http.ResponseWriter, r *http.Request, kind, prefix, name string) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/sdp" {
			writeWebRTCError(w, http.StatusUnsupportedMediaType, "the body must be an SDP offer (Content-Type: application/sdp)")
			return
		}
	}
	offer, err := io.ReadAll(io.LimitReader(r.Body, maxOfferSize+1))
	if err != nil {
		writeWebRTCError(w, http.StatusBadRequest, "reading the offer: "+err.Error())
		return
	}
	if len(offer) > maxOfferSize {
		writeWebRTCError(w, http.StatusRequestEntityTooLarge, "the offer is too large")
		return
	}
	var answer []byte
	var id string
	if kind == "whip" {
		key, _ := bearerToken(r.Header.Get("Authorization"))
		answer, id, err = s.webrtc.Publish(r.Context(), name, key, r.RemoteAddr, r.URL.Query(), offer)
	} else {
		answer, id, err = s.webrtc.Play(r.Context(), name, r.RemoteAddr, offer)
	}
	if err != nil {
		if st := webrtcStatus(err); st == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mps"`)
		}
		writeWebRTCErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", prefix+name+"/"+id)
	w.WriteHeader(http.StatusCreated)
	w.Write(answer)
}

func webrtcStatus(err error) int {
	var se interface{ HTTPStatus() int }
	if errors.As(err, &se) {
		return se.HTTPStatus()
	}
	if errors.Is(err, context.Canceled) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeWebRTCErr(w http.ResponseWriter, err error) {
	writeWebRTCError(w, webrtcStatus(err), err.Error())
}

// writeWebRTCError answers with a plain-text reason: WHIP clients show it.
func writeWebRTCError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}
