package miner

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
)

// Stratum error codes the FakePool answers with.
const (
	CodeOther         = 20
	CodeJobNotFound   = 21
	CodeDuplicate     = 22
	CodeLowDifficulty = 23
	CodeUnauthorized  = 24
	CodeNotSubscribed = 25
)

// PoolConfig configures a FakePool.
type PoolConfig struct {
	// Source supplies the templates jobs are built from. Required.
	Source *chaintest.Source
	// Coinbase is the coinbase layout; when its PayoutScript is empty a
	// P2WPKH script, tag "/miner/" and 4+4 extranonce bytes are used.
	Coinbase chain.CoinbaseConfig
	// Difficulty is the share difficulty sent after authorize; 1/65536
	// when zero.
	Difficulty float64
	// VersionMask is the pool's version-rolling mask; 0x1fffe000 when zero.
	VersionMask uint32
	// Authorize decides mining.authorize; every user is accepted when nil.
	Authorize func(user, password string) bool
	// Now is the clock of the ntime window; time.Now when nil.
	Now func() time.Time
	// Logger receives debug logs; none when nil.
	Logger *slog.Logger
}

// PoolShare is a share the FakePool accepted.
type PoolShare struct {
	Session     int
	Worker      string
	JobID       string
	Extranonce1 []byte
	Extranonce2 []byte
	NTime       uint32
	Nonce       uint32
	Version     int32
	// Hash is the block hash chain.Job.Hash computed.
	Hash chainhash.Hash
	// Difficulty is the share difficulty the share was checked against.
	Difficulty float64
	// Block reports whether Hash meets the network target.
	Block bool
}

// PoolRequest is one request the FakePool received.
type PoolRequest struct {
	Session int
	Method  string
	Params  json.RawMessage
}

// FakePool is a small scripted Stratum v1 pool over real TCP for testing
// miners: it builds jobs with chain.NewJob from a chaintest.Source and
// validates every share with chain.Job.Hash, so a share it accepts is one
// the pool's own job code agrees with. It listens on 127.0.0.1 from
// NewFakePool until Close; one goroutine accepts and one per connection
// reads. All methods are safe for concurrent use.
type FakePool struct {
	cfg PoolConfig
	ln  net.Listener
	wg  sync.WaitGroup

	mu       sync.Mutex
	sessions map[*poolSession]struct{}
	jobs     map[string]*chain.Job // valid jobs: since the last clean one
	current  *chain.Job
	nextJob  int
	nextSess int
	nextEn1  uint64
	diff     float64
	seen     map[string]struct{}
	accepted []PoolShare
	rejected map[int]int
	requests []PoolRequest
	closed   bool
}

// poolSession is one miner connection; fields other than conn are guarded
// by FakePool.mu. Lines are queued under FakePool.mu (so their order is the
// order of events) and written by the session's writer goroutine.
type poolSession struct {
	id   int
	conn net.Conn
	out  chan []byte // lines for the writer goroutine; closed when dead
	dead bool

	subscribed bool
	en1        []byte
	authorized map[string]bool
	requested  uint32 // version-rolling mask the miner asked for
	mask       uint32 // negotiated; 0 when off
	enSub      bool
	diff       float64
	sent       map[string]sentJob // jobs sent since the last clean one
}

// sentJob is what a session was told when a job was sent to it.
type sentJob struct {
	diff float64
	en1  []byte
}

// NewFakePool builds the first job from cfg.Source and starts listening on
// a loopback port.
func NewFakePool(cfg PoolConfig) (*FakePool, error) {
	if cfg.Source == nil {
		return nil, errors.New("miner: PoolConfig.Source is required")
	}
	if len(cfg.Coinbase.PayoutScript) == 0 {
		cfg.Coinbase = chain.CoinbaseConfig{
			PayoutScript:    append([]byte{0x00, 0x14}, bytes.Repeat([]byte{0x42}, 20)...),
			Tag:             "/miner/",
			Extranonce1Size: 4,
			Extranonce2Size: 4,
		}
	}
	if cfg.Difficulty <= 0 {
		cfg.Difficulty = 1.0 / 65536
	}
	if cfg.VersionMask == 0 {
		cfg.VersionMask = DefaultVersionRollingMask
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &FakePool{
		cfg:      cfg,
		sessions: make(map[*poolSession]struct{}),
		jobs:     make(map[string]*chain.Job),
		diff:     cfg.Difficulty,
		seen:     make(map[string]struct{}),
		rejected: make(map[int]int),
	}
	if _, err := p.NewJob(context.Background(), true); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("miner: listen: %w", err)
	}
	p.ln = ln
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the pool's host:port.
func (p *FakePool) Addr() string { return p.ln.Addr().String() }

// Close stops listening, closes every connection and waits for the pool's
// goroutines. It is idempotent.
func (p *FakePool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	for s := range p.sessions {
		s.conn.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *FakePool) acceptLoop() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			conn.Close()
			return
		}
		p.nextSess++
		s := &poolSession{
			id:         p.nextSess,
			conn:       conn,
			authorized: make(map[string]bool),
			diff:       p.diff,
			sent:       make(map[string]sentJob),
			out:        make(chan []byte, 256),
		}
		p.sessions[s] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.serve(s)
		go p.writeLoop(s)
	}
}

