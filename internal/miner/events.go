package miner

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one server-to-client message the Miner received. Method and
// Params are always set; the typed field of the method is set too.
type Event struct {
	// Seq numbers the events of one Miner from 1 in arrival order.
	Seq int
	// Method is the notification's method, e.g. "mining.notify".
	Method string
	// Params is the raw params array.
	Params json.RawMessage
	// Time is when the line was read.
	Time time.Time

	// Job is the parsed mining.notify.
	Job *Job
	// Difficulty is the mining.set_difficulty value.
	Difficulty float64
	// VersionMask is the mining.set_version_mask value, as sent.
	VersionMask uint32
	// Extranonce1 and Extranonce2Size are the mining.set_extranonce values.
	Extranonce1     []byte
	Extranonce2Size int
	// Reconnect is the parsed client.reconnect.
	Reconnect *Reconnect
}

// Reconnect is a client.reconnect request. An empty Host (the params were
// []) means the same pool.
type Reconnect struct {
	Host string
	Port int
	Wait time.Duration
}

// Events returns the notifications received so far, oldest first (at most
// Options.MaxEvents of them).
func (m *Miner) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// WaitEvent returns the first event kept (Events) or received later for
// which match returns true. It fails when ctx ends or the connection ends
// before such an event.
func (m *Miner) WaitEvent(ctx context.Context, match func(Event) bool) (Event, error) {
	next := 0 // Seq of the last event looked at
	for {
		m.mu.Lock()
		for _, e := range m.events {
			if e.Seq <= next {
				continue
			}
			next = e.Seq
			if match(e) {
				m.mu.Unlock()
				return e, nil
			}
		}
		err, wake := m.err, m.wake
		m.mu.Unlock()
		if err != nil {
			return Event{}, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("miner: waiting for an event: %w", ctx.Err())
		}
	}
}

// WaitReconnect waits for a client.reconnect (see WaitEvent).
func (m *Miner) WaitReconnect(ctx context.Context) (*Reconnect, error) {
	e, err := m.WaitEvent(ctx, func(e Event) bool { return e.Reconnect != nil })
	return e.Reconnect, err
}
