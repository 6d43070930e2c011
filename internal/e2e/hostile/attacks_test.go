//go:build chaos

package hostile

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/miner"
)

// env is what every attack needs.
type env struct {
	addr             string
	floodAddr        string // where idleConnections connects: addr, or a sink (envFloodSink)
	handshakeTimeout time.Duration
	idleTimeout      time.Duration
	user, password   string // an existing password user for attackers that need a session
	ip               func() string
}

// result is what one attack did and saw.
type result struct {
	name     string
	ips      []string
	attempts int
	outcomes map[outcome]int
	notes    []string
	problems []string // each a failure of the suite
	took     time.Duration
	// refusedAtAccept counts attempts the server closed at once (checked
	// against its refusal counter).
	refusedAtAccept int
	mu              sync.Mutex
}

func newResult(name string) *result {
	return &result{name: name, outcomes: map[outcome]int{}}
}

func (r *result) add(o outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	r.outcomes[o]++
	if o == outHang || strings.HasPrefix(string(o), "bad reply") {
		r.problems = append(r.problems, fmt.Sprintf("attempt %d: %s", r.attempts, o))
	}
}

func (r *result) note(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, a...))
}

func (r *result) problem(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}

func (r *result) useIP(e *env) string {
	ip := e.ip()
	r.mu.Lock()
	r.ips = append(r.ips, ip)
	r.mu.Unlock()
	return ip
}

// requireClean fails every outcome that is not an error reply, a close or
// a refusal.
func (r *result) requireClean() {
	for o, n := range r.outcomes {
		if o != outClosed && o != outRefused && !strings.HasPrefix(string(o), "error ") && !strings.HasPrefix(string(o), "accepted: ") && !strings.HasPrefix(string(o), "clamped") {
			r.problem("%d attempts ended %q, want an error reply or a disconnect", n, o)
		}
	}
}

// idleConnections opens n connections that never send and checks that the
// server closes every one: at once when it refuses it at accept (stratumd's
// per-address connection rate: the attack opens them far faster), or when
// the handshake deadline fires, and never later (plus slack).
func idleConnections(ctx context.Context, e *env, n int) *result {
	r := newResult(fmt.Sprintf("%d connections that never send", n))
	var ips []string
	for range 4 { // 4 source addresses: 2,500 connections each
		ips = append(ips, r.useIP(e))
	}
	start := time.Now()
	slack := e.handshakeTimeout + 15*time.Second
	var opened, dialFailed, closed, stayed, closedEarly atomic.Int64
	var lastOpen atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	var closeTimes sync.Mutex
	var maxLife time.Duration
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				c, err := dialFrom(ctx, ips[i%int64(len(ips))], e.floodAddr)
				if err != nil {
					dialFailed.Add(1)
					continue
				}
				opened.Add(1)
				at := time.Now()
				lastOpen.Store(at.UnixNano())
				wg.Go(func() {
					defer c.Close()
					_ = c.SetReadDeadline(at.Add(slack))
					var b [256]byte
					for {
						_, err := c.Read(b[:])
						if err == nil {
							continue
						}
						if isTimeout(err) {
							stayed.Add(1)
						} else {
							closed.Add(1)
							life := time.Since(at)
							if life < e.handshakeTimeout/4 {
								closedEarly.Add(1) // refused at accept
							}
							closeTimes.Lock()
							maxLife = max(maxLife, life)
							closeTimes.Unlock()
						}
						return
					}
				})
			}
		})
	}
	wg.Wait()
	r.took = time.Since(start)
	for range closed.Load() {
		r.add(outClosed)
	}
	for range stayed.Load() {
		r.add(outHang)
	}
	r.note("opened %d (%d dials failed) in %v; the server closed %d: %d at once (refused at accept), %d at the handshake deadline %v; the longest lived %v; all gone %v after the last was opened",
		opened.Load(), dialFailed.Load(), time.Duration(lastOpen.Load()-start.UnixNano()).Round(time.Millisecond),
		closed.Load(), closedEarly.Load(), closed.Load()-closedEarly.Load(), e.handshakeTimeout,
		maxLife.Round(time.Millisecond), time.Since(time.Unix(0, lastOpen.Load())).Round(time.Millisecond))
	r.refusedAtAccept = int(closedEarly.Load())
	if dialFailed.Load() > 0 {
		r.problem("%d connections could not be opened", dialFailed.Load())
	}
	return r
}

