package stratum

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

const (
	// ringSize is how many recently sent jobs (and aliases) a session
	// remembers; shares against older ones are stale.
	ringSize = 8
	// maxWorkers bounds the workers one session may authorize.
	maxWorkers = 64
)

// sentJob is a job as sent to one session: under which id (the job's own
// or an alias after a retarget) and at which difficulty.
type sentJob struct {
	e      *jobEntry
	alias  uint32 // 0: the job's own id; n: "<id>.<n>"
	diff   float64
	target *chain.Target
}

// worker is one authorized "user.worker" of a session; user and worker
// are substrings of name.
type worker struct {
	name, user, worker string
}

// session is one miner connection. Its reader goroutine (run) owns the
// wire.LineReader and the fields marked "reader"; mu guards the difficulty and
// job state shared with the job manager's fan-out; wmu serializes writes.
// Lock order: mu before wmu.
type session struct {
	srv   *Server
	group *serveGroup
	conn  net.Conn
	raw   syscall.RawConn // conn's socket for deadline-free writes; nil: none
	ip    string
	lr    *wire.LineReader

	closeOnce sync.Once
	closed    atomic.Bool
	ready     atomic.Bool // subscribed and authorized: gets notifies

	wmu sync.Mutex

	// reader
	subscribed    bool
	handshakeDone bool
	admin         bool
	rolling       bool   // version rolling negotiated
	mask          uint32 // negotiated version-rolling mask
	en1Num        uint32
	en1           [Extranonce1Size]byte
	workers       []worker
	submits       int // recent submits, for the ban rule
	invalid       int // recent invalid submits

	mu        sync.Mutex
	floor     float64 // configure minimum-difficulty, clamped; 0 none
	suggested float64 // suggest_difficulty before the first job
	diff      float64 // current difficulty (0 until ready)
	sentDiff  float64 // last difficulty sent to the miner
	target    *chain.Target
	vd        *Vardiff
	ring      [ringSize]sentJob
	ringPos   int
	lastJob   *jobEntry
	aliasNext uint32
	seen      map[shareKey]struct{}
}

func newSession(s *Server, g *serveGroup, conn net.Conn, ip string) *session {
	return &session{
		srv:   s,
		group: g,
		conn:  conn,
		raw:   rawSocket(conn),
		ip:    ip,
		lr:    wire.NewLineReader(conn, s.cfg.MaxLineLength),
	}
}

// logger returns the server's logger with the session's address.
func (c *session) logger() *slog.Logger {
	return c.srv.log.With("remote", c.conn.RemoteAddr().String())
}

// run is the session's reader loop; it returns when the connection ends
// or, once the handshake is done, hands the loop to a fresh goroutine
// (tracked in the session's serve group) and returns. The handshake grows
// the goroutine's stack (authorization reaches the database) and a grown
// stack never shrinks back below 4 KiB while it waits in a read; the fresh
// goroutine starts at the minimum size, so an idle miner's reader costs
// half the stack. A panic drops this session only: it is logged with its
// stack, counted, and the connection closed.
func (c *session) run() {
	if c.loop(true) {
		c.group.wg.Add(1) // the count is positive: our caller's Done is still to come
		go func() {
			defer c.group.wg.Done()
			c.loop(false)
		}()
	}
}

// loop reads and handles lines until the connection ends, then closes the
// session and removes it from the server. With handshake set it sets the
// handshake deadline first and returns true, leaving the session open,
// as soon as the handshake is done.
func (c *session) loop(handshake bool) (handOff bool) {
	defer func() {
		if r := recover(); r != nil {
			handOff = false
			c.srv.st.panics.Add(1)
			c.logger().Error("stratum: session panicked; dropped", "panic", r, "stack", string(debug.Stack()))
		}
		if !handOff {
			c.close()
			c.srv.removeSession(c)
		}
	}()
	if handshake {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	}
	for {
		line, err := c.lr.ReadLine()
		if err != nil {
			c.readFailed(err)
			return false
		}
		if !c.handleLine(line) {
			return false
		}
		if handshake && c.handshakeDone {
			return true
		}
	}
}

