//go:build !linux

package miner

import (
	"errors"
	"io"
	"net"
	"time"
)

// rxStampReader is Linux-only; elsewhere KernelTimestamps falls back to
// the reader's clock.
type rxStampReader struct{ io.Reader }

func newRxStampReader(net.Conn) (*rxStampReader, error) {
	return nil, errors.New("miner: receive timestamps need Linux")
}

func (r *rxStampReader) stamp() time.Time { return time.Time{} }
