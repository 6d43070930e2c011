//go:build linux

package miner

import (
	"encoding/binary"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// txStamper asks the kernel for the software transmit timestamp of every
// write on a TCP connection (SO_TIMESTAMPING, taken when the last byte of
// the write is handed to the network device) and finds it again by the
// write's byte offset: the moment a request left, whatever the writing
// goroutine's thread was doing then.
type txStamper struct {
	rc syscall.RawConn

	mu     sync.Mutex
	off    uint32               // bytes written since the timestamps were turned on
	stamps map[uint32]time.Time // by the offset of a write's last byte
	oob    [256]byte
	buf    [1]byte
}

// txStampFlags: software transmit timestamps, reported without the
// packet's payload and tagged with the byte offset (OPT_ID).
const txStampFlags = unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE |
	unix.SOF_TIMESTAMPING_OPT_ID | unix.SOF_TIMESTAMPING_OPT_TSONLY

// newTxStamper turns transmit timestamps on for conn, a *net.TCPConn (or
// another socket offering syscall.Conn) on which nothing was written yet
// by this Miner.
func newTxStamper(conn net.Conn) (*txStamper, error) {
	rc, err := socketOption(conn, "transmit timestamps", "SO_TIMESTAMPING", unix.SO_TIMESTAMPING, txStampFlags)
	if err != nil {
		return nil, err
	}
	return &txStamper{rc: rc, stamps: make(map[uint32]time.Time)}, nil
}

// wrote records a write of n bytes (the caller serializes writes) and
// returns the key of its timestamp.
func (s *txStamper) wrote(n int) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.off += uint32(n)
	return s.off - 1
}

// stamp returns the transmit time of the write with key, reading the
// timestamps the kernel has queued so far. Older keys are forgotten.
func (s *txStamper) stamp(key uint32) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.stamps[key]; ok {
		delete(s.stamps, key)
		return t, true
	}
	_ = s.rc.Control(func(fd uintptr) {
		for {
			k, t, isStamp, more := s.readOne(int(fd))
			if !more {
				return
			}
			if isStamp {
				s.stamps[k] = t
			}
		}
	})
	t, ok := s.stamps[key]
	for k := range s.stamps {
		if int32(k-key) <= 0 { // this one and older (offsets wrap at 4 GiB)
			delete(s.stamps, k)
		}
	}
	return t, ok
}

// readOne reads one report from the socket's error queue: more is false
// when the queue is empty, isStamp whether the report was a transmit
// timestamp.
func (s *txStamper) readOne(fd int) (key uint32, t time.Time, isStamp, more bool) {
	iov := unix.Iovec{Base: &s.buf[0]}
	iov.SetLen(len(s.buf))
	msg := unix.Msghdr{Iov: &iov, Control: &s.oob[0]}
	msg.SetIovlen(1)
	msg.SetControllen(len(s.oob))
	_, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)),
		unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if errno != 0 {
		return 0, time.Time{}, false, false
	}
	msgs, err := unix.ParseSocketControlMessage(s.oob[:msg.Controllen])
	if err != nil {
		return 0, time.Time{}, false, true
	}
	var haveT, haveK bool
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPING && len(m.Data) >= 16:
			// scm_timestamping: ts[0] is the software timestamp.
			t = time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:8])), int64(binary.NativeEndian.Uint64(m.Data[8:16])))
			haveT = true
		case (m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR ||
			m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR) && len(m.Data) >= int(unsafe.Sizeof(unix.SockExtendedErr{})):
			ee := (*unix.SockExtendedErr)(unsafe.Pointer(&m.Data[0]))
			if ee.Origin == unix.SO_EE_ORIGIN_TIMESTAMPING && ee.Info == unix.SCM_TSTAMP_SND {
				key, haveK = ee.Data, true
			}
		}
	}
	return key, t, haveT && haveK, true
}
