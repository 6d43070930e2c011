package stratum

import (
	"encoding/hex"
	"encoding/json"
	"errors"
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
// or an alias after a retarget), when (seq) and at which difficulty.
type sentJob struct {
	e      *jobEntry
	alias  uint32 // 0: the job's own id; n: "<id>.<n>"
	seq    uint32 // the session's count of jobs sent, this one included
	diff   float64
	target *chain.Target
}

// worker is one authorized "user.worker" of a session; user and worker
// are substrings of name.
type worker struct {
	name, user, worker string
}

// session is one miner connection. Its reader goroutine (run) owns the
// wire.LineReader and the fields marked "reader"; mu guards the difficulty
// and job state shared with the job manager's fan-out; wmu serializes
// writes. Lock order: mu before wmu. The session ends in one place, end,
// on its reader (close.go).
type session struct {
	srv   *Server
	group *serveGroup
	conn  net.Conn
	raw   syscall.RawConn // conn's socket for deadline-free writes; nil: none
	ip    string
	lr    *wire.LineReader

	closeOnce sync.Once
	cause     atomic.Pointer[error] // why the session ends, once known (stop, end)
	ready     atomic.Bool           // subscribed and authorized: gets notifies

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
	solo          *soloMiner // set by the first worker of a solo user (solo.go)
	submits       int        // recent submits, for the ban rule
	invalid       int        // recent invalid submits
	agent         string     // user agent: from mining.subscribe or client.get_version (quirks.go)

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
	sentSeq   uint32    // jobs sent, aliases included
	lower     lowerDiff // after a retarget: retarget.go
	seen      map[shareKey]struct{}

	park parkState // park.go
}

func newSession(s *Server, g *serveGroup, conn net.Conn, ip string) *session {
	c := &session{
		srv:   s,
		group: g,
		conn:  conn,
		raw:   rawSocket(conn),
		ip:    ip,
		lr:    wire.NewLineReader(conn, s.cfg.MaxLineLength),
	}
	c.initPark()
	return c
}

// logger returns the server's logger with the session's address.
func (c *session) logger() *slog.Logger {
	return c.srv.log.With("remote", c.conn.RemoteAddr().String())
}

// run is the session's reader. It reads and handles lines until one of
// them, or the connection, ends the session, and then ends it (end: the one
// place that closes, counts, logs and forgets a session). Once the
// handshake is done it returns and the session continues without the
// handshake's goroutine, whose stack the handshake grew (authorization
// reaches the database): parked, or on a fresh goroutine (afterHandshake,
// park.go).
func (c *session) run() {
	if err := c.readLoop(true); err != nil {
		c.end(err)
		return
	}
	c.afterHandshake()
}

// readLoop reads and handles lines until the session must end, and
// returns why. With handshake set it sets the handshake deadline first
// and returns nil as soon as the handshake is done. It returns errPark
// when a parking session has gone quiet (park.go). A panic in a handler
// is recovered here and returned as the reason (closePanic), so that it
// drops this session only.
func (c *session) readLoop(handshake bool) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = endSession(closePanic, &panicked{value: v, stack: debug.Stack()})
		}
	}()
	if handshake {
		_ = c.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	}
	for {
		line, err := c.lr.ReadLine()
		if err != nil {
			if c.parkable(err) {
				return errPark
			}
			return c.readEnd(err)
		}
		if err := c.handleLine(line); err != nil {
			return err
		}
		if handshake && c.handshakeDone {
			return nil
		}
	}
}

// handleLine decodes and dispatches one line; an error ends the session.
func (c *session) handleLine(line []byte) error {
	req, err := wire.DecodeRequest(line)
	if errors.Is(err, wire.ErrResponse) {
		return c.handleResponse(line)
	}
	if err != nil {
		return c.malformed(closeMalformed, err)
	}
	if h := c.srv.hookDispatch; h != nil {
		h(req.Method)
	}
	if err := c.dispatch(req); err != nil {
		return err
	}
	if c.handshakeDone {
		c.lineHandled()
	}
	return nil
}

// dispatch runs one request; an error ends the session.
func (c *session) dispatch(req wire.Request) error {
	switch req.Method {
	case wire.MethodSubscribe:
		return c.handleSubscribe(req)
	case wire.MethodAuthorize:
		return c.handleAuthorize(req)
	case wire.MethodConfigure:
		return c.handleConfigure(req)
	case wire.MethodSuggestDifficulty:
		return c.handleSuggestDifficulty(req)
	case wire.MethodExtranonceSubscribe:
		return c.replyTrue(req.ID)
	case wire.MethodSubmit:
		return c.handleSubmit(req)
	case wire.MethodAuthorizeAdmin:
		return c.handleAuthorizeAdmin(req)
	case wire.MethodAddUser:
		return c.handleAddUser(req)
	case wire.MethodPing:
		return c.handlePing(req)
	case wire.MethodReconnectMiners:
		return c.handleReconnectMiners(req)
	default:
		return c.replyError(req.ID, wire.CodeOther, "unsupported method")
	}
}

