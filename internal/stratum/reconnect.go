package stratum

import (
	"slices"
	"time"

	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// ReconnectOrder sends miners elsewhere: to Host:Port, or back to this pool
// when Host is empty, after Wait seconds.
type ReconnectOrder struct {
	Host string
	Port int
	Wait int
	// User limits the order to the sessions with a worker of this user
	// (its name as stored: in open mode the address's canonical form);
	// empty: every session.
	User string
	// Message, when set, is sent first as client.show_message.
	Message string
}

// Reconnect sends client.reconnect (after client.show_message when the
// order has a message) to every session, or to the sessions of o.User, and
// closes them (close reason "reconnect"): a miner that follows the order
// connects to o.Host, one that ignores the host comes back here. It
// returns how many sessions it sent away. Safe for concurrent use; it is
// what mining.reconnect_miners and the daemon's reconnect command call.
func (s *Server) Reconnect(o ReconnectOrder) int {
	return s.reconnect(o, nil)
}

// reconnect is Reconnect sparing the session except (the admin's own).
func (s *Server) reconnect(o ReconnectOrder, except *session) int {
	list := s.snapshot(func(c *session) bool {
		return c != except && (o.User == "" || c.hasUser(o.User))
	})
	if len(list) == 0 {
		return 0
	}
	line := wire.EncodeReconnect(o.Host, o.Port, o.Wait)
	if o.Message != "" {
		line = append(wire.EncodeShowMessage(o.Message), line...)
	}
	timeout := min(s.cfg.WriteTimeout, time.Second)
	s.forEach(list, func(c *session) {
		_ = c.write(line, timeout)
		c.stop(endSession(closeReconnect, nil))
	})
	s.st.reconnects.Add(uint64(len(list)))
	s.log.Info("stratum: sessions sent client.reconnect", "sessions", len(list),
		"host", o.Host, "port", o.Port, "wait", o.Wait, "user", o.User)
	return len(list)
}

// handleReconnectMiners is the admin call mining.reconnect_miners
// [host, port, wait, user?, message?]: Reconnect for an admin session,
// which is spared. The result is the number of sessions sent away.
func (c *session) handleReconnectMiners(req wire.Request) error {
	p, err := wire.DecodeReconnectMiners(req.Params)
	if err != nil {
		return c.invalidParams(req.ID, err)
	}
	if !c.admin {
		c.logger().Warn("stratum: reconnect_miners refused: not an admin session")
		return c.replyError(req.ID, wire.CodeUnauthorized, "admin only")
	}
	n := c.srv.reconnect(ReconnectOrder{Host: p.Host, Port: p.Port, Wait: p.Wait, User: p.User, Message: p.Message}, c)
	b, err := wire.EncodeResult(req.ID, n)
	if err != nil {
		return c.replyError(req.ID, wire.CodeOther, "internal error")
	}
	return c.reply(b)
}

// addWorker records an authorized worker. The reader appends; other
// goroutines (Reconnect) read the list under c.mu.
func (c *session) addWorker(w worker) {
	c.mu.Lock()
	c.workers = append(c.workers, w)
	c.mu.Unlock()
}

// hasUser reports whether a worker of user is authorized on the session.
// Safe for concurrent use.
func (c *session) hasUser(user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.workers, func(w worker) bool { return w.user == user })
}
