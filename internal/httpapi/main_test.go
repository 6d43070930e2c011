package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves a goroutine behind (servers,
// trackers and sessions must all stop with their contexts).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