// reply writes a reply line; its error (a failed write) ends the session.
func (c *session) reply(b []byte) error { return c.write(b, c.srv.cfg.WriteTimeout) }

func (c *session) replyTrue(id json.RawMessage) error {
	b, _ := wire.EncodeResult(id, true)
	return c.reply(b)
}

func (c *session) replyError(id json.RawMessage, code int, msg string) error {
	return c.reply(wire.EncodeError(id, code, msg))
}

// invalidParams answers params that do not fit the method. They count as
// an invalid submission for the ban rule, which may end the session even
// when the reply could not be written.
func (c *session) invalidParams(id json.RawMessage, err error) error {
	werr := c.replyError(id, wire.CodeOther, err.Error())
	if err := c.countSubmit(true); err != nil {
		return err
	}
	return werr
}

func (c *session) handleSubscribe(req wire.Request) error {
	sp, err := wire.DecodeSubscribe(req.Params)
	if err != nil {
		return c.invalidParams(req.ID, err)
	}
	if sp.UserAgent != "" {
		c.agent = sp.UserAgent
	}
	if c.srv.jobs.notSynced.Load() {
		_ = c.replyError(req.ID, wire.CodeOther, "node not synced: the pool's node is still syncing the block chain; try again later")
		return endSession(closeNotSynced, nil)
	}
	if !c.subscribed {
		n, ok := c.srv.allocExtranonce1()
		if !ok {
			return c.replyError(req.ID, wire.CodeOther, "server full")
		}
		c.en1Num = n
		c.en1 = [Extranonce1Size]byte{c.srv.cfg.InstanceID, byte(n >> 16), byte(n >> 8), byte(n)}
		c.subscribed = true
		c.srv.st.subscribed.Add(1)
	}
	sub := hex.EncodeToString(c.en1[:])
	if err := c.reply(wire.EncodeSubscribeResult(req.ID, sub, c.en1[:], c.srv.cfg.Extranonce2Size)); err != nil {
		return err
	}
	c.maybeReady()
	return nil
}

func (c *session) handleAuthorize(req wire.Request) error {
	p, err := wire.DecodeAuthorize(req.Params)
	if err != nil {
		return c.invalidParams(req.ID, err)
	}
	for _, w := range c.workers {
		if w.name == p.User {
			return c.replyTrue(req.ID)
		}
	}
	if len(c.workers) >= maxWorkers {
		return c.replyError(req.ID, wire.CodeOther, "too many workers")
	}
	user, wname, _ := strings.Cut(p.User, ".")
	name, solo, err := c.authorizeUser(user, p.Password) // solo.go
	if err != nil {
		// An address over its limit is logged once per window by authorize.
		level := slog.LevelInfo
		if errors.Is(err, ErrAuthLimited) {
			level = slog.LevelDebug
		}
		c.logger().Log(c.group.ctx, level, "stratum: authorize refused", "user", p.User, "err", err)
		return c.replyError(req.ID, wire.CodeUnauthorized, authMessage(err))
	}
	if name == user {
		name = p.User[:len(user)] // no copy: the worker's name holds it
	}
	c.setSolo(solo)
	c.addWorker(worker{name: p.User, user: name, worker: wname})
	if len(c.workers) == 1 {
		c.srv.st.authorized.Add(1)
	}
	if c.srv.log.Enabled(c.group.ctx, slog.LevelDebug) { // c.logger allocates
		c.logger().Debug("stratum: authorized", "user", name, "worker", wname)
	}
	if err := c.replyTrue(req.ID); err != nil {
		return err
	}
	c.maybeReady()
	return nil
}

// maybeReady completes the handshake once the session is subscribed and
// authorized: it gets its difficulty and the current job. A failed write
// is recorded by write and ends the session at the reader's next read.
func (c *session) maybeReady() {
	if c.handshakeDone || !c.subscribed || len(c.workers) == 0 {
		return
	}
	c.handshakeDone = true
	lim := c.limits()
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
	c.askVersionLocked()
}