// NewJob builds a job from a fresh template and sends it to every
// authorized session. clean=true makes every older job stale (send it after
// Source.Advance for a new tip).
func (p *FakePool) NewJob(ctx context.Context, clean bool) (*chain.Job, error) {
	t, err := p.cfg.Source.Template(ctx)
	if err != nil {
		return nil, fmt.Errorf("miner: template: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextJob++
	job, err := chain.NewJob(strconv.FormatInt(int64(p.nextJob), 16), t, p.cfg.Coinbase)
	if err != nil {
		return nil, fmt.Errorf("miner: job: %w", err)
	}
	if clean {
		clear(p.jobs)
	}
	p.jobs[job.ID] = job
	p.current = job
	line := notifyLine(job, clean)
	for s := range p.sessions {
		if len(s.authorized) > 0 {
			p.recordSentLocked(s, job, clean)
			p.sendLocked(s, line)
		}
	}
	return job, nil
}

// notifyLine encodes mining.notify for job.
func notifyLine(job *chain.Job, clean bool) []byte {
	params := []any{job.ID, job.PrevHashStratum, hex.EncodeToString(job.Coinb1),
		hex.EncodeToString(job.Coinb2), job.MerkleBranchHex(), job.VersionHex, job.BitsHex,
		job.NTimeHex, clean}
	return notification("mining.notify", params)
}

func notification(method string, params []any) []byte {
	b, _ := json.Marshal(struct {
		ID     any    `json:"id"`
		Method string `json:"method"`
		Params []any  `json:"params"`
	}{nil, method, params}) // only strings, numbers and bools: cannot fail
	return append(b, '\n')
}

// recordSentLocked notes that job goes to s with its current difficulty and
// extranonce1. p.mu is held.
func (p *FakePool) recordSentLocked(s *poolSession, job *chain.Job, clean bool) {
	if clean {
		clear(s.sent)
	}
	s.sent[job.ID] = sentJob{diff: s.diff, en1: s.en1}
}

// Job returns the job with the given id, or nil.
func (p *FakePool) Job(id string) *chain.Job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jobs[id]
}

// SetDifficulty sets every session's share difficulty and sends
// mining.set_difficulty; it applies to jobs sent afterwards.
func (p *FakePool) SetDifficulty(d float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.diff = d
	line := notification("mining.set_difficulty", []any{d})
	for s := range p.sessions {
		s.diff = d
		if len(s.authorized) > 0 {
			p.sendLocked(s, line)
		}
	}
}

// SetVersionMask changes the pool mask and sends mining.set_version_mask
// to the sessions that negotiated version rolling.
func (p *FakePool) SetVersionMask(mask uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.VersionMask = mask
	for s := range p.sessions {
		if s.mask != 0 {
			s.mask = mask & s.requested
			p.sendLocked(s, notification("mining.set_version_mask", []any{fmt.Sprintf("%08x", s.mask)}))
		}
	}
}

// RotateExtranonce gives every session that sent
// mining.extranonce.subscribe a new extranonce1 (mining.set_extranonce)
// and then resends the current job with clean_jobs=true.
func (p *FakePool) RotateExtranonce() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.sessions {
		if !s.enSub {
			continue
		}
		s.en1 = p.newExtranonce1Locked()
		p.recordSentLocked(s, p.current, true)
		lines := append(notification("mining.set_extranonce",
			[]any{hex.EncodeToString(s.en1), p.cfg.Coinbase.Extranonce2Size}), notifyLine(p.current, true)...)
		p.sendLocked(s, lines)
	}
}

// Reconnect sends client.reconnect to every session: [] when host is
// empty, else [host, "port", wait].
func (p *FakePool) Reconnect(host string, port, waitSeconds int) {
	params := []any{}
	if host != "" {
		params = []any{host, strconv.Itoa(port), waitSeconds}
	}
	line := notification("client.reconnect", params)
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.sessions {
		p.sendLocked(s, line)
	}
}

// Accepted returns the accepted shares, oldest first.
func (p *FakePool) Accepted() []PoolShare {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.accepted)
}

// Rejected returns the rejected submit count by error code.
func (p *FakePool) Rejected() map[int]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]int, len(p.rejected))
	for k, v := range p.rejected {
		out[k] = v
	}
	return out
}

