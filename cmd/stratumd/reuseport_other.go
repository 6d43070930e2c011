//go:build !unix

package main

import (
	"errors"
	"syscall"
)

// reusePortSupported reports whether --reuse-port can work here.
const reusePortSupported = false

// reusePortControl fails: no SO_REUSEPORT here (config.check refuses
// --reuse-port first).
func reusePortControl(network, address string, c syscall.RawConn) error {
	return errors.New("SO_REUSEPORT is not available on this system")
}
