package miner

import (
	"context"
	"encoding/json"
	"fmt"
)

// Handshake runs the session start of a real miner: mining.configure
// (version-rolling, when Options.VersionRolling), mining.subscribe,
// mining.suggest_difficulty (when set), mining.authorize for every worker,
// mining.extranonce.subscribe (when set), and then waits for the first
// mining.notify. A refused authorize fails with an error wrapping
// ErrUnauthorized and the pool's RPCError.
func (m *Miner) Handshake(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opts.HandshakeTimeout)
		defer cancel()
	}
	var pending []<-chan error
	// send writes a request whose reply handle applies in the reader
	// goroutine, before any later line is read (a mining.notify right
	// after the subscribe reply must see the extranonce).
	send := func(method string, params []any, handle func(reply) error) error {
		ch, err := m.startHandled(method, params, handle)
		if err != nil {
			return err
		}
		if m.opts.Pipeline {
			pending = append(pending, ch)
			return nil
		}
		return m.await(ctx, method, ch)
	}

	if m.opts.VersionRolling {
		params := []any{
			[]string{"version-rolling"},
			map[string]any{
				"version-rolling.mask":          fmt.Sprintf("%08x", m.opts.VersionRollingMask),
				"version-rolling.min-bit-count": 2,
			},
		}
		if err := send("mining.configure", params, m.handleConfigure); err != nil {
			return err
		}
	}
	if err := send("mining.subscribe", []any{m.opts.UserAgent}, m.handleSubscribe); err != nil {
		return err
	}
	if d := m.opts.SuggestDifficulty; d > 0 {
		if err := m.notifyOnly("mining.suggest_difficulty", []any{d}); err != nil {
			return err
		}
	}
	password := m.opts.Password
	if password == "" {
		password = "x"
	}
	for _, w := range m.workers {
		name := w
		err := send("mining.authorize", []any{name, password}, func(r reply) error {
			if r.err != nil {
				return fmt.Errorf("%w: %s: %w", ErrUnauthorized, name, r.err)
			}
			if string(r.result) != "true" {
				return fmt.Errorf("%w: %s: result %.64s", ErrUnauthorized, name, r.result)
			}
			m.mu.Lock()
			m.authOK = append(m.authOK, name)
			m.mu.Unlock()
			return nil
		})
		if err != nil {
			return err
		}
	}
	if m.opts.ExtranonceSubscribe {
		if err := m.notifyOnly("mining.extranonce.subscribe", []any{}); err != nil {
			return err
		}
	}
	for _, ch := range pending {
		if err := m.await(ctx, "handshake", ch); err != nil {
			return err
		}
	}
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil }); err != nil {
		return fmt.Errorf("miner: waiting for the first mining.notify: %w", err)
	}
	return nil
}

// handleConfigure reads the BIP 310 reply. An error reply leaves version
// rolling off, as real miners do with pools that do not know the method.
func (m *Miner) handleConfigure(r reply) error {
	if r.err != nil {
		m.opts.Logger.Debug("mining.configure refused", "err", r.err)
		return nil
	}
	var res map[string]json.RawMessage
	if err := json.Unmarshal(r.result, &res); err != nil {
		return fmt.Errorf("%w: mining.configure result: %w", ErrProtocol, err)
	}
	if string(res["version-rolling"]) != "true" {
		return nil
	}
	mask, err := hex32Field(res["version-rolling.mask"], "version-rolling.mask")
	if err != nil {
		return err
	}
	if mask&^m.opts.VersionRollingMask != 0 {
		return fmt.Errorf("%w: version-rolling mask %08x is not inside the requested %08x",
			ErrProtocol, mask, m.opts.VersionRollingMask)
	}
	m.mu.Lock()
	m.mask = mask
	m.mu.Unlock()
	return nil
}

// handleSubscribe reads [subscriptions, extranonce1, extranonce2_size].
func (m *Miner) handleSubscribe(r reply) error {
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrSubscribe, r.err)
	}
	var res []json.RawMessage
	if err := json.Unmarshal(r.result, &res); err != nil || len(res) < 3 {
		return fmt.Errorf("%w: result %.128s", ErrSubscribe, r.result)
	}
	en1, err := hexField(res[1], "extranonce1", 0, 32)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSubscribe, err)
	}
	var size int
	if err := json.Unmarshal(res[2], &size); err != nil || size < 1 || size > 16 {
		return fmt.Errorf("%w: extranonce2 size %.16s", ErrSubscribe, res[2])
	}
	m.mu.Lock()
	m.en1, m.en2Size = en1, size
	m.mu.Unlock()
	return nil
}
