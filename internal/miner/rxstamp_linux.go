//go:build linux

package miner

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rxStampReader reads a TCP connection with recvmsg and keeps the kernel's
// receive timestamp (SO_TIMESTAMPNS) of the data each read returned: the
// moment the bytes reached the socket, whatever the reading goroutine was
// doing then.
type rxStampReader struct {
	rc   syscall.RawConn
	oob  [128]byte // room for SCM_TIMESTAMPNS (32 bytes on 64-bit) and the SCM_TIMESTAMPING (64) that transmit timestamps add
	iov  unix.Iovec
	msg  unix.Msghdr // reused: a read allocates nothing
	last time.Time
}

// newRxStampReader turns on SO_TIMESTAMPNS for conn, which must be a
// *net.TCPConn (or another socket offering syscall.Conn).
func newRxStampReader(conn net.Conn) (*rxStampReader, error) {
	rc, err := socketOption(conn, "receive timestamps", "SO_TIMESTAMPNS", unix.SO_TIMESTAMPNS, 1)
	if err != nil {
		return nil, err
	}
	return &rxStampReader{rc: rc}, nil
}

// socketOption sets the SOL_SOCKET option opt to val on conn's socket and
// returns the socket; errors name the feature (what) and the option (name).
func socketOption(conn net.Conn, what, name string, opt, val int) (syscall.RawConn, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("miner: %s: %T is not a socket", what, conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("miner: %s: %w", what, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, val)
	}); err != nil {
		return nil, fmt.Errorf("miner: %s: %w", what, err)
	}
	if serr != nil {
		return nil, fmt.Errorf("miner: %s: setsockopt %s: %w", what, name, serr)
	}
	return rc, nil
}

// Read is one recvmsg. The connection's read deadline applies as for
// net.Conn.Read.
func (r *rxStampReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg = unix.Msghdr{Iov: &r.iov, Control: &r.oob[0]}
	r.msg.SetIovlen(1)
	r.msg.SetControllen(len(r.oob))
	var (
		n     uintptr
		errno syscall.Errno
	)
	rerr := r.rc.Read(func(fd uintptr) bool {
		// unix.Recvmsg would allocate a source address on every call.
		n, _, errno = unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
		return errno != unix.EAGAIN
	})
	r.iov.Base, r.msg.Iov, r.msg.Control = nil, nil, nil // keep no pointer to p
	switch {
	case rerr != nil:
		return 0, rerr
	case errno != 0:
		return 0, os.NewSyscallError("recvmsg", errno)
	case n == 0:
		return 0, io.EOF
	}
	if r.msg.Flags&unix.MSG_CTRUNC == 0 {
		if t, ok := parseRxStamp(r.oob[:r.msg.Controllen]); ok {
			r.last = t
		}
	}
	return int(n), nil
}

// stamp returns the kernel receive time of the last read, zero before the
// first timestamped one.
func (r *rxStampReader) stamp() time.Time { return r.last }

// parseRxStamp finds the SCM_TIMESTAMPNS control message in oob.
func parseRxStamp(oob []byte) (time.Time, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPNS || len(m.Data) < 16 {
			continue
		}
		sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
		nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
		return time.Unix(sec, nsec), true
	}
	return time.Time{}, false
}
