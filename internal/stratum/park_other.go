//go:build !linux

package stratum

import (
	"errors"
	"log/slog"
	"time"
)

// parker is Linux-only (park_linux.go); elsewhere sessions do not park
// and every reader keeps its goroutine.
type parker struct{}

// newParker returns nil: no parking here.
func newParker(*slog.Logger, time.Duration) *parker { return nil }

func (*parker) arm(*session, int) error { return errors.New("stratum: no parking on this platform") }

func (*parker) forget(*session, int32) {}

func (*parker) quietFor() time.Duration { return parkQuiet }
