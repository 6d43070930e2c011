//go:build !unix

package stratum

import (
	"net"
	"syscall"
)

// rawSocket is unix-only: elsewhere every write takes the ordinary path.
func rawSocket(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, []byte) int { return 0 }
