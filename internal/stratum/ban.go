package stratum

import (
	"sync"
	"time"
)

// ipState is what the server knows about one remote address.
type ipState struct {
	conns          int
	malformed      int
	malformedStart time.Time
	bannedUntil    time.Time
	accepts        tokenBucket // new connections, for Limits.ConnRatePerIP
}

// idle reports whether st holds nothing worth keeping at now under lim:
// no connection, no ban, no recent malformed line, a full accept bucket.
func (st *ipState) idle(now time.Time, lim *Limits) bool {
	return st.conns <= 0 && !now.Before(st.bannedUntil) && st.accepts.full(now, lim.ConnRatePerIP) &&
		(st.malformed == 0 || now.Sub(st.malformedStart) > max(time.Hour, lim.BanDuration))
}

// banList holds per-address connection counts, malformed-line counts and
// bans. Bans expire on the injected clock.
type banList struct {
	mu      sync.Mutex
	ips     map[string]*ipState
	sweepAt int
}

func (b *banList) init() {
	b.ips = make(map[string]*ipState)
	b.sweepAt = 1024
}

// admit counts a new connection from ip unless ip is banned, already has
// lim.MaxConnsPerIP connections open (0: no cap) or opened connections
// faster than lim.ConnRatePerIP allows (0: no limit). A refused connection
// does not use up the rate. The reason is one of the refuse* constants.
func (b *banList) admit(ip string, now time.Time, lim *Limits) (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.ips[ip]
	if st != nil && now.Before(st.bannedUntil) {
		return false, refuseBanned
	}
	if st != nil && lim.MaxConnsPerIP > 0 && st.conns >= lim.MaxConnsPerIP {
		return false, refuseCap
	}
	if st == nil {
		if len(b.ips) >= b.sweepAt {
			b.sweep(now, lim)
			b.sweepAt = max(1024, 2*len(b.ips))
		}
		st = &ipState{}
		b.ips[ip] = st
	}
	if lim.ConnRatePerIP > 0 && !st.accepts.take(now, lim.ConnRatePerIP, lim.ConnBurstPerIP) {
		return false, refuseRate
	}
	st.conns++
	return true, ""
}

// release counts a closed connection from ip.
func (b *banList) release(ip string, now time.Time, lim *Limits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.ips[ip]
	if st == nil {
		return
	}
	st.conns--
	if st.conns <= 0 && st.malformed == 0 && !now.Before(st.bannedUntil) && st.accepts.full(now, lim.ConnRatePerIP) {
		delete(b.ips, ip)
	}
}

// sweep forgets addresses that hold nothing worth keeping. b.mu is held.
func (b *banList) sweep(now time.Time, lim *Limits) {
	for ip, st := range b.ips {
		if st.idle(now, lim) {
			delete(b.ips, ip)
		}
	}
}

// malformed counts a malformed line from ip and bans it once lim's
// BanMalformed lines came within BanDuration. It reports a new ban.
func (b *banList) malformed(ip string, now time.Time, lim *Limits) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.ips[ip]
	if st == nil {
		st = &ipState{}
		b.ips[ip] = st
	}
	if st.malformed == 0 || now.Sub(st.malformedStart) > lim.BanDuration {
		st.malformed, st.malformedStart = 0, now
	}
	st.malformed++
	if st.malformed < lim.BanMalformed {
		return false
	}
	st.malformed = 0
	st.bannedUntil = now.Add(lim.BanDuration)
	return true
}

// ban bans ip until the given time.
func (b *banList) ban(ip string, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.ips[ip]
	if st == nil {
		st = &ipState{}
		b.ips[ip] = st
	}
	if until.After(st.bannedUntil) {
		st.bannedUntil = until
	}
}

// Banned reports whether ip is banned now.
func (s *Server) Banned(ip string) bool {
	s.bans.mu.Lock()
	defer s.bans.mu.Unlock()
	st := s.bans.ips[ip]
	return st != nil && s.now().Before(st.bannedUntil)
}

// Unban lifts a ban on ip.
func (s *Server) Unban(ip string) {
	s.bans.mu.Lock()
	defer s.bans.mu.Unlock()
	if st := s.bans.ips[ip]; st != nil {
		st.bannedUntil = time.Time{}
	}
}