// Requests returns every request received, in order.
func (p *FakePool) Requests() []PoolRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// Sessions returns the number of open connections.
func (p *FakePool) Sessions() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

func (p *FakePool) newExtranonce1Locked() []byte {
	p.nextEn1++
	en1 := make([]byte, p.cfg.Coinbase.Extranonce1Size)
	putCounter(en1, p.nextEn1)
	return en1
}

// sendLocked queues line for s; a session too slow to keep up is closed.
// p.mu is held.
func (p *FakePool) sendLocked(s *poolSession, line []byte) {
	if s.dead {
		return
	}
	select {
	case s.out <- line:
	default:
		s.conn.Close()
	}
}

// writeLoop writes s's queued lines under a write deadline until the
// session ends; a failed write closes the connection.
func (p *FakePool) writeLoop(s *poolSession) {
	defer p.wg.Done()
	for line := range s.out {
		_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := s.conn.Write(line); err != nil {
			s.conn.Close()
		}
	}
}

// serve reads one session's requests.
func (p *FakePool) serve(s *poolSession) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.sessions, s)
		s.dead = true
		close(s.out)
		p.mu.Unlock()
		s.conn.Close()
	}()
	lr := newLineReader(s.conn, 16<<10)
	for {
		line, err := lr.readLine()
		if err != nil {
			return
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(line, &req); err != nil || req.Method == "" {
			p.cfg.Logger.Debug("fake pool: bad line", "session", s.id, "err", err)
			return
		}
		if len(req.ID) == 0 {
			req.ID = json.RawMessage("null")
		}
		var params []json.RawMessage
		if len(req.Params) > 0 && string(req.Params) != "null" {
			if err := json.Unmarshal(req.Params, &params); err != nil {
				p.cfg.Logger.Debug("fake pool: params not an array", "session", s.id)
				return
			}
		}
		p.mu.Lock()
		p.requests = append(p.requests, PoolRequest{Session: s.id, Method: req.Method, Params: slices.Clone(req.Params)})
		p.sendLocked(s, p.handleLocked(s, req.Method, req.ID, params))
		p.mu.Unlock()
	}
}

// replyLine encodes a reply: result when code is 0, else the error.
func replyLine(id json.RawMessage, result any, code int, msg string) []byte {
	var errMember any
	if code != 0 {
		errMember = []any{code, msg, nil}
		result = nil
	}
	b, err := json.Marshal(struct {
		ID     json.RawMessage `json:"id"`
		Result any             `json:"result"`
		Error  any             `json:"error"`
	}{id, result, errMember})
	if err != nil {
		b, _ = json.Marshal(struct {
			ID     any `json:"id"`
			Result any `json:"result"`
			Error  any `json:"error"`
		}{nil, nil, []any{CodeOther, "internal", nil}})
	}
	return append(b, '\n')
}

// handleLocked answers one request; the returned bytes are the reply plus
// any notifications that follow it. p.mu is held.
func (p *FakePool) handleLocked(s *poolSession, method string, id json.RawMessage, params []json.RawMessage) []byte {
	switch method {
	case "mining.configure":
		return p.configureLocked(s, id, params)
	case "mining.subscribe":
		s.subscribed = true
		s.en1 = p.newExtranonce1Locked()
		sub := strconv.Itoa(s.id)
		return replyLine(id, []any{[][]string{{"mining.set_difficulty", sub}, {"mining.notify", sub}},
			hex.EncodeToString(s.en1), p.cfg.Coinbase.Extranonce2Size}, 0, "")
	case "mining.suggest_difficulty":
		var d float64
		if len(params) < 1 || json.Unmarshal(params[0], &d) != nil || !(d > 0) || math.IsInf(d, 0) {
			return replyLine(id, nil, CodeOther, "bad difficulty")
		}
		s.diff = d
		return replyLine(id, true, 0, "")
	case "mining.extranonce.subscribe":
		s.enSub = true
		return replyLine(id, true, 0, "")
	case "mining.authorize":
		var user, pass string
		if len(params) < 1 || json.Unmarshal(params[0], &user) != nil {
			return replyLine(id, nil, CodeOther, "bad user")
		}
		if len(params) > 1 {
			_ = json.Unmarshal(params[1], &pass) // null or absent password is empty
		}
		if !s.subscribed {
			return replyLine(id, nil, CodeNotSubscribed, "Not subscribed")
		}
		if p.cfg.Authorize != nil && !p.cfg.Authorize(user, pass) {
			return replyLine(id, false, CodeUnauthorized, "Unauthorized worker")
		}
		first := len(s.authorized) == 0
		s.authorized[user] = true
		out := replyLine(id, true, 0, "")
		if first {
			out = append(out, notification("mining.set_difficulty", []any{s.diff})...)
			p.recordSentLocked(s, p.current, true)
			out = append(out, notifyLine(p.current, true)...)
		}
		return out
	case "mining.submit":
		code, msg := p.submitLocked(s, params)
		if code != 0 {
			p.rejected[code]++
			return replyLine(id, nil, code, msg)
		}
		return replyLine(id, true, 0, "")
	}
	return replyLine(id, nil, CodeOther, "unknown method")
}

