package stratum

import "time"

// RejectObserver hears of rejected submits per worker (e.g.
// store.RejectCounter, which keeps per-worker counts by reason).
// ObserveReject is called on the session's goroutine for every rejected
// submit that names a worker the session authorized, with the worker's
// user and worker name (as stored with shares), the reason's name as
// Stats().SharesRejected reports it and the server clock's time; it must
// be quick and safe for concurrent use. Submits that name no authorized
// worker (unauthorized, not subscribed, undecodable params) are counted
// pool-wide in Stats only: their worker names are the client's to invent,
// and per-name counts would grow without bound.
type RejectObserver interface {
	ObserveReject(user, worker, reason string, at time.Time)
}

// observeReject tells Config.Rejects of a rejected submit of the session's
// authorized worker named name (as the miner sends it); nothing when no
// authorized worker has that name. It runs on the session's reader, which
// owns c.workers.
func (c *session) observeReject(name string, r reason, at time.Time) {
	o := c.srv.cfg.Rejects
	if o == nil {
		return
	}
	for i := range c.workers {
		if w := &c.workers[i]; w.name == name {
			o.ObserveReject(w.user, w.worker, r.String(), at)
			return
		}
	}
}
