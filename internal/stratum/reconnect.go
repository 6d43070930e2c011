package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
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
	list := s.snapshot(func(c *session) bool { return c != except })
	if o.User != "" {
		// Filtered outside snapshot's lock: hasUser takes the session's.
		list = slices.DeleteFunc(list, func(c *session) bool { return !c.hasUser(o.User) })
	}
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

// Errors of RequestReconnect.
var (
	// ErrAdminRefused reports an admin call the server refused: a wrong
	// admin password, admin calls off, or the call itself refused.
	ErrAdminRefused = errors.New("stratum: admin call refused")
)

// RequestReconnect is the client side of mining.reconnect_miners, for the
// daemon's reconnect command: it connects to the stratum listener at addr,
// logs in with mining.authorize_admin and sends the order, and returns how
// many sessions the server sent away. The requests are
// wire.EncodeAdminRequest's; the replies are read with a bounded
// wire.LineReader.
func RequestReconnect(ctx context.Context, addr, adminPassword string, o ReconnectOrder) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, fmt.Errorf("stratum: reconnect: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	lr := wire.NewLineReader(conn, wire.DefaultMaxLineLength)
	call := func(id int, method string, params []any) (wire.Response, error) {
		b, err := wire.EncodeAdminRequest(id, method, params)
		if err != nil {
			return wire.Response{}, err
		}
		if _, err := conn.Write(b); err != nil {
			return wire.Response{}, err
		}
		for {
			line, err := lr.ReadLine()
			if err != nil {
				return wire.Response{}, err
			}
			r, err := wire.DecodeResponse(line)
			if err != nil {
				return wire.Response{}, err
			}
			if string(r.ID) == strconv.Itoa(id) {
				return r, nil
			}
		}
	}
	r, err := call(1, wire.MethodAuthorizeAdmin, []any{adminPassword})
	if err != nil {
		return 0, fmt.Errorf("stratum: reconnect: admin login: %w", err)
	}
	if !r.OK {
		return 0, fmt.Errorf("%w: admin login: %s", ErrAdminRefused, r.Message)
	}
	var port any
	if o.Host != "" {
		port = o.Port
	}
	r, err = call(2, wire.MethodReconnectMiners, []any{o.Host, port, o.Wait, o.User, o.Message})
	if err != nil {
		return 0, fmt.Errorf("stratum: reconnect: %w", err)
	}
	if !r.OK {
		return 0, fmt.Errorf("%w: %s: %s", ErrAdminRefused, wire.MethodReconnectMiners, r.Message)
	}
	var n int
	if err := json.Unmarshal(r.RawResult, &n); err != nil {
		return 0, fmt.Errorf("stratum: reconnect: result %.32s: %w", r.RawResult, err)
	}
	return n, nil
}
