package stratum

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// Parking: an idle miner without a goroutine.
//
// Once a session has completed its handshake it usually has nothing to
// say for seconds or minutes (a share now and then); an idle miner says
// nothing at all. A goroutine blocked in Read for each of them costs a
// stack (2 KiB at least) and a goroutine descriptor, and its line buffer
// stays allocated. Where the platform allows (parker, park_linux.go) a
// session therefore parks: when no line has come for parkQuiet, its
// reader releases the line buffer, hands the socket to the server's
// parker (an epoll set, one-shot) and returns. When the socket becomes
// readable (or is hung up), when the idle deadline has passed (the
// parker's sweep), or when the session is stopped from elsewhere, a fresh
// goroutine takes the reader back (wake) and reads as before. The notify fan-out writes to parked
// sessions as to any other: writes do not need the reader.
//
// Go's own network poller cannot do this: a goroutine must wait in Read
// for it to watch a socket. Libraries that replace net.Conn with an event
// loop (lesismal/nbio, panjf2000/gnet) would replace the whole connection
// layer — TLS, the PROXY protocol, deadlines, the raw writes — for what
// is here one epoll set, one goroutine and about 180 lines next to Go's
// poller, which keeps doing every read and write; see docs/BENCHMARKS.md
// (issue 19) for the measurements.
//
// Only the session's current reader touches the LineReader, the reader
// fields and the park fields other than state; handing the reader over
// goes through state, whose atomic compare-and-swap orders the two.

// parkQuiet is how long a woken session's reader waits for its next line
// before it parks (parker.quiet; tests shorten it). A busy miner (shares
// every few hundred milliseconds) keeps its reader; an idle one costs a
// goroutine for at most this long.
const parkQuiet = time.Second

// Park states of a session with a parker.
const (
	parkRunning uint32 = iota // a goroutine owns the reader
	parkParked                // no goroutine; the parker watches the socket
	parkDone                  // the session has ended
)

// errPark tells the reader loop's caller to park the session.
var errPark = errors.New("stratum: park the session")

// parkState is a session's part in parking. A session whose on is false
// never parks (no parker, a TLS or PROXY protocol connection).
type parkState struct {
	state  atomic.Uint32
	idleDL atomic.Int64 // Unix nanoseconds of the idle deadline; set by the reader
	on     bool         // the session parks once its handshake is done
	fd     int32        // reader: the socket as registered with the parker; -1 none
}

// initPark decides whether c parks: when the server has a parker and
// c's connection is a plain TCP socket (a TLS or PROXY protocol
// connection may hold read data of its own that no poller sees).
func (c *session) initPark() {
	c.park.fd = -1
	if c.srv.parker == nil || c.raw == nil {
		return
	}
	if _, ok := c.conn.(*net.TCPConn); ok {
		c.park.on = true
	}
}

// afterHandshake continues a session whose handshake is done. A parking
// session parks at once unless lines are already waiting (the handshake's
// goroutine, whose stack the handshake grew, then returns); otherwise the
// read loop continues on a fresh goroutine, which starts at the minimum
// stack size: a grown stack never shrinks back below 4 KiB while it waits
// in a read. The session's place in its serve group is held until it ends.
func (c *session) afterHandshake() {
	c.group.wg.Add(1) // the count is positive: our caller's Done is still to come
	if c.park.on {
		if c.lr.Buffered() == 0 {
			c.parkNow()
			return
		}
		c.pump()
		return
	}
	go func() {
		defer c.group.wg.Done()
		c.end(c.readLoop(false))
	}()
}

// lineHandled restarts the idle deadline after a line of a session whose
// handshake is done. A parking session reads with a deadline of at most
// parkQuiet, after which it parks (readLoop, parkable).
func (c *session) lineHandled() {
	now := time.Now()
	dl := now.Add(c.srv.cfg.IdleTimeout)
	if c.park.on {
		c.park.idleDL.Store(dl.UnixNano())
		if q := now.Add(c.srv.parker.quietFor()); q.Before(dl) {
			dl = q
		}
	}
	_ = c.conn.SetReadDeadline(dl)
}

// parkable reports whether the read error err only means that a parking
// session has been quiet (parker.quiet), before its idle deadline.
func (c *session) parkable(err error) bool {
	if !c.park.on || !c.handshakeDone {
		return false
	}
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout() && time.Now().UnixNano() < c.park.idleDL.Load() && !c.stopping()
}

// pump is a parking session's reader after its handshake: it reads and
// handles lines until the session goes quiet (parker.quiet), then parks it, or ends it.
func (c *session) pump() {
	dl := time.Unix(0, c.park.idleDL.Load())
	if q := time.Now().Add(c.srv.parker.quietFor()); q.Before(dl) {
		dl = q
	}
	_ = c.conn.SetReadDeadline(dl)
	err := c.readLoop(false)
	if errors.Is(err, errPark) {
		c.parkNow()
		return
	}
	c.finish(err)
}

// finish ends a parking session on its reader and gives up its place in
// the serve group.
func (c *session) finish(err error) {
	c.park.state.Store(parkDone)
	if c.park.fd >= 0 {
		c.srv.parker.forget(c, c.park.fd)
	}
	c.end(err)
	c.group.wg.Done()
}

// parkNow parks the session: it drops the empty line buffer and hands
// the socket to the parker; the calling goroutine then returns. If the socket cannot be watched (closed meanwhile) the
// session ends here.
func (c *session) parkNow() {
	c.lr.Release()
	// Parked before armed: an event right after arming must find the
	// session parked. A stop before this store finds it running and
	// leaves the wake to us: the closed socket fails Control below.
	c.park.state.Store(parkParked)
	var aerr error
	cerr := c.raw.Control(func(fd uintptr) {
		aerr = c.srv.parker.arm(c, int(fd))
		if aerr == nil {
			c.park.fd = int32(fd)
		}
	})
	if cerr == nil && aerr == nil {
		return
	}
	if !c.park.state.CompareAndSwap(parkParked, parkRunning) {
		return // woken already: the new reader ends it
	}
	if cerr == nil {
		cerr = aerr
	}
	c.finish(c.readEnd(cerr))
}

// wake gives a parked session a reader again; it does nothing to a
// session that is not parked. The parker calls it when the socket is
// readable or the idle deadline has passed, stop when the session is
// stopped. Safe for concurrent use.
func (c *session) wake() {
	if c.park.state.CompareAndSwap(parkParked, parkRunning) {
		go c.pump()
	}
}
