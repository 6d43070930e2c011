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

// parkerWait is how long the parker's epoll_wait blocks; with no session
// parked after one such wait its goroutine ends (and the next park starts
// it again), so that a server without parked sessions runs no poller.
const parkerWait = 250 * time.Millisecond

// parker watches parked sessions' sockets in an epoll set of its own
// (level-triggered, one-shot: a socket readable when it is armed reports
// at once, and reports once per arming). Go's poller keeps watching the
// same sockets for the reads of sessions that are running; a socket may
// be in several epoll sets. Closing a socket takes it out of the set, so
// forget only drops the session from the table.
type parker struct {
	log   *slog.Logger
	quiet atomic.Int64 // time.Duration: parkQuiet unless a test changed it

	mu   sync.Mutex
	epfd int                // -1: no epoll set and no goroutine
	byFD map[int32]*session // the session last armed on each socket
}

func newParker(log *slog.Logger) *parker {
	p := &parker{log: log, epfd: -1, byFD: make(map[int32]*session)}
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
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("stratum: epoll_create1: %w", err)
		}
		p.epfd = epfd
		go p.loop(epfd)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	op := unix.EPOLL_CTL_ADD
	if p.byFD[int32(fd)] == c {
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
	p.byFD[int32(fd)] = c
	return nil
}

// forget drops c, which has ended, from the table.
func (p *parker) forget(c *session, fd int32) {
	p.mu.Lock()
	if p.byFD[fd] == c {
		delete(p.byFD, fd)
	}
	p.mu.Unlock()
}

// loop wakes the sessions whose sockets report, until a wait finds no
// session left; then it closes the epoll set.
func (p *parker) loop(epfd int) {
	events := make([]unix.EpollEvent, 256)
	var woken []*session
	for {
		n, err := unix.EpollWait(epfd, events, int(parkerWait/time.Millisecond))
		if err != nil {
			if !errors.Is(err, unix.EINTR) {
				p.log.Error("stratum: epoll_wait failed; retrying", "err", err)
				time.Sleep(parkerWait)
			}
			continue
		}
		p.mu.Lock()
		if n == 0 && len(p.byFD) == 0 {
			unix.Close(epfd)
			p.epfd = -1
			p.mu.Unlock()
			return
		}
		woken = woken[:0]
		for _, ev := range events[:n] {
			if c := p.byFD[ev.Fd]; c != nil {
				woken = append(woken, c)
			}
		}
		p.mu.Unlock()
		for i, c := range woken {
			c.wake()
			woken[i] = nil
		}
	}
}
