package miner

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
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

// handleNotification applies a server-to-client message and records it.
func (m *Miner) handleNotification(method string, id, params json.RawMessage, at time.Time) error {
	if len(params) == 0 || string(params) == "null" {
		params = json.RawMessage("[]")
	}
	ev := Event{Method: method, Params: params, Time: at}
	var args []json.RawMessage
	if err := json.Unmarshal(params, &args); err != nil {
		return fmt.Errorf("%w: %s params are not an array", ErrProtocol, method)
	}

	m.mu.Lock()
	switch method {
	case "mining.notify":
		job, err := parseNotify(params)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		job.Extranonce1, job.Extranonce2Size = m.en1, m.en2Size
		job.Difficulty, job.VersionMask, job.Received = m.diff, m.mask, at
		if job.Clean {
			m.jobs = m.jobs[:0:0]
		}
		m.jobs = append(m.jobs, job)
		if len(m.jobs) > m.opts.MaxJobs {
			m.jobs = append([]*Job(nil), m.jobs[len(m.jobs)-m.opts.MaxJobs:]...)
		}
		m.jobGen.Add(1)
		ev.Job = job
	case "mining.set_difficulty":
		var d float64
		if len(args) < 1 || json.Unmarshal(args[0], &d) != nil || !(d > 0) || math.IsInf(d, 0) {
			m.mu.Unlock()
			return fmt.Errorf("%w: mining.set_difficulty %.64s", ErrProtocol, params)
		}
		m.diff = d
		ev.Difficulty = d
	case "mining.set_version_mask":
		if len(args) < 1 {
			m.mu.Unlock()
			return fmt.Errorf("%w: mining.set_version_mask without a mask", ErrProtocol)
		}
		mask, err := hex32Field(args[0], "version mask")
		if err != nil {
			m.mu.Unlock()
			return err
		}
		if m.mask != 0 || m.opts.VersionRolling {
			m.mask = mask & m.opts.VersionRollingMask
		}
		ev.VersionMask = mask
	case "mining.set_extranonce":
		var size int
		if len(args) < 2 || json.Unmarshal(args[1], &size) != nil || size < 1 || size > 16 {
			m.mu.Unlock()
			return fmt.Errorf("%w: mining.set_extranonce %.64s", ErrProtocol, params)
		}
		en1, err := hexField(args[0], "extranonce1", 0, 32)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		m.en1, m.en2Size = en1, size
		ev.Extranonce1, ev.Extranonce2Size = en1, size
	case "client.reconnect":
		rc, err := parseReconnect(args)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		ev.Reconnect = rc
	}
	m.seq++
	ev.Seq = m.seq
	m.events = append(m.events, ev)
	if len(m.events) > m.opts.MaxEvents {
		m.events = append([]Event(nil), m.events[len(m.events)-m.opts.MaxEvents:]...)
	}
	m.broadcastLocked()
	m.mu.Unlock()

	if m.opts.OnEvent != nil {
		m.opts.OnEvent(ev)
	}
	// Server requests with an id (client.get_version) get cpuminer's answer.
	if method == "client.get_version" && len(id) > 0 && string(id) != "null" {
		line, err := json.Marshal(struct {
			ID     json.RawMessage `json:"id"`
			Result string          `json:"result"`
			Error  any             `json:"error"`
		}{id, m.opts.UserAgent, nil})
		if err == nil {
			if _, err := m.write(append(line, '\n')); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseReconnect decodes client.reconnect params: [] or [host, port, wait],
// port a number or a string.
func parseReconnect(args []json.RawMessage) (*Reconnect, error) {
	rc := new(Reconnect)
	if len(args) >= 1 && string(args[0]) != "null" {
		h, err := str(args[0], "reconnect host")
		if err != nil {
			return nil, err
		}
		rc.Host = h
	}
	if len(args) >= 2 && string(args[1]) != "null" {
		v := args[1]
		if v[0] == '"' {
			s, err := str(v, "reconnect port")
			if err != nil {
				return nil, err
			}
			v = json.RawMessage(s)
		}
		if err := json.Unmarshal(v, &rc.Port); err != nil || rc.Port < 0 || rc.Port > 65535 {
			return nil, fmt.Errorf("%w: reconnect port %.16s", ErrProtocol, args[1])
		}
	}
	if len(args) >= 3 && string(args[2]) != "null" {
		var w float64
		if err := json.Unmarshal(args[2], &w); err != nil || w < 0 || w > 1e6 {
			return nil, fmt.Errorf("%w: reconnect wait %.16s", ErrProtocol, args[2])
		}
		rc.Wait = time.Duration(w * float64(time.Second))
	}
	return rc, nil
}