// slowloris sends a request one byte every 200 ms, never finishing a line,
// before and after the handshake: the handshake or idle deadline must end
// it, since only complete valid lines move the read deadline.
func slowloris(ctx context.Context, e *env) *result {
	r := newResult("slowloris lines")
	start := time.Now()
	var wg sync.WaitGroup
	trickle := func(write func([]byte) error, done <-chan struct{}) time.Duration {
		begin := time.Now()
		msg := []byte(`{"id":1,"method":"mining.subscribe","params":["` + strings.Repeat("x", 1000))
		for i := 0; ; i++ {
			if write(msg[i%len(msg):i%len(msg)+1]) != nil {
				return time.Since(begin)
			}
			select {
			case <-done:
				return time.Since(begin)
			case <-ctx.Done():
				return -1
			case <-time.After(200 * time.Millisecond): // the attack's pace
			}
		}
	}
	// Before the handshake: 20 connections.
	ip := r.useIP(e)
	for range 20 {
		wg.Go(func() {
			c, err := rawFrom(ctx, ip, e.addr)
			if err != nil {
				r.problem("dial: %v", err)
				return
			}
			defer c.close()
			done := make(chan struct{})
			var o outcome
			go func() {
				o = c.reply(e.handshakeTimeout + 10*time.Second)
				close(done)
			}()
			life := trickle(c.send, done)
			<-done
			r.add(o)
			if life > e.handshakeTimeout+2*time.Second {
				r.problem("a slowloris connection lived %v, past the handshake deadline %v", life, e.handshakeTimeout)
			}
		})
	}
	// After the handshake: 5 authorized sessions trickling.
	ip2 := r.useIP(e)
	for range 5 {
		wg.Go(func() {
			m, err := minerFrom(ctx, ip2, e.addr, miner.Options{User: e.user, Password: e.password})
			if err != nil {
				r.problem("handshake: %v", err)
				return
			}
			defer m.Close()
			life := trickle(m.SendRaw, m.Done())
			select {
			case <-m.Done():
				r.add(outClosed)
			case <-time.After(e.idleTimeout + 10*time.Second):
				r.add(outHang)
			}
			if life > e.idleTimeout+2*time.Second {
				r.problem("an authorized slowloris session lived %v, past the idle deadline %v", life, e.idleTimeout)
			}
		})
	}
	wg.Wait()
	r.took = time.Since(start)
	r.requireClean()
	r.note("20 before the handshake (deadline %v), 5 after it (idle deadline %v)", e.handshakeTimeout, e.idleTimeout)
	return r
}

// oneLine sends line on a fresh connection from ip and classifies the
// answer; the write runs beside the read, since the server may close
// before taking it all.
func oneLine(ctx context.Context, e *env, ip string, line []byte) outcome {
	c, err := rawFrom(ctx, ip, e.addr)
	if err != nil {
		return outcome("dial failed: " + err.Error())
	}
	defer c.close()
	go c.send(line)
	o := c.reply(10 * time.Second)
	if strings.HasPrefix(string(o), "error ") && !c.closedWithin(5*time.Second) {
		return outcome(string(o) + " without disconnect")
	}
	return o
}

// malformedLines sends lines the codec must refuse, each on a connection
// of its own: every one must get an error reply and a disconnect (or, once
// the address is banned after --ban-malformed of them, a refusal).
func malformedLines(ctx context.Context, e *env, name string, lines [][]byte, repeat int) *result {
	r := newResult(name)
	start := time.Now()
	ip := r.useIP(e)
	for range repeat {
		for _, l := range lines {
			r.add(oneLine(ctx, e, ip, l))
		}
	}
	r.took = time.Since(start)
	r.requireClean()
	return r
}