// vardiffConfig is the session's vardiff configuration under lim.
func (c *session) vardiffConfig(lim *Limits) VardiffConfig {
	return VardiffConfig{Target: lim.VardiffTarget, Min: max(lim.MinDiff, min(c.floor, lim.MaxDiff)), Max: lim.MaxDiff, Pow2: lim.Pow2}
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
	if c.stopping() || c.lastJob == e || (c.lastJob != nil && e.num < c.lastJob.num) {
		return false
	}
	clean := c.lastJob == nil || c.lastJob.gen != e.gen
	line := c.notifyLine(e, clean) // the pool's, or the session's solo coinbase (solo.go)
	if line == nil {
		return false
	}
	if clean {
		// Everything remembered is of an older tip: stale from now on.
		c.ring = [ringSize]sentJob{}
		c.seen = nil
	}
	c.sendDifficultyLocked()
	c.recordLocked(e, 0)
	c.lastJob = e
	return c.write(line, c.srv.cfg.WriteTimeout) == nil
}

// recordLocked remembers that e was sent under alias at the current
// difficulty.
func (c *session) recordLocked(e *jobEntry, alias uint32) {
	c.sentSeq++
	c.ring[c.ringPos] = sentJob{e: e, alias: alias, seq: c.sentSeq, diff: c.diff, target: c.target}
	c.ringPos = (c.ringPos + 1) % ringSize
}

// retargetLocked moves the session to difficulty d (clamped): it sends
// mining.set_difficulty and then the current job again under a new alias
// id, so that the new difficulty applies to work from that notify on while
// shares of earlier ids keep their old difficulty.
func (c *session) retargetLocked(d float64) {
	d = c.clampLocked(c.limits(), d)
	if d == c.diff {
		return
	}
	c.setDiffLocked(d)
	c.lowerInFlightLocked()
	c.sendDifficultyLocked()
	if e := c.lastJob; e != nil && !c.stopping() {
		if line := c.aliasLine(e, c.aliasNext+1); line != nil {
			c.aliasNext++
			c.recordLocked(e, c.aliasNext)
			_ = c.write(line, c.srv.cfg.WriteTimeout)
		}
	}
}

// tick lets the vardiff lower a quiet miner's difficulty.
func (c *session) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vd == nil || c.stopping() {
		return
	}
	if d, changed := c.vd.OnTick(now); changed {
		c.retargetLocked(d)
	}
}

func (c *session) handleConfigure(req wire.Request) error {
	p, err := wire.DecodeConfigure(req.Params)
	if err != nil {
		return c.invalidParams(req.ID, err)
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
	if err := c.reply(wire.EncodeConfigureResult(req.ID, res)); err != nil {
		return err
	}
	if p.HasMinimumDifficulty {
		lim := c.limits()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.floor = lim.clamp(p.MinimumDifficulty)
		if c.vd != nil {
			c.vd = NewVardiff(c.vardiffConfig(lim), c.clampLocked(lim, c.diff), c.srv.now())
			c.retargetLocked(c.vd.Difficulty())
		}
	}
	return nil
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
func (c *session) handleSuggestDifficulty(req wire.Request) error {
	d, err := wire.DecodeSuggestDifficulty(req.Params)
	if err != nil {
		return c.invalidParams(req.ID, err)
	}
	lim := c.limits()
	if err := c.replyTrue(req.ID); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d = c.clampLocked(lim, d)
	if c.vd == nil {
		c.suggested = d
		return nil
	}
	c.vd = NewVardiff(c.vardiffConfig(lim), d, c.srv.now())
	c.retargetLocked(c.vd.Difficulty())
	return nil
}

// write writes b with a deadline of timeout. A write that fails, on any
// goroutine, stops the session (stop: the reason is recorded, the
// connection closed, so the reader ends it) and returns the reason; once
// the session is stopping nothing is written and write returns the
// recorded reason. Most writes fit the socket's send buffer at once: those
// are made without setting a deadline (tryWrite), and only the rest of a
// line that did not fit waits, with the deadline.
func (c *session) write(b []byte, timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if p := c.cause.Load(); p != nil {
		return *p
	}
	if c.raw != nil {
		b = b[tryWrite(c.raw, b):]
		if len(b) == 0 {
			return nil
		}
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.conn.Write(b); err != nil {
		r := closeWriteError
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			r = closeWriteTimeout
		}
		end := endSession(r, err)
		c.stop(end)
		return end
	}
	return nil
}

// release undoes the session's counters; called once by removeSession.
func (c *session) release() {
	if c.subscribed {
		c.srv.st.subscribed.Add(-1)
	}
	if len(c.workers) > 0 {
		c.srv.st.authorized.Add(-1)
	}
	if c.solo != nil {
		c.srv.st.soloSessions.Add(-1)
	}
}
