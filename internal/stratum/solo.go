package stratum

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/btcsuite/btcd/txscript"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/stratum/wire"
	"github.com/stratumd/stratumd/internal/username"
)

// SOLO mode. A miner mines solo when its user name is
// "solo:<address>[.worker]" (username.SoloPrefix), on any listener and in
// either auth mode, or when it connects to a listener served with
// ListenerConfig.Solo, where "<address>[.worker]" is enough. The address
// must be a payable address of Config.Network (chain.PayoutAddress); no
// password is checked and no account is created: the coinbase pays the
// address itself, so the pool owes the miner nothing.
//
// The coinbase of a solo session's jobs pays its address the coinbase
// value less Config.SoloFeeBPS (chain.SoloSplit: the fee is rounded down,
// the remainder is the miner's), and the fee to Config.PayoutScript.
// Everything else about a job (template, merkle branch, header fields) is
// built once per template for every session; a solo address adds only its
// coinbase and notify lines, built the first time a session of that
// address needs the job (soloJobs), and shared by every session of that
// address. Shares are checked against the session's own coinbase; a block
// takes the same path as a pool block (SubmitBlock, spool with its bytes,
// resubmitter, recorder).
//
// Its shares and blocks are stored under the user name
// "solo:<canonical address>": the store marks such blocks mode 'solo',
// payout never credits them, and PPLNS windows never count such shares.
//
// One connection has one coinbase: every worker a session authorizes must
// have the same payout (pool, or the same solo address) as its first.

// Authorization errors of solo names (answered with code 24).
var (
	// ErrSoloAddress: a solo user name whose address is not a payable
	// address of the server's network.
	ErrSoloAddress = errors.New("stratum: solo user is not an address of this network")
	// ErrOtherPayout: a worker whose payout (pool or solo address) differs
	// from the one the connection's first worker set.
	ErrOtherPayout = errors.New("stratum: one payout per connection")
)

// soloMiner is where a solo session's coinbase pays.
type soloMiner struct {
	name   string // the stored user name: username.SoloPrefix + canonical address
	script []byte // the address's output script
	key    string // string(script): the soloJobs key
}

// soloJob is one job's coinbase for one solo address, built once; its
// notify lines are built when a session first needs each.
type soloJob struct {
	once     sync.Once
	job      *chain.Job // nil when it could not be built
	lineOnce [2]sync.Once
	line     [2][]byte // clean_jobs=false, clean_jobs=true
}

// soloJobs caches a job entry's per-address solo jobs; the zero value is
// ready. Entries are built lazily, outside the lock, once per address.
type soloJobs struct {
	mu sync.Mutex
	m  map[string]*soloJob
}

// coinb2Offset returns where the coinb2 parameter's hex starts in a notify
// line built with coinb2Hex, or -1.
func coinb2Offset(line []byte, coinb2Hex string) int {
	i := bytes.Index(line, []byte(`","`+coinb2Hex+`",[`))
	if i < 0 {
		return -1
	}
	return i + 3
}

// soloJob returns e's job for m, building it (once per job and address)
// on first use; nil when it cannot be built (logged).
func (s *Server) soloJob(e *jobEntry, m *soloMiner) *soloJob {
	c := &e.solo
	c.mu.Lock()
	sj := c.m[m.key]
	if sj == nil {
		if c.m == nil {
			c.m = make(map[string]*soloJob)
		}
		sj = &soloJob{}
		c.m[m.key] = sj
	}
	c.mu.Unlock()
	sj.once.Do(func() {
		j, err := chain.NewSoloJob(e.job, s.cbCfg, chain.SoloPayout{
			MinerScript: m.script, FeeScript: s.cbCfg.PayoutScript, FeeBPS: s.cfg.SoloFeeBPS})
		if err != nil {
			s.log.Error("stratum: solo coinbase not built", "user", m.name, "job", e.job.ID, "err", err)
			return
		}
		s.st.soloCoinbases.Add(1)
		sj.job = j
	})
	if sj.job == nil {
		return nil
	}
	return sj
}