// readFailed handles the error that ends the reader loop. Only a line too
// long is logged at the default level: a flood of connections that time
// out or drop costs no log work unless debug logging is on.
func (c *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, wire.ErrLineTooLong):
		c.malformed("line too long")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
	case !c.srv.log.Enabled(context.Background(), slog.LevelDebug):
	case errors.As(err, &ne) && ne.Timeout():
		if c.handshakeDone {
			c.logger().Debug("stratum: idle session closed")
		} else {
			c.logger().Debug("stratum: handshake timeout")
		}
	default:
		c.logger().Debug("stratum: read failed", "err", err)
	}
}

// handleLine decodes and dispatches one line; false closes the session.
func (c *session) handleLine(line []byte) bool {
	req, err := wire.DecodeRequest(line)
	if err != nil {
		c.malformed(err.Error())
		return false
	}
	if h := c.srv.hookDispatch; h != nil {
		h(req.Method)
	}
	if !c.dispatch(req) {
		return false
	}
	if c.handshakeDone {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.IdleTimeout))
	}
	return true
}

// malformed answers a malformed line, counts it against the address
// (banning it past BanMalformed) and lets the caller disconnect.
func (c *session) malformed(why string) {
	c.srv.st.malformed.Add(1)
	_ = c.write(wire.EncodeError(nil, wire.CodeOther, "malformed request"), c.srv.cfg.WriteTimeout)
	banned := c.srv.adm.Malformed(c.ip)
	if banned {
		c.srv.st.bans.Add(1)
	}
	c.logger().Info("stratum: malformed line; disconnecting", "why", why, "banned", banned)
}

// dispatch runs one request; false closes the session.
func (c *session) dispatch(req wire.Request) bool {
	switch req.Method {
	case wire.MethodSubscribe:
		c.handleSubscribe(req)
	case wire.MethodAuthorize:
		c.handleAuthorize(req)
	case wire.MethodConfigure:
		c.handleConfigure(req)
	case wire.MethodSuggestDifficulty:
		c.handleSuggestDifficulty(req)
	case wire.MethodExtranonceSubscribe:
		c.replyTrue(req.ID)
	case wire.MethodSubmit:
		return c.handleSubmit(req)
	case wire.MethodAuthorizeAdmin:
		c.handleAuthorizeAdmin(req)
	case wire.MethodAddUser:
		c.handleAddUser(req)
	default:
		c.replyError(req.ID, wire.CodeOther, "unsupported method")
	}
	return !c.closed.Load()
}

func (c *session) reply(b []byte) { _ = c.write(b, c.srv.cfg.WriteTimeout) }

func (c *session) replyTrue(id json.RawMessage) {
	b, _ := wire.EncodeResult(id, true)
	c.reply(b)
}

func (c *session) replyError(id json.RawMessage, code int, msg string) {
	c.reply(wire.EncodeError(id, code, msg))
}

// invalidParams answers params that do not fit the method. They count as
// an invalid submission for the ban rule.
func (c *session) invalidParams(id json.RawMessage, err error) bool {
	c.replyError(id, wire.CodeOther, err.Error())
	return c.countSubmit(true)
}

func (c *session) handleSubscribe(req wire.Request) {
	if _, err := wire.DecodeSubscribe(req.Params); err != nil {
		c.invalidParams(req.ID, err)
		return
	}
	if c.srv.jobs.notSynced.Load() {
		c.replyError(req.ID, wire.CodeOther, "node not synced: the pool's node is still syncing the block chain; try again later")
		c.close()
		return
	}
	if !c.subscribed {
		n, ok := c.srv.allocExtranonce1()
		if !ok {
			c.replyError(req.ID, wire.CodeOther, "server full")
			return
		}
		c.en1Num = n
		c.en1 = [Extranonce1Size]byte{c.srv.cfg.InstanceID, byte(n >> 16), byte(n >> 8), byte(n)}
		c.subscribed = true
		c.srv.st.subscribed.Add(1)
	}
	sub := hex.EncodeToString(c.en1[:])
	c.reply(wire.EncodeSubscribeResult(req.ID, sub, c.en1[:], c.srv.cfg.Extranonce2Size))
	c.maybeReady()
}