func longLines(ctx context.Context, e *env) *result {
	big := `{"id":1,"method":"mining.subscribe","params":["` + strings.Repeat("a", 1<<20) + `"]}` + "\n"
	noNewline := strings.Repeat("b", 1<<20) // never ends: the bound applies while reading
	return malformedLines(ctx, e, "1 MiB lines", [][]byte{[]byte(big), []byte(noNewline)}, 4)
}

func invalidUTF8(ctx context.Context, e *env) *result {
	return malformedLines(ctx, e, "invalid UTF-8", [][]byte{
		[]byte("{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"\xff\xfe\xfd\"]}\n"),
		[]byte("{\"id\":1,\"method\":\"mining.\xc0\xafsubscribe\",\"params\":[]}\n"),
		[]byte("{\"id\":\"\xed\xa0\x80\",\"method\":\"mining.subscribe\",\"params\":[]}\n"), // a UTF-16 surrogate
	}, 2)
}

func deepJSON(ctx context.Context, e *env) *result {
	nest := func(n int) []byte {
		return []byte(`{"id":1,"method":"mining.subscribe","params":` + strings.Repeat("[", n) + strings.Repeat("]", n) + "}\n")
	}
	obj := func(n int) []byte {
		return []byte(`{"id":1,"method":"mining.subscribe","params":[` + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + "]}\n")
	}
	return malformedLines(ctx, e, "deeply nested JSON", [][]byte{nest(5000), obj(2500), nest(100000)}, 2)
}

// session is a mining session of an attacker for requests that need one.
func session(ctx context.Context, e *env, ip string, rolling bool) (*miner.Miner, error) {
	return minerFrom(ctx, ip, e.addr, miner.Options{User: e.user, Password: e.password, VersionRolling: rolling})
}

// session opens an attacker session as session does; when that fails it
// records the problem as "what: error" and returns nil.
func (r *result) session(ctx context.Context, e *env, ip string, rolling bool, what string) *miner.Miner {
	m, err := session(ctx, e, ip, rolling)
	if err != nil {
		r.problem("%s: %v", what, err)
		return nil
	}
	return m
}

// call sends method with raw params on m and classifies the reply.
func call(ctx context.Context, m *miner.Miner, method string, params ...any) outcome {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, rerr, err := m.Call(cctx, method, params...)
	switch {
	case err != nil && cctx.Err() != nil:
		return outHang
	case err != nil:
		return outClosed
	case rerr != nil:
		return errorOutcome(rerr.Code)
	}
	return outResult
}

