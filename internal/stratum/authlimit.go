package stratum

import (
	"sync"
	"time"
)

// Limits on failed mining.authorize password checks.
const (
	authFailWindow = time.Minute
	// authFailuresPerIP is how many failed password checks (argon2 runs)
	// one address may cause per authFailWindow; later authorizations from
	// it that would need a check fail unchecked until the window ends.
	authFailuresPerIP = 10
	// authLimitMaxIPs bounds the addresses tracked; when full, addresses
	// whose window ended go first, then everything.
	authLimitMaxIPs = 100_000
)

// failWindow counts one address's failed checks in a fixed window.
type failWindow struct {
	window
	logged bool // a refusal was logged in this window
}

// authLimiter limits failed password checks per address. Safe for
// concurrent use.
type authLimiter struct {
	mu    sync.Mutex
	perIP map[string]*failWindow
}

func (l *authLimiter) init() { l.perIP = make(map[string]*failWindow) }

// allow reports whether a password from ip may be checked at now; first
// is true for the first refusal of the address's window.
func (l *authLimiter) allow(ip string, now time.Time) (ok, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.perIP[ip]
	if w == nil || w.count(now, authFailWindow) < authFailuresPerIP {
		return true, false
	}
	first = !w.logged
	w.logged = true
	return false, first
}

// fail counts a failed password check from ip.
func (l *authLimiter) fail(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.perIP[ip]
	if w == nil {
		if len(l.perIP) >= authLimitMaxIPs {
			for k, v := range l.perIP {
				if now.Sub(v.start) >= authFailWindow {
					delete(l.perIP, k)
				}
			}
			if len(l.perIP) >= authLimitMaxIPs {
				clear(l.perIP)
			}
		}
		w = &failWindow{window: window{start: now}}
		l.perIP[ip] = w
	}
	if w.count(now, authFailWindow) == 0 {
		w.logged = false // a new window
	}
	w.n++
}