func (c *session) handleAuthorize(req wire.Request) {
	p, err := wire.DecodeAuthorize(req.Params)
	if err != nil {
		c.invalidParams(req.ID, err)
		return
	}
	for _, w := range c.workers {
		if w.name == p.User {
			c.replyTrue(req.ID)
			return
		}
	}
	if len(c.workers) >= maxWorkers {
		c.replyError(req.ID, wire.CodeOther, "too many workers")
		return
	}
	user, wname, _ := strings.Cut(p.User, ".")
	if err := c.srv.authorize(c.group.ctx, c.ip, user, p.Password); err != nil {
		// An address over its limit is logged once per window by authorize.
		level := slog.LevelInfo
		if errors.Is(err, ErrAuthLimited) {
			level = slog.LevelDebug
		}
		c.logger().Log(c.group.ctx, level, "stratum: authorize refused", "user", p.User, "err", err)
		c.replyError(req.ID, wire.CodeUnauthorized, authMessage(err))
		return
	}
	c.workers = append(c.workers, worker{name: p.User, user: p.User[:len(user)], worker: wname})
	if len(c.workers) == 1 {
		c.srv.st.authorized.Add(1)
	}
	c.logger().Debug("stratum: authorized", "user", user, "worker", wname)
	c.replyTrue(req.ID)
	c.maybeReady()
}

// maybeReady completes the handshake once the session is subscribed and
// authorized: it gets its difficulty and the current job.
func (c *session) maybeReady() {
	if c.handshakeDone || !c.subscribed || len(c.workers) == 0 {
		return
	}
	c.handshakeDone = true
	lim := c.srv.limits.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	start := lim.StartDiff
	if c.suggested > 0 {
		start = c.suggested
	}
	c.vd = NewVardiff(c.vardiffConfig(lim), c.clampLocked(lim, start), c.srv.now())
	c.setDiffLocked(c.vd.Difficulty())
	c.ready.Store(true)
	c.sendDifficultyLocked()
	if e := c.srv.currentJob(); e != nil {
		c.sendJobLocked(e)
	}
}

// vardiffConfig is the session's vardiff configuration under lim.
func (c *session) vardiffConfig(lim *Limits) VardiffConfig {
	return VardiffConfig{Target: lim.VardiffTarget, Min: max(lim.MinDiff, min(c.floor, lim.MaxDiff)), Max: lim.MaxDiff}
}

// clampLocked bounds d to the limits and the session's floor.
func (c *session) clampLocked(lim *Limits, d float64) float64 {
	d = lim.clamp(d)
	if c.floor > d {
		d = min(c.floor, lim.MaxDiff)
	}
	return d
}

func (c *session) setDiffLocked(d float64) {
	c.diff = d
	t := chain.NewTarget(chain.DifficultyToTarget(d))
	c.target = &t
}

// sendDifficultyLocked sends mining.set_difficulty when the miner does not
// have the current difficulty yet.
func (c *session) sendDifficultyLocked() {
	if c.sentDiff == c.diff {
		return
	}
	b, err := wire.EncodeSetDifficulty(c.diff)
	if err != nil {
		return
	}
	c.sentDiff = c.diff
	_ = c.write(b, c.srv.cfg.WriteTimeout)
}

// sendJob sends e unless the session already has it or a newer job. It
// reports whether the notify was written.
func (c *session) sendJob(e *jobEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sendJobLocked(e)
}

func (c *session) sendJobLocked(e *jobEntry) bool {
	if c.closed.Load() || c.lastJob == e || (c.lastJob != nil && e.num < c.lastJob.num) {
		return false
	}
	clean := c.lastJob == nil || c.lastJob.gen != e.gen
	if clean {
		// Everything remembered is of an older tip: stale from now on.
		c.ring = [ringSize]sentJob{}
		c.seen = nil
	}
	c.sendDifficultyLocked()
	c.recordLocked(e, 0)
	c.lastJob = e
	line := e.notify
	if clean {
		line = e.notifyClean
	}
	return c.write(line, c.srv.cfg.WriteTimeout) == nil
}

// recordLocked remembers that e was sent under alias at the current
// difficulty.
func (c *session) recordLocked(e *jobEntry, alias uint32) {
	c.ring[c.ringPos] = sentJob{e: e, alias: alias, diff: c.diff, target: c.target}
	c.ringPos = (c.ringPos + 1) % ringSize
}

