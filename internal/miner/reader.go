package miner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// readLoop reads the pool's lines until the connection ends.
func (m *Miner) readLoop() {
	defer close(m.done)
	var (
		src io.Reader = m.conn
		rx  *rxStampReader
	)
	if m.opts.KernelTimestamps {
		r, err := newRxStampReader(m.conn)
		if err != nil {
			m.opts.Logger.Debug("no kernel receive timestamps", "err", err)
		} else {
			src, rx = r, r
		}
	}
	lr := newLineReader(src, m.opts.MaxLineLength)
	for {
		line, err := lr.readLine()
		if err == nil {
			// The last read is the one that completed the line: the
			// buffered reader reads only when no full line is left.
			at := m.opts.Now()
			if rx != nil {
				if t := rx.stamp(); !t.IsZero() {
					at = t
				}
			}
			err = m.handleLine(line, at)
		}
		if err != nil {
			m.fail(err)
			return
		}
	}
}

// fail ends the connection with err and fails every pending call.
func (m *Miner) fail(err error) {
	m.mu.Lock()
	if m.closing {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	} else if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrLineTooLong) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	m.err = err
	pending := m.pending
	m.pending = make(map[uint64]replyFunc)
	m.broadcastLocked()
	m.mu.Unlock()
	m.conn.Close()
	for _, cb := range pending {
		cb(reply{}, err)
	}
	m.opts.Logger.Debug("connection ended", "err", err)
}

// broadcastLocked wakes WaitEvent callers. m.mu is held.
func (m *Miner) broadcastLocked() {
	close(m.wake)
	m.wake = make(chan struct{})
}

// message is any line from the pool: a reply or a notification.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method *string         `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// handleLine handles one line from the pool.
func (m *Miner) handleLine(line []byte, at time.Time) error {
	var msg message
	if err := json.Unmarshal(line, &msg); err != nil {
		return fmt.Errorf("%w: %w: %.128q", ErrProtocol, err, line)
	}
	if msg.Method != nil && *msg.Method != "" {
		return m.handleNotification(*msg.Method, msg.ID, msg.Params, at)
	}
	var id uint64
	if err := json.Unmarshal(msg.ID, &id); err != nil {
		return fmt.Errorf("%w: reply with id %.32s", ErrProtocol, msg.ID)
	}
	rpcErr, err := parseRPCError(msg.Error)
	if err != nil {
		return err
	}
	m.mu.Lock()
	cb, ok := m.pending[id]
	delete(m.pending, id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: reply to id %d, which is not pending", ErrProtocol, id)
	}
	result := msg.Result
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	cb(reply{result: result, err: rpcErr, at: at}, nil)
	return nil
}

// parseRPCError decodes a reply's error member.
func parseRPCError(v json.RawMessage) (*RPCError, error) {
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	switch v[0] {
	case '[':
		var a []json.RawMessage
		if err := json.Unmarshal(v, &a); err != nil || len(a) < 2 {
			return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
		}
		var e RPCError
		if err := json.Unmarshal(a[0], &e.Code); err != nil {
			return nil, fmt.Errorf("%w: error code %.16s", ErrProtocol, a[0])
		}
		if err := json.Unmarshal(a[1], &e.Message); err != nil {
			return nil, fmt.Errorf("%w: error message %.64s", ErrProtocol, a[1])
		}
		return &e, nil
	case '{':
		var e struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
		}
		return &RPCError{Code: e.Code, Message: e.Message}, nil
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
		}
		return &RPCError{Message: s}, nil
	}
	return nil, fmt.Errorf("%w: error member %.64s", ErrProtocol, v)
}