// configureLocked answers BIP 310 version-rolling.
func (p *FakePool) configureLocked(s *poolSession, id json.RawMessage, params []json.RawMessage) []byte {
	var exts []string
	if len(params) < 1 || json.Unmarshal(params[0], &exts) != nil {
		return replyLine(id, nil, CodeOther, "bad extensions")
	}
	res := map[string]any{}
	if slices.Contains(exts, "version-rolling") {
		requested := uint32(0xffffffff)
		if len(params) > 1 {
			var kv map[string]json.RawMessage
			if json.Unmarshal(params[1], &kv) == nil {
				if v, ok := kv["version-rolling.mask"]; ok {
					var hexMask string
					if json.Unmarshal(v, &hexMask) != nil {
						return replyLine(id, nil, CodeOther, "bad mask")
					}
					m, err := strconv.ParseUint(hexMask, 16, 32)
					if err != nil {
						return replyLine(id, nil, CodeOther, "bad mask")
					}
					requested = uint32(m)
				}
			}
		}
		s.requested = requested
		s.mask = requested & p.cfg.VersionMask
		res["version-rolling"] = s.mask != 0
		if s.mask != 0 {
			res["version-rolling.mask"] = fmt.Sprintf("%08x", s.mask)
		}
	}
	return replyLine(id, res, 0, "")
}

// submitLocked checks a share; code 0 accepts it.
func (p *FakePool) submitLocked(s *poolSession, params []json.RawMessage) (int, string) {
	if !s.subscribed {
		return CodeNotSubscribed, "Not subscribed"
	}
	if len(params) < 5 {
		return CodeOther, "want 5 or 6 params"
	}
	var f [6]string
	for i := 0; i < len(params) && i < 6; i++ {
		if i == 5 && string(params[5]) == "null" {
			continue
		}
		if json.Unmarshal(params[i], &f[i]) != nil {
			return CodeOther, "params must be strings"
		}
	}
	worker, jobID := f[0], f[1]
	if !s.authorized[worker] {
		return CodeUnauthorized, "Unauthorized worker"
	}
	job, ok := p.jobs[jobID]
	st, sent := s.sent[jobID]
	if !ok || !sent {
		return CodeJobNotFound, "Job not found"
	}
	en2, err := hex.DecodeString(f[2])
	if err != nil || len(en2) != job.Extranonce2Size {
		return CodeOther, "Invalid extranonce2 size"
	}
	ntime, err1 := parseHex32(f[3])
	nonce, err2 := parseHex32(f[4])
	if err1 != nil || err2 != nil {
		return CodeOther, "bad ntime or nonce"
	}
	if t := time.Unix(int64(ntime), 0); t.Before(job.Template.MinTime) || t.After(p.cfg.Now().Add(2*time.Hour)) {
		return CodeOther, "ntime out of range"
	}
	version := uint32(job.Template.Version)
	if f[5] != "" {
		vb, err := parseHex32(f[5])
		if err != nil {
			return CodeOther, "bad version bits"
		}
		if vb&^s.mask != 0 {
			return CodeOther, "version bits outside the mask"
		}
		version = RolledVersion(version, s.mask, vb)
	}
	key := fmt.Sprintf("%x/%x/%08x/%08x/%08x", st.en1, en2, ntime, nonce, version)
	if _, dup := p.seen[key]; dup {
		return CodeDuplicate, "Duplicate share"
	}
	hash, _ := job.Hash(st.en1, en2, ntime, nonce, int32(version))
	target := chain.NewTarget(chain.DifficultyToTarget(st.diff))
	if !target.Meets(&hash) {
		return CodeLowDifficulty, "Low difficulty share"
	}
	p.seen[key] = struct{}{}
	p.accepted = append(p.accepted, PoolShare{
		Session: s.id, Worker: worker, JobID: jobID, Extranonce1: st.en1, Extranonce2: en2,
		NTime: ntime, Nonce: nonce, Version: int32(version), Hash: hash, Difficulty: st.diff,
		Block: job.Target.Meets(&hash),
	})
	return 0, ""
}

// parseHex32 parses exactly 8 hex digits as big-endian.
func parseHex32(s string) (uint32, error) {
	if len(s) != 8 {
		return 0, fmt.Errorf("want 8 hex digits, got %d", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}