// retargetLocked moves the session to difficulty d (clamped): it sends
// mining.set_difficulty and then the current job again under a new alias
// id, so that the new difficulty applies to work from that notify on while
// shares of earlier ids keep their old difficulty.
func (c *session) retargetLocked(d float64) {
	d = c.clampLocked(c.srv.limits.Load(), d)
	if d == c.diff {
		return
	}
	c.setDiffLocked(d)
	c.sendDifficultyLocked()
	if e := c.lastJob; e != nil && !c.closed.Load() {
		c.aliasNext++
		c.recordLocked(e, c.aliasNext)
		_ = c.write(e.aliasLine(c.aliasNext), c.srv.cfg.WriteTimeout)
	}
}

// tick lets the vardiff lower a quiet miner's difficulty.
func (c *session) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vd == nil || c.closed.Load() {
		return
	}
	if d, changed := c.vd.OnTick(now); changed {
		c.retargetLocked(d)
	}
}

func (c *session) handleConfigure(req wire.Request) {
	p, err := wire.DecodeConfigure(req.Params)
	if err != nil {
		c.invalidParams(req.ID, err)
		return
	}
	var res wire.ConfigureResult
	if p.HasVersionRolling {
		mask := p.VersionRollingMask & c.srv.cfg.VersionMask
		res.AnswerVersionRolling = true
		res.VersionRolling = mask != 0 && onesCount(mask) >= p.VersionRollingMinBitCount
		if res.VersionRolling {
			res.VersionRollingMask = mask
			c.rolling, c.mask = true, mask
		} else {
			c.rolling, c.mask = false, 0
		}
	}
	for _, ext := range p.Extensions {
		if ext == wire.ExtMinimumDifficulty {
			res.AnswerMinimumDifficulty = true
		}
	}
	res.MinimumDifficulty = p.HasMinimumDifficulty
	c.reply(wire.EncodeConfigureResult(req.ID, res))
	if p.HasMinimumDifficulty {
		lim := c.srv.limits.Load()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.floor = lim.clamp(p.MinimumDifficulty)
		if c.vd != nil {
			c.vd = NewVardiff(c.vardiffConfig(lim), c.clampLocked(lim, c.diff), c.srv.now())
			c.retargetLocked(c.vd.Difficulty())
		}
	}
}

func onesCount(x uint32) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// handleSuggestDifficulty takes the miner's hint, clamped to the limits
// (and its configure minimum): before the session's first difficulty it
// is the start difficulty; afterwards the session retargets to it at once.
func (c *session) handleSuggestDifficulty(req wire.Request) {
	d, err := wire.DecodeSuggestDifficulty(req.Params)
	if err != nil {
		c.invalidParams(req.ID, err)
		return
	}
	lim := c.srv.limits.Load()
	c.replyTrue(req.ID)
	c.mu.Lock()
	defer c.mu.Unlock()
	d = c.clampLocked(lim, d)
	if c.vd == nil {
		c.suggested = d
		return
	}
	c.vd = NewVardiff(c.vardiffConfig(lim), d, c.srv.now())
	c.retargetLocked(c.vd.Difficulty())
}

// write writes b with a deadline of timeout. A failed write closes the
// session (the reader then stops). Most writes fit the socket's send buffer
// at once: those are made without setting a deadline (tryWrite), and only
// the rest of a line that did not fit waits, with the deadline.
func (c *session) write(b []byte, timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return net.ErrClosed
	}
	if c.raw != nil {
		b = b[tryWrite(c.raw, b):]
		if len(b) == 0 {
			return nil
		}
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.conn.Write(b); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.srv.st.writeTimeouts.Add(1)
			c.logger().Info("stratum: write timed out; closing session")
		}
		c.close()
		return err
	}
	return nil
}

// close closes the connection once; the reader loop then ends and the
// server forgets the session.
func (c *session) close() {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.ready.Store(false)
		c.conn.Close()
	})
}

// release undoes the session's counters; called once by removeSession.
func (c *session) release() {
	if c.subscribed {
		c.srv.st.subscribed.Add(-1)
	}
	if len(c.workers) > 0 {
		c.srv.st.authorized.Add(-1)
	}
}
