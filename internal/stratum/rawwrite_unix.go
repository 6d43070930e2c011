//go:build unix

package stratum

import (
	"errors"
	"net"
	"syscall"

	"github.com/stratumd/stratumd/internal/proxyproto"
)

// rawSocket returns conn's socket for writes that are tried once without a
// deadline, or nil when conn is not a plain TCP socket underneath (TLS).
// A PROXY protocol connection is its socket for writing: the header only
// concerns reads.
func rawSocket(conn net.Conn) syscall.RawConn {
	if pc, ok := conn.(*proxyproto.Conn); ok {
		conn = pc.NetConn()
	}
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// tryWrite writes as much of b as the socket's send buffer takes at once,
// without waiting and without touching the connection's write deadline
// (setting one costs a runtime timer update per write, for every session
// of a fan-out). It returns the number of bytes written; the caller writes
// the rest, if any, the ordinary way with a deadline, and that path reports
// errors.
func tryWrite(rc syscall.RawConn, b []byte) int {
	n := 0
	err := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || m <= 0 {
				break
			}
			n += m
		}
		return true // never wait here
	})
	if err != nil {
		return 0 // closed, or an old deadline has passed: f did not run
	}
	return n
}
