//go:build unix

package main

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePortSupported reports whether --reuse-port can work here.
const reusePortSupported = true

// reusePortControl sets SO_REUSEPORT on a listening socket before bind, so
// that every process that does the same (under the same user) may bind the
// same address; the kernel spreads new connections over them.
func reusePortControl(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return fmt.Errorf("SO_REUSEPORT on %s: %w", address, err)
	}
	if serr != nil {
		return fmt.Errorf("SO_REUSEPORT on %s: %w", address, serr)
	}
	return nil
}
