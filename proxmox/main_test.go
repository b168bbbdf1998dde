package proxmox

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: every
// client is closed and every server shut down.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
