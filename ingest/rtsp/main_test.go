package rtsp

import (
	"os"
	"testing"

	"github.com/mps-dev/mps/test/testutil"
)

// TestMain fails the run when goroutines of this package outlive the tests.
func TestMain(m *testing.M) {
	os.Exit(testutil.RunWithLeakCheck(m, "github.com/mps-dev/mps/ingest/rtsp."))
}
