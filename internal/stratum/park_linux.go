//go:build linux

package stratum

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// parker watches parked sessions' sockets in an epoll set of its own
// (level-triggered, one-shot: a socket readable when it is armed reports
// at once, and reports once per arming). Go's poller keeps watching the
// same sockets for the reads of sessions that are running; a socket may
// be in several epoll sets. Closing a socket takes it out of the set, so
// forget only drops the session from the table.
//
// The same goroutine enforces parked sessions' idle deadlines: every
// sweep period (an eighth of the idle timeout, at most a second) it wakes
// the parked sessions whose deadline has passed, and their reader ends
// them. A session thus costs no timer of its own; it is closed up to one
// sweep period after its deadline. When the last session is forgotten
// (an eventfd in the set wakes the goroutine) the goroutine ends and
// closes the epoll set; the next park starts both again. A server without
// sessions runs no poller.
type parker struct {
	log   *slog.Logger
	sweep time.Duration
	quiet atomic.Int64 // time.Duration: parkQuiet unless a test changed it

	mu   sync.Mutex
	epfd int        // -1: no epoll set and no goroutine
	efd  int        // eventfd in the set: written when the table empties
	byFD []*session // indexed by socket: the session last armed on it
	n    int        // non-nil entries in byFD
}

// newParker returns the parker of a server whose sessions time out after
// idle without a line.
func newParker(log *slog.Logger, idle time.Duration) *parker {
	p := &parker{log: log, epfd: -1, efd: -1, sweep: min(max(idle/8, 5*time.Millisecond), time.Second)}
	p.quiet.Store(int64(parkQuiet))
	return p
}

// quietFor is how long a running session waits for a line before it parks.
func (p *parker) quietFor() time.Duration { return time.Duration(p.quiet.Load()) }

// arm watches fd, c's socket, until it is readable or hung up, starting
// the epoll set and its goroutine when none runs. The caller holds fd
// open (inside RawConn.Control), so fd cannot name another socket here.
func (p *parker) arm(c *session, fd int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.epfd < 0 {
		epfd, efd, err := newEpoll()
		if err != nil {
			return err
		}
		p.epfd, p.efd = epfd, efd
		go p.loop(epfd, efd)
	}
	if fd >= len(p.byFD) {
		p.byFD = append(p.byFD, make([]*session, fd+1-len(p.byFD))...)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	op := unix.EPOLL_CTL_ADD
	if p.byFD[fd] == c {
		op = unix.EPOLL_CTL_MOD
	}
	err := unix.EpollCtl(p.epfd, op, fd, &ev)
	switch {
	case op == unix.EPOLL_CTL_MOD && errors.Is(err, unix.ENOENT): // a new epoll set since
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	case op == unix.EPOLL_CTL_ADD && errors.Is(err, unix.EEXIST):
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
	}
	if err != nil {
		return fmt.Errorf("stratum: epoll_ctl: %w", err)
	}
	if p.byFD[fd] == nil {
		p.n++
	}
	p.byFD[fd] = c
	return nil
}

// forget drops c, which has ended, from the table.
func (p *parker) forget(c *session, fd int32) {
	p.mu.Lock()
	if int(fd) < len(p.byFD) && p.byFD[fd] == c {
		p.byFD[fd] = nil
		p.n--
		if p.n == 0 && p.epfd >= 0 {
			var one [8]byte
			one[0] = 1 // eventfd counters are host-endian; 1 is nonzero either way
			_, _ = unix.Write(p.efd, one[:])
		}
	}
	p.mu.Unlock()
}

// newEpoll returns a new epoll set with an eventfd in it (event data -1).
func newEpoll() (epfd, efd int, err error) {
	epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return -1, -1, fmt.Errorf("stratum: epoll_create1: %w", err)
	}
	efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return -1, -1, fmt.Errorf("stratum: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(efd)
		unix.Close(epfd)
		return -1, -1, fmt.Errorf("stratum: epoll_ctl eventfd: %w", err)
	}
	return epfd, efd, nil
}

// loop wakes the sessions whose sockets report and, every sweep period,
// those past their idle deadline, until no session is left; then it
// closes the epoll set and the eventfd.
func (p *parker) loop(epfd, efd int) {
	events := make([]unix.EpollEvent, 256)
	var woken []*session
	wait := max(int(p.sweep/time.Millisecond), 1)
	lastSweep := time.Now()
	for {
		n, err := unix.EpollWait(epfd, events, wait)
		if err != nil {
			if !errors.Is(err, unix.EINTR) {
				p.log.Error("stratum: epoll_wait failed; retrying", "err", err)
				time.Sleep(p.sweep)
			}
			continue
		}
		now := time.Now()
		sweep := now.Sub(lastSweep) >= p.sweep
		p.mu.Lock()
		if p.n == 0 {
			unix.Close(efd)
			unix.Close(epfd)
			p.epfd, p.efd = -1, -1
			p.mu.Unlock()
			return
		}
		woken = woken[:0]
		for _, ev := range events[:n] {
			if ev.Fd < 0 {
				var b [8]byte
				_, _ = unix.Read(efd, b[:]) // reset; the table filled again meanwhile
				continue
			}
			if int(ev.Fd) < len(p.byFD) && p.byFD[ev.Fd] != nil {
				woken = append(woken, p.byFD[ev.Fd])
			}
		}
		if sweep {
			lastSweep = now
			for _, c := range p.byFD {
				if c != nil && c.park.state.Load() == parkParked && now.UnixNano() >= c.park.idleDL.Load() {
					woken = append(woken, c)
				}
			}
		}
		p.mu.Unlock()
		for i, c := range woken {
			c.wake()
			woken[i] = nil
		}
	}
}
