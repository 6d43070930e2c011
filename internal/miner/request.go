package miner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// reply is a pool's answer to one request.
type reply struct {
	result json.RawMessage
	err    *RPCError
	at     time.Time
}

// replyFunc receives a reply, or the error that ended the connection.
type replyFunc func(reply, error)

// callReply is a reply or the connection's end.
type callReply struct {
	r   reply
	err error
}

// start sends a request and returns where its reply will arrive.
func (m *Miner) start(method string, params []any) (<-chan callReply, error) {
	ch := make(chan callReply, 1)
	_, err := m.send(method, params, func(r reply, err error) { ch <- callReply{r, err} })
	return ch, err
}

// startHandled sends a request; handle runs in the reader goroutine with
// the reply and its error arrives on the returned channel.
func (m *Miner) startHandled(method string, params []any, handle func(reply) error) (<-chan error, error) {
	ch := make(chan error, 1)
	_, err := m.send(method, params, func(r reply, err error) {
		if err == nil {
			err = handle(r)
		}
		ch <- err
	})
	return ch, err
}

// await waits for a request started with startHandled.
func (m *Miner) await(ctx context.Context, method string, ch <-chan error) error {
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("miner: %s: %w", method, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("miner: %s: %w", method, ctx.Err())
	}
}

// notifyOnly sends a request whose reply is not waited for.
func (m *Miner) notifyOnly(method string, params []any) error {
	_, err := m.send(method, params, func(r reply, err error) {
		if r.err != nil {
			m.opts.Logger.Debug("request refused", "method", method, "err", r.err)
		}
	})
	return err
}

// send registers cb for the reply and writes the request. It returns the
// time the request was written.
func (m *Miner) send(method string, params []any, cb replyFunc) (sentAt, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(params)
	if err != nil {
		return sentAt{}, fmt.Errorf("miner: encode %s params: %w", method, err)
	}
	methodJSON, err := json.Marshal(method)
	if err != nil {
		return sentAt{}, fmt.Errorf("miner: encode method: %w", err)
	}
	id := m.nextID.Add(1)
	// cpuminer's layout: method first, then params, then id.
	line := make([]byte, 0, 40+len(methodJSON)+len(body))
	line = append(line, `{"method": `...)
	line = append(line, methodJSON...)
	line = append(line, `, "params": `...)
	line = append(line, body...)
	line = append(line, `, "id": `...)
	line = strconv.AppendUint(line, id, 10)
	line = append(line, "}\n"...)
	return m.sendLine(id, line, cb)
}

// sendLine registers cb under id and writes line.
func (m *Miner) sendLine(id uint64, line []byte, cb replyFunc) (sentAt, error) {
	m.mu.Lock()
	if m.err != nil {
		err := m.err
		m.mu.Unlock()
		return sentAt{}, err
	}
	m.pending[id] = cb
	m.mu.Unlock()
	at, err := m.write(line)
	if err != nil {
		m.mu.Lock()
		delete(m.pending, id)
		m.mu.Unlock()
	}
	return at, err
}

// sentAt is when a request was written: the clock's time just before the
// write and, with kernel timestamps, the key of its transmit timestamp.
type sentAt struct {
	t     time.Time
	key   uint32
	keyed bool
}

// sentTime is when the request left: the kernel's transmit timestamp when
// there is one, else the clock's time before the write.
func (m *Miner) sentTime(s sentAt) time.Time {
	if s.keyed {
		if t, ok := m.tx.stamp(s.key); ok {
			return t
		}
	}
	return s.t
}

// write writes line under the write deadline and returns when it was
// handed to the kernel.
func (m *Miner) write(line []byte) (sentAt, error) {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	// The deadline is on the real clock, whatever Options.Now says.
	if err := m.conn.SetWriteDeadline(time.Now().Add(m.opts.WriteTimeout)); err != nil {
		return sentAt{}, m.connErr(err)
	}
	at := sentAt{t: m.opts.Now()}
	if _, err := m.conn.Write(line); err != nil {
		return at, m.connErr(err)
	}
	if m.tx != nil {
		at.key, at.keyed = m.tx.wrote(len(line)), true
	}
	return at, nil
}

// connErr maps an I/O error to ErrClosed when the Miner is closing.
func (m *Miner) connErr(err error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return fmt.Errorf("miner: write: %w", err)
}

// SendRaw writes b to the pool as is (no terminator is added): the escape
// hatch for malformed or oversized lines.
func (m *Miner) SendRaw(b []byte) error {
	_, err := m.write(b)
	return err
}

// Call sends a request with the given params (each encoded with
// encoding/json) and waits for the reply. A reply with an error member
// returns it as *RPCError with a nil error; error is for the connection or
// the context.
func (m *Miner) Call(ctx context.Context, method string, params ...any) (json.RawMessage, *RPCError, error) {
	ch, err := m.start(method, params)
	if err != nil {
		return nil, nil, err
	}
	select {
	case cr := <-ch:
		if cr.err != nil {
			return nil, nil, fmt.Errorf("miner: %s: %w", method, cr.err)
		}
		return cr.r.result, cr.r.err, nil
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("miner: %s: %w", method, ctx.Err())
	}
}
