package stratum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// closeReason is why a session ended. Every session ends with exactly one,
// which its exit (session.end) counts in Stats.SessionsClosed and logs in
// one line; the reasons that cost the address something (a malformed
// line, too many invalid shares) are also where that is charged.
type closeReason uint8

const (
	// Reasons the connection imposes. A reason recorded by a write that
	// failed, or by shutdown, stands over the read error that follows it.

	closeHungUp           closeReason = iota // the miner closed the connection
	closeIdleTimeout                         // no line within IdleTimeout after the handshake
	closeHandshakeTimeout                    // not subscribed and authorized within HandshakeTimeout
	closeReadError                           // a read failed otherwise (a reset connection)
	closeWriteTimeout                        // a write to the miner timed out (counted in WriteTimeouts)
	closeWriteError                          // a write failed otherwise
	closeShutdown                            // the listener stopped; the miner got client.reconnect
	closeReconnect                           // sent elsewhere on demand (reconnect.go); the miner got client.reconnect

	// Reasons the session decides on a line it read. They stand over a
	// write failure, which is then only the last reply not arriving.

	closeLineTooLong   // a line over MaxLineLength (counted in Malformed)
	closeMalformed     // a line that is not a JSON request (counted in Malformed)
	closeInvalidShares // too many invalid submits: the address is banned
	closeNotSynced     // mining.subscribe while the node is syncing
	closePanic         // a handler panicked (counted in Panics)

	numCloseReasons
)

var closeReasonNames = [numCloseReasons]string{
	"hung-up", "idle-timeout", "handshake-timeout", "read-error", "write-timeout", "write-error",
	"shutdown", "reconnect", "line-too-long", "malformed", "invalid-shares", "not-synced", "panic",
}

// String returns the reason's name as Stats.SessionsClosed reports it.
func (r closeReason) String() string {
	if r < numCloseReasons {
		return closeReasonNames[r]
	}
	return "unknown"
}

// decided reports whether the session chose to end for r, on a line it
// read, rather than having the connection end under it.
func (r closeReason) decided() bool { return r >= closeLineTooLong }

// sessionEnd is the error that ends a session: its reason and, when there
// is one, the error or value behind it. Handlers and the reader loop
// return it; write records it when a write fails on any goroutine.
type sessionEnd struct {
	reason closeReason
	err    error
}

func (e *sessionEnd) Error() string {
	if e.err == nil {
		return "stratum: session ended: " + e.reason.String()
	}
	return "stratum: session ended: " + e.reason.String() + ": " + e.err.Error()
}

func (e *sessionEnd) Unwrap() error { return e.err }

// endSession returns the error that ends a session for r because of err
// (nil when there is nothing more to say).
func endSession(r closeReason, err error) error { return &sessionEnd{reason: r, err: err} }

// reasonOf returns the reason err carries; an error that carries none
// (there should be none) counts as a read error.
func reasonOf(err error) closeReason {
	if e, ok := errors.AsType[*sessionEnd](err); ok {
		return e.reason
	}
	return closeReadError
}

// panicked is a handler's recovered panic, with its stack.
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) Error() string { return fmt.Sprint("panic: ", p.value) }

// readEnd turns the error that stopped the session's LineReader into the
// reason the session ends. A line too long gets the malformed-request
// reply first.
func (c *session) readEnd(err error) error {
	switch {
	case errors.Is(err, wire.ErrLineTooLong):
		return c.malformed(closeLineTooLong, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return endSession(closeHungUp, nil)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		if c.handshakeDone {
			return endSession(closeIdleTimeout, err)
		}
		return endSession(closeHandshakeTimeout, err)
	}
	return endSession(closeReadError, err)
}

// malformed answers a line too long or not a request, and returns why the
// session ends; the exit charges it to the address.
func (c *session) malformed(r closeReason, err error) error {
	_ = c.write(wire.EncodeError(nil, wire.CodeOther, "malformed request"), c.srv.cfg.WriteTimeout)
	return endSession(r, err)
}

// stop ends the session from any goroutine: it records err as the reason
// unless one is recorded already, stops further writes and fan-out to the
// session, and closes the connection, which ends the reader; the reader's
// exit then accounts for the session. Safe for concurrent use.
func (c *session) stop(err error) {
	c.cause.CompareAndSwap(nil, &err)
	c.ready.Store(false)
	c.closeConn()
	c.wake() // a parked session's reader ends it (park.go)
}

// stopping reports whether the session is ending: nothing more is written
// to it.
func (c *session) stopping() bool { return c.cause.Load() != nil }

// closeConn closes the connection once.
func (c *session) closeConn() { c.closeOnce.Do(func() { c.conn.Close() }) }

// end is the session's one exit, run once by its reader when the loop
// returns err. The reason that stands is the one the session decided
// (err's), or else the first recorded by stop (a failed write, shutdown),
// or else err's. end charges the address what the reason costs (a
// malformed line, a ban), counts and logs the end once, and only then
// closes the connection, so a miner that sees the close sees its
// consequences too; then it forgets the session.
func (c *session) end(err error) {
	if err == nil {
		err = endSession(closeReadError, errors.New("reader stopped without a reason"))
	}
	r := reasonOf(err)
	if !c.cause.CompareAndSwap(nil, &err) && !r.decided() {
		err = *c.cause.Load()
		r = reasonOf(err)
	}
	c.ready.Store(false)
	c.account(r, err)
	c.closeConn()
	c.srv.removeSession(c)
}

// account charges, counts and logs a session's end for r; err is the
// error that carries r.
func (c *session) account(r closeReason, err error) {
	s := c.srv
	s.st.closed[r].Add(1)
	var cause error
	if e, ok := errors.AsType[*sessionEnd](err); ok {
		cause = e.err
	}
	switch r {
	case closeLineTooLong, closeMalformed:
		s.st.malformed.Add(1)
		banned := s.adm.Malformed(c.ip)
		if banned {
			s.st.bans.Add(1)
		}
		why := "line too long"
		if r == closeMalformed && cause != nil {
			why = cause.Error()
		}
		c.logger().Info("stratum: malformed line; disconnecting", "why", why, "banned", banned)
	case closeInvalidShares:
		lim := s.limits.Load()
		s.adm.Ban(c.ip, s.now().Add(lim.BanDuration))
		s.st.bans.Add(1)
		c.logger().Warn("stratum: too many invalid submissions; address banned",
			"invalid", c.invalid, "submits", c.submits, "for", lim.BanDuration)
	case closeWriteTimeout:
		s.st.writeTimeouts.Add(1)
		c.logger().Info("stratum: write timed out; closing session")
	case closePanic:
		s.st.panics.Add(1)
		args := []any{"panic", cause}
		if p, ok := errors.AsType[*panicked](cause); ok {
			args = []any{"panic", p.value, "stack", string(p.stack)}
		}
		c.logger().Error("stratum: session panicked; dropped", args...)
	default:
		// The everyday ends (hang-ups, timeouts, shutdown) cost no log
		// work unless debug logging is on: a flood of connections that
		// time out or drop stays cheap.
		if !s.log.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		args := []any{"reason", r.String()}
		if cause != nil {
			args = append(args, "err", cause)
		}
		c.logger().Debug("stratum: session closed", args...)
	}
}
