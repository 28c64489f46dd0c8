// Package e2e drives the real mps binary with real clients: ffmpeg and
// ffprobe, raw TCP, RTMP players, test/rtmppub (H.265, AV1 and VP9 over
// Enhanced RTMP) and headless Chromium with hls.js and dash.js.
//
// TestMain builds ./cmd/mps once; every test starts its own server on free
// loopback ports with a temporary configuration (a partial mps.yaml; the
// addresses and the API token come from MPS_RTMP_ADDRESS, MPS_HTTP_ADDRESS
// and MPS_API_TOKEN), so tests run in parallel. Test media is made at test
// time with lavfi sources. Nothing here uses timing thresholds for
// performance: every timeout is a hang guard only.
//
// Run it with `go test ./test/e2e/` (or `make test`, which first installs
// ffmpeg, chromium and test/browser's npm packages). Flags, after -args:
//
//	-e2e.logs   print every server's log, not only those of failed tests
//	-e2e.race   build mps with the race detector
//	-e2e.keep   keep the temporary folder with the binary
//
// TestBrowserPlayback needs test/browser/node_modules (npm ci); without it
// the test is skipped, except under CI=true, where it fails.
package e2e