// notifyLine returns sj's notify line of e (clean_jobs as clean), built
// on first use: e's line with the coinb2 parameter replaced (the rest of
// a notify is the same for every coinbase), or encoded whole when e's
// line has no coinb2 where expected.
func (sj *soloJob) notifyLine(e *jobEntry, clean bool) []byte {
	k := 0
	if clean {
		k = 1
	}
	sj.lineOnce[k].Do(func() {
		base := e.notify
		if clean {
			base = e.notifyClean
		}
		j, at, n := sj.job, e.coinb2At, 2*len(e.job.Coinb2)
		if at < 0 || at+n > len(base) || base[at+n] != '"' {
			sj.line[k] = wire.EncodeNotify(j.ID, j.PrevHashStratum, hex.EncodeToString(j.Coinb1), hex.EncodeToString(j.Coinb2),
				e.branch, j.VersionHex, j.BitsHex, j.NTimeHex, clean)
			return
		}
		line := make([]byte, 0, len(base)-n+2*len(j.Coinb2))
		line = append(line, base[:at]...)
		line = hex.AppendEncode(line, j.Coinb2)
		sj.line[k] = append(line, base[at+n:]...)
	})
	return sj.line[k]
}

// authorizeSolo checks a solo user (the part before the first '.', with
// or without username.SoloPrefix) and returns its miner.
func (s *Server) authorizeSolo(user string) (*soloMiner, error) {
	text := strings.TrimPrefix(user, username.SoloPrefix)
	addr, err := chain.PayoutAddress(text, s.cfg.Network)
	if err != nil {
		s.st.authFailures.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrSoloAddress, err)
	}
	script, err := txscript.PayToAddrScript(addr)
	if err != nil {
		s.st.authFailures.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrSoloAddress, err)
	}
	name := username.SoloPrefix + addr.EncodeAddress()
	if err := username.Valid(name); err != nil {
		s.st.authFailures.Add(1)
		return nil, fmt.Errorf("%w: %w", ErrSoloAddress, err)
	}
	return &soloMiner{name: name, script: script, key: string(script)}, nil
}

// authorizeUser checks the user part of a mining.authorize for this
// session: a solo name (or any name on a solo listener) as a solo miner,
// anything else under the server's auth mode. It returns the stored user
// name and, for a solo user, its miner. A payout other than the one of
// the session's first worker fails with ErrOtherPayout.
func (c *session) authorizeUser(user, password string) (string, *soloMiner, error) {
	var name string
	var m *soloMiner
	var err error
	if c.group.solo || username.IsSolo(user) {
		m, err = c.srv.authorizeSolo(user)
		if err == nil {
			name = m.name
		}
	} else {
		name, err = c.srv.authorize(c.group.ctx, c.ip, user, password)
	}
	if err != nil {
		return name, nil, err
	}
	if len(c.workers) > 0 {
		if (c.solo == nil) != (m == nil) || (m != nil && m.key != c.solo.key) {
			return name, nil, ErrOtherPayout
		}
		return name, c.solo, nil
	}
	return name, m, nil
}

// setSolo records the session's solo miner on its first authorized
// worker; the job fan-out reads it only once the session is ready.
func (c *session) setSolo(m *soloMiner) {
	if m == nil || c.solo != nil {
		return
	}
	c.solo = m
	c.srv.st.soloSessions.Add(1)
}

// notifyLine is e's notify line for this session: the pool's, or the one
// of its solo address; nil when the solo job could not be built.
func (c *session) notifyLine(e *jobEntry, clean bool) []byte {
	if c.solo == nil {
		if clean {
			return e.notifyClean
		}
		return e.notify
	}
	sj := c.srv.soloJob(e, c.solo)
	if sj == nil {
		return nil
	}
	return sj.notifyLine(e, clean)
}

// aliasLine is e's notify line for this session under job id "<id>.<n>"
// with clean_jobs=false: how a retargeted session gets the current job
// again. nil when the solo job could not be built.
func (c *session) aliasLine(e *jobEntry, n uint32) []byte {
	if c.solo == nil {
		return e.aliasLine(n)
	}
	sj := c.srv.soloJob(e, c.solo)
	if sj == nil {
		return nil
	}
	return wire.NotifyAlias(sj.notifyLine(e, false), e.job.ID, "."+strconv.FormatUint(uint64(n), 10))
}

// chainJob is the job this session's shares of e are checked against: the
// pool's, or the one paying its solo address (nil when it could not be
// built: the session was never sent e then).
func (c *session) chainJob(e *jobEntry) *chain.Job {
	if c.solo == nil {
		return e.job
	}
	if sj := c.srv.soloJob(e, c.solo); sj != nil {
		return sj.job
	}
	return nil
}