// hugeNumbers sends numbers no field can hold, in ids and params.
func hugeNumbers(ctx context.Context, e *env) *result {
	r := newResult("huge numbers")
	start := time.Now()
	ip := r.useIP(e)
	m := r.session(ctx, e, ip, true, "handshake")
	if m == nil {
		return r
	}
	defer m.Close()
	huge := []json.RawMessage{
		json.RawMessage("1e400"), json.RawMessage("-1e400"), json.RawMessage("1e-400"),
		json.RawMessage("123456789012345678901234567890123456789012345678901234567890"),
		json.RawMessage("-0"), json.RawMessage("0"), json.RawMessage("18446744073709551616"),
		json.RawMessage("1" + strings.Repeat("0", 5000)),
	}
	job := m.CurrentJob()
	// A difficulty hint is clamped to [--min-diff, --max-diff]: a number
	// that parses (0, 1e-400, 2^64...) may be answered true; one that
	// does not (1e400) must be an error.
	hint := func(o outcome, h json.RawMessage) outcome {
		var f float64
		if o == outResult && json.Unmarshal(h, &f) == nil {
			return "clamped (true)"
		}
		return o
	}
	for _, h := range huge {
		r.add(hint(call(ctx, m, "mining.suggest_difficulty", h), h))
		r.add(hint(call(ctx, m, "mining.configure", []string{"minimum-difficulty"}, map[string]any{"minimum-difficulty.value": h}), h))
		r.add(call(ctx, m, "mining.submit", m.Workers()[0], job.ID, h, h, h))
		r.add(call(ctx, m, "mining.submit", m.Workers()[0], h, "0000000000000000", "ffffffffffffffff", "ffffffff"))
	}
	// A huge id must be echoed, or refused: either is clean.
	ids := 0
	for _, id := range []string{"1e400", "123456789012345678901234567890123456789012345678901234567890", "-1e-400"} {
		c, err := rawFrom(ctx, ip, e.addr)
		if err != nil {
			r.problem("dial: %v", err)
			continue
		}
		go c.send([]byte(`{"id":` + id + `,"method":"mining.subscribe","params":[]}` + "\n"))
		o := c.reply(10 * time.Second)
		c.close()
		if o == outResult {
			ids++
			o = outcome("error 0 (id echoed)") // counted as handled
		}
		r.add(o)
	}
	r.took = time.Since(start)
	r.note("%d huge ids were echoed in a normal reply", ids)
	if m.Err() != nil {
		r.note("the session ended: %v", m.Err())
	}
	r.requireClean()
	return r
}

