//go:build !linux

package miner

import (
	"errors"
	"net"
	"time"
)

// txStamper is Linux-only; elsewhere KernelTimestamps times a submit from
// the clock's time before its write.
type txStamper struct{}

func newTxStamper(net.Conn) (*txStamper, error) {
	return nil, errors.New("miner: transmit timestamps need Linux")
}

func (s *txStamper) wrote(int) uint32 { return 0 }

func (s *txStamper) stamp(uint32) (time.Time, bool) { return time.Time{}, false }