// wrongTypes sends every method with each parameter replaced by values of
// every wrong type, on sessions of their own.
func wrongTypes(ctx context.Context, e *env) *result {
	r := newResult("wrong types in every parameter")
	start := time.Now()
	bad := []json.RawMessage{
		json.RawMessage("null"), json.RawMessage("true"), json.RawMessage("0"), json.RawMessage("-1"),
		json.RawMessage("1.5"), json.RawMessage(`""`), json.RawMessage(`"zz"`), json.RawMessage(`"\u0000"`),
		json.RawMessage("[]"), json.RawMessage("{}"), json.RawMessage(`[[["x"]]]`), json.RawMessage(`{"a":{"b":[]}}`),
	}
	type method struct {
		name   string
		n      int // parameters
		params func(m *miner.Miner) []any
	}
	methods := []method{
		{"mining.subscribe", 2, func(*miner.Miner) []any { return []any{"cpuminer/2.5.1", "01000000"} }},
		{"mining.authorize", 2, func(*miner.Miner) []any { return []any{e.user + ".w", e.password} }},
		{"mining.configure", 2, func(*miner.Miner) []any {
			return []any{[]string{"version-rolling"}, map[string]any{"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}}
		}},
		{"mining.suggest_difficulty", 1, func(*miner.Miner) []any { return []any{0.001} }},
		{"mining.extranonce.subscribe", 1, func(*miner.Miner) []any { return []any{} }},
		{"mining.submit", 6, func(m *miner.Miner) []any {
			j := m.CurrentJob()
			return []any{m.Workers()[0], j.ID, strings.Repeat("00", j.Extranonce2Size), fmt.Sprintf("%08x", j.NTime), "00000000", "00000000"}
		}},
		{"mining.authorize_admin", 1, func(*miner.Miner) []any { return []any{"not-the-password"} }},
		{"mining.add_user", 2, func(*miner.Miner) []any { return []any{"someone", "pw"} }},
	}
	cases := 0
	var normal []string
	for _, meth := range methods {
		for pos := range meth.n {
			// One session per (method, position): fewer invalid requests
			// than the ban rule's minimum window.
			m, err := session(ctx, e, r.useIP(e), true)
			if err != nil {
				r.problem("handshake: %v", err)
				continue
			}
			for _, b := range bad {
				ps := meth.params(m)
				if len(ps) == 0 {
					ps = []any{b}
				} else {
					ps[pos] = b
				}
				o := call(ctx, m, meth.name, ps...)
				cases++
				r.add(o)
				if o == outResult {
					normal = append(normal, fmt.Sprintf("%s[%d]=%s", strings.TrimPrefix(meth.name, "mining."), pos, b))
				}
				if o == outClosed {
					break
				}
			}
			m.Close()
		}
	}
	r.took = time.Since(start)
	// A wrong type where the method ignores or tolerates the value (the
	// subscribe user agent, extranonce.subscribe's params) may be
	// answered normally; the rest must be errors.
	r.note("%d requests over %d methods; answered normally: %s", cases, len(methods), strings.Join(normal, " "))
	for o, n := range r.outcomes {
		if o == outHang || strings.HasPrefix(string(o), "bad") {
			r.problem("%d requests ended %q", n, o)
		}
	}
	return r
}

// foreignShares submits another session's shares (found with its
// extranonce1) and job ids the session was never sent.
func foreignShares(ctx context.Context, e *env) *result {
	r := newResult("submits against another session's job")
	start := time.Now()
	ip := r.useIP(e)
	a := r.session(ctx, e, ip, false, "handshake")
	if a == nil {
		return r
	}
	defer a.Close()
	b := r.session(ctx, e, ip, false, "handshake")
	if b == nil {
		return r
	}
	defer b.Close()
	for range 8 {
		// A's share that is not valid work under B's extranonce1 (when
		// none turns up in 50 tries, the last one found).
		var s miner.Share
		legit := true
		for try := 0; try < 50 && legit; try++ {
			var err error
			if s, err = findNonBlock(ctx, a); err != nil {
				r.problem("find share: %v", err)
				return r
			}
			_, legit = validFor(b, s)
		}
		s.Worker = b.Workers()[0]
		res, err := b.Submit(ctx, s)
		r.add(checkForeign(r, legit, s, res, err))
		fake := s
		fake.JobID = "deadbeef"
		res, err = b.Submit(ctx, fake)
		r.add(submitOutcome(res, err))
		fake.JobID = s.JobID + ".7"
		res, err = b.Submit(ctx, fake)
		r.add(submitOutcome(res, err))
	}
	r.took = time.Since(start)
	r.requireClean()
	return r
}

// findNonBlock finds a share that is not a block: the attackers withhold
// blocks, as the honest miners do, so that the tip stays put.
func findNonBlock(ctx context.Context, m *miner.Miner) (miner.Share, error) {
	for {
		s, err := m.FindShare(ctx)
		if err != nil || !s.MeetsNetwork {
			return s, err
		}
	}
}

// stale reports a share refused with 21 because another attack's share
// was a regtest block and moved the tip under it: the share is mined again.
func stale(res miner.Result, err error) bool {
	return err == nil && res.Error != nil && res.Error.Code == 21
}

// mineAgain mines a new share on m once a clean job has followed the one
// s was mined on. A stale reply can come before that job: the pool makes
// the old tip stale the moment the node accepts a block, and the next job
// follows only after the node's new-tip notice and a new template, so
// mining again at once could find another stale share.
func mineAgain(ctx context.Context, m *miner.Miner, s miner.Share) (miner.Share, error) {
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seen := false // WaitEvent looks at the events in order, from the first
	if _, err := m.WaitEvent(wctx, func(e miner.Event) bool {
		if e.Job == nil {
			return false
		}
		if e.Job.ID == s.JobID {
			seen = true
			return false
		}
		return seen && e.Job.Clean
	}); err != nil {
		return s, fmt.Errorf("no new job after share of job %s was stale: %w", s.JobID, err)
	}
	return findNonBlock(ctx, m)
}

// submitFresh mines and submits a share that is not a block, again if a
// new tip made it stale. It returns the share last submitted.
func submitFresh(ctx context.Context, m *miner.Miner) (miner.Share, miner.Result, error) {
	s, err := findNonBlock(ctx, m)
	if err != nil {
		return s, miner.Result{}, fmt.Errorf("find share: %w", err)
	}
	res, err := m.Submit(ctx, s)
	for try := 0; stale(res, err) && try < 3; try++ {
		if s, err = mineAgain(ctx, m, s); err == nil {
			res, err = m.Submit(ctx, s)
		}
	}
	return s, res, err
}

// validFor returns the hash the pool computes for s on m's session (its
// extranonce1, the job of that id it sent m) and whether that meets m's
// share target: only then may the pool accept s from m.
func validFor(m *miner.Miner, s miner.Share) (chainhash.Hash, bool) {
	for _, j := range m.Jobs() {
		if j.ID == s.JobID {
			h := j.Hash(s.Extranonce2, s.NTime, s.Nonce, s.Version)
			t := j.ShareTarget()
			return h, t.Meets(&h)
		}
	}
	return chainhash.Hash{}, false
}

// checkForeign classifies the reply to a share found on another session
// (or an earlier one) and submitted on m: accepted is a failure unless the
// share happens to be valid work for m's own extranonce1 as well.
// legit is validFor's verdict taken before the submit: an accepted share
// can be a regtest block, whose new tip clears the miner's jobs at once.
func checkForeign(r *result, legit bool, s miner.Share, res miner.Result, err error) outcome {
	o := submitOutcome(res, err)
	if o == outResult {
		if legit {
			return outcome("accepted: valid work for this session too")
		}
		r.problem("a share of another session (job %s) was accepted: it does not meet this session's target", s.JobID)
	}
	return o
}

func submitOutcome(res miner.Result, err error) outcome {
	switch {
	case err != nil:
		return outClosed
	case res.Error != nil:
		return errorOutcome(res.Error.Code)
	case res.Accepted:
		return outResult
	}
	return outcome("reply neither true nor an error")
}

// replayShares resubmits accepted shares in the same session and after a
// reconnect.
func replayShares(ctx context.Context, e *env) *result {
	r := newResult("shares replayed across reconnects")
	start := time.Now()
	ip := r.useIP(e)
	accepted := 0
	for range 6 {
		a := r.session(ctx, e, ip, true, "handshake")
		if a == nil {
			return r
		}
		s, res, err := submitFresh(ctx, a)
		if err != nil {
			a.Close()
			r.problem("the original share was not accepted: %v", err)
			return r
		}
		if !res.Accepted {
			r.problem("the original share was not accepted: %v", res.Error)
		} else {
			accepted++
		}
		res, err = a.Submit(ctx, s) // same session
		r.add(submitOutcome(res, err))
		a.Close()
		b := r.session(ctx, e, ip, true, "reconnect")
		if b == nil {
			return r
		}
		_, legit := validFor(b, s)
		res, err = b.Submit(ctx, s) // a new session
		r.add(checkForeign(r, legit, s, res, err))
		b.Close()
	}
	r.took = time.Since(start)
	r.note("%d originals accepted; every replay must be refused", accepted)
	r.requireClean()
	return r
}

// ntimeVersion submits otherwise valid shares with ntime and version bits
// out of bounds.
func ntimeVersion(ctx context.Context, e *env) *result {
	r := newResult("ntime and version abuse")
	start := time.Now()
	ip := r.useIP(e)
	m := r.session(ctx, e, ip, true, "handshake")
	if m == nil {
		return r
	}
	defer m.Close()
	plain := r.session(ctx, e, ip, false, "handshake")
	if plain == nil {
		return r
	}
	defer plain.Close()
	for range 3 {
		s, err := findNonBlock(ctx, m)
		if err != nil {
			r.problem("find share: %v", err)
			return r
		}
		for _, nt := range []uint32{0, 1, s.NTime + 3*3600, 0xffffffff} {
			x := s
			x.NTime = nt
			res, err := m.Submit(ctx, x)
			r.add(submitOutcome(res, err))
		}
		for _, vb := range []uint32{0xffffffff, 0x00001fff, 0xe0000000} {
			x := s
			x.VersionBits, x.HasVersionBits = vb, true
			res, err := m.Submit(ctx, x)
			r.add(submitOutcome(res, err))
		}
		p, err := findNonBlock(ctx, plain)
		if err != nil {
			r.problem("find share: %v", err)
			return r
		}
		// Bits without mining.configure are judged against the pool's mask
		// (firmware that rolls without negotiating): inside it the rolled
		// header is judged as work, 23 or, when it meets the share target
		// (likely at this difficulty), accepted; outside it, 20.
		p.VersionBits, p.HasVersionBits = 0x00002000, true
		res, err := plain.Submit(ctx, p)
		o := submitOutcome(res, err)
		if o == outResult {
			o = "accepted: version bits inside the pool mask without configure"
		}
		r.add(o)
		p.VersionBits = 0xe0000000
		res, err = plain.Submit(ctx, p)
		if o := submitOutcome(res, err); o != errorOutcome(20) && o != errorOutcome(21) && o != outClosed {
			r.problem("bits outside the pool mask without configure: %q, want error 20 (21 after a new tip)", o)
		}
		r.add(submitOutcome(res, err))
	}
	r.took = time.Since(start)
	r.requireClean()
	return r
}

// adminBruteForce tries wrong admin passwords: 60 from one address, then 8
// from each of 6 more.
func adminBruteForce(ctx context.Context, e *env) *result {
	r := newResult("admin password brute force")
	start := time.Now()
	try := func(ip string, n int) {
		m := r.session(ctx, e, ip, false, "handshake")
		if m == nil {
			return
		}
		defer m.Close()
		for i := range n {
			r.add(call(ctx, m, "mining.authorize_admin", fmt.Sprintf("guess-%d-%s", i, ip)))
		}
	}
	try(r.useIP(e), 60)
	for range 6 {
		try(r.useIP(e), 8)
	}
	r.took = time.Since(start)
	r.requireClean()
	return r
}

// sqlNames authorizes user and worker names full of SQL metacharacters and,
// through an admin session, creates such a user and mines as it.
func sqlNames(ctx context.Context, e *env, admin *miner.Miner, evilUser, evilPassword string) *result {
	r := newResult("SQL metacharacters in user names (password mode)")
	start := time.Now()
	ip := r.useIP(e)
	names := []string{
		"'; DROP TABLE shares; --", "admin'--", "x'OR'1'='1", `"; DELETE FROM users; --`,
		"Robert');DROP/**/TABLE/**/users;--", "%", "_", `\`, "$1", "';SELECT/**/pg_sleep(10);--",
		"x\u2019;DROP", "1;COPY/**/users/**/TO/**/'/tmp/x'",
	}
	// The admin session first: the idle deadline is short.
	if o := call(ctx, admin, "mining.add_user", evilUser, evilPassword); o != outResult {
		r.problem("admin add_user %q: %s", evilUser, o)
	}
	for _, n := range names {
		c, err := dialFrom(ctx, ip, e.addr)
		if err != nil {
			r.problem("dial: %v", err)
			continue
		}
		m := miner.New(c, miner.Options{User: n, Password: "x'OR'1'='1"})
		if o := call(ctx, m, "mining.subscribe", "cpuminer/2.5.1"); o != outResult {
			r.problem("subscribe: %s", o)
		}
		r.add(call(ctx, m, "mining.authorize", n, "x' OR '1'='1"))
		m.Close()
	}
	// The user whose name is SQL mines, as a worker whose name is SQL.
	c, err := dialFrom(ctx, ip, e.addr)
	if err == nil {
		m := miner.New(c, miner.Options{User: evilUser, Password: evilPassword, Workers: []string{"'); DROP TABLE shares;--"}})
		if err := m.Handshake(ctx); err != nil {
			r.problem("the SQL-named user could not authorize: %v", err)
		} else {
			if _, res, err := submitFresh(ctx, m); err != nil || !res.Accepted {
				r.problem("the SQL-named user's share was refused: %v %v", err, res.Error)
			} else {
				r.note("user %q, worker %q mined a share", evilUser, "'); DROP TABLE shares;--")
			}
		}
		m.Close()
	}
	r.took = time.Since(start)
	r.requireClean()
	return r
}
