package miner

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	btcwire "github.com/btcsuite/btcd/wire"
	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hardBits is a network target no test share meets (difficulty 1).
const hardBits = 0x1d00ffff

// witnessTx is a fake segwit transaction; its outpoint need not exist.
func witnessTx(seed byte) *btcwire.MsgTx {
	tx := btcwire.NewMsgTx(2)
	in := btcwire.NewTxIn(btcwire.NewOutPoint(&chainhash.Hash{seed, 1}, 0), nil, nil)
	in.Witness = btcwire.TxWitness{bytes.Repeat([]byte{seed}, 72), bytes.Repeat([]byte{2}, 33)}
	tx.AddTxIn(in)
	tx.AddTxOut(btcwire.NewTxOut(10_000, append([]byte{0x00, 0x14}, bytes.Repeat([]byte{seed}, 20)...)))
	return tx
}

// witnessTxs returns n fake segwit transactions.
func witnessTxs(n int) []*btcwire.MsgTx {
	txs := make([]*btcwire.MsgTx, n)
	for i := range txs {
		txs[i] = witnessTx(byte(i + 1))
	}
	return txs
}

// startPool starts the real server (stratumtest) on a regtest chain whose
// bits are bits and whose mempool holds txs segwit transactions, so that
// jobs have a merkle branch and a witness commitment.
func startPool(t *testing.T, cfg stratumtest.Config, bits uint32, txs int) *stratumtest.Pool {
	t.Helper()
	cfg.Bits, cfg.Mempool = bits, witnessTxs(txs)
	return stratumtest.Start(t, cfg)
}

// dial connects a Miner to addr and closes it at cleanup.
func dial(t *testing.T, ctx context.Context, addr string, opts Options) *Miner {
	t.Helper()
	m, err := Dial(ctx, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// recordConn keeps every byte the Miner writes: its requests as the pool
// receives them.
type recordConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// requests decodes the lines written so far with the server's codec.
func (c *recordConn) requests(t *testing.T) []wire.Request {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Request
	for line := range strings.Lines(c.out.String()) {
		req, err := wire.DecodeRequest([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			t.Fatalf("request %q: %v", line, err)
		}
		out = append(out, req)
	}
	return out
}

// methods returns the methods of requests, in order.
func methods(reqs []wire.Request) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Method
	}
	return out
}

// dialRecorded is dial through a recordConn.
func dialRecorded(t *testing.T, ctx context.Context, addr string, opts Options) (*Miner, *recordConn) {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordConn{Conn: c}
	m := New(rc, opts)
	t.Cleanup(func() { m.Close() })
	if err := m.Handshake(ctx); err != nil {
		t.Fatal(err)
	}
	return m, rc
}

// checkAgainstPool asserts that every result was accepted and that the
// server, which recorded them as its latest shares, hashed each as the
// miner did: the same hash difficulty (the server's own hash of the header
// it rebuilt from its job; for a block, the same hash), under the job id
// sent.
func checkAgainstPool(t *testing.T, p *stratumtest.Pool, results []Result) {
	t.Helper()
	recorded := p.Shares()
	if len(recorded) < len(results) {
		t.Fatalf("pool recorded %d shares, miner saw %d accepted", len(recorded), len(results))
	}
	recorded = recorded[len(recorded)-len(results):]
	for i, r := range results {
		if !r.Accepted {
			t.Fatalf("share %d rejected: %v", i, r.Error)
		}
		s := recorded[i]
		if base, _, _ := strings.Cut(r.JobID, "."); s.JobID != base {
			t.Fatalf("share %d: pool recorded job %q, miner submitted %q", i, s.JobID, r.JobID)
		}
		d := chain.HashDifficulty(r.Hash)
		if s.ShareDifficulty != d {
			t.Fatalf("share %d: miner hash %v (difficulty %g), the server's hash has difficulty %g", i, r.Hash, d, s.ShareDifficulty)
		}
		if d < r.Difficulty {
			t.Fatalf("share %d: hash difficulty %g below share difficulty %g", i, d, r.Difficulty)
		}
		if r.MeetsNetwork != (s.Block != nil) {
			t.Fatalf("share %d: MeetsNetwork %v disagrees with the pool", i, r.MeetsNetwork)
		}
		if s.Block != nil && s.Block.Hash != r.Hash {
			t.Fatalf("share %d: miner block %v, pool block %v", i, r.Hash, chainhash.Hash(s.Block.Hash))
		}
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// peer is the pool's end of one connection, for the pool behaviour the
// real server does not have (it never sends mining.set_extranonce or
// mining.set_version_mask): the test scripts it request by request, and it
// writes what the server's codec writes (stratum.EncodeXxx). It is not a
// second pool: it knows one job, built with chain.NewJob, and checks a
// submit with that job's Hash, the pool's own code.
type peer struct {
	t    *testing.T
	conn net.Conn
	lr   *lineReader
}

// dialPeer connects a Miner with opts to a loopback peer; shake scripts
// the peer's side of the handshake while the Miner's Handshake runs.
func dialPeer(t *testing.T, ctx context.Context, opts Options, shake func(*peer)) (*Miner, *peer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type dialed struct {
		m   *Miner
		err error
	}
	ch := make(chan dialed, 1)
	go func() {
		m, err := Dial(ctx, ln.Addr().String(), opts)
		ch <- dialed{m, err}
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &peer{t: t, conn: conn, lr: newLineReader(conn, DefaultMaxLineLength)}
	shake(p)
	d := <-ch
	if d.err != nil {
		t.Fatal(d.err)
	}
	t.Cleanup(func() { d.m.Close() })
	return d.m, p
}

// expect reads the Miner's next request, which must be method, and
// returns it.
func (p *peer) expect(method string) wire.Request {
	p.t.Helper()
	if err := p.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		p.t.Fatal(err)
	}
	line, err := p.lr.readLine()
	if err != nil {
		p.t.Fatalf("peer: waiting for %s: %v", method, err)
	}
	req, err := wire.DecodeRequest(line)
	if err != nil || req.Method != method {
		p.t.Fatalf("peer: got %q (%v), want %s", line, err, method)
	}
	return req
}

// send writes lines to the Miner.
func (p *peer) send(lines ...[]byte) {
	p.t.Helper()
	for _, l := range lines {
		if _, err := p.conn.Write(l); err != nil {
			p.t.Fatalf("peer: write: %v", err)
		}
	}
}

// sendTrue answers req with result true.
func (p *peer) sendTrue(req wire.Request) {
	p.t.Helper()
	line, err := wire.EncodeResult(req.ID, true)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(line)
}

// peerDifficulty is the share difficulty a peer sends.
const peerDifficulty = 1.0 / 65536

// peerJob builds a job with id from a template on hardBits with txs
// transactions, 4-byte extranonce1 and extranonce2.
func peerJob(t *testing.T, id string, txs int) *chain.Job {
	t.Helper()
	src := chaintest.New(&chaincfg.RegressionNetParams)
	defer src.Close()
	src.SetBits(hardBits)
	for _, tx := range witnessTxs(txs) {
		src.AddTx(tx)
	}
	tmpl, err := src.Template(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	job, err := chain.NewJob(id, tmpl, chain.CoinbaseConfig{
		PayoutScript:    append([]byte{0x00, 0x14}, bytes.Repeat([]byte{0x42}, 20)...),
		Tag:             "/miner test/",
		Extranonce1Size: 4,
		Extranonce2Size: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// notify is job's mining.notify line.
func notify(job *chain.Job, clean bool) []byte {
	return wire.EncodeNotify(job.ID, job.PrevHashStratum, hex.EncodeToString(job.Coinb1),
		hex.EncodeToString(job.Coinb2), job.MerkleBranchHex(), job.VersionHex, job.BitsHex, job.NTimeHex, clean)
}

// handshake answers mining.subscribe with en1 (4-byte extranonce2s) and
// mining.authorize with true, then sends peerDifficulty and job.
func (p *peer) handshake(en1 []byte, job *chain.Job) {
	p.t.Helper()
	req := p.expect(wire.MethodSubscribe)
	p.send(wire.EncodeSubscribeResult(req.ID, "1", en1, 4))
	p.sendTrue(p.expect(wire.MethodAuthorize))
	diff, err := wire.EncodeSetDifficulty(peerDifficulty)
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(diff, notify(job, true))
}

// mine has m find and submit n shares; the peer checks each with
// job.Hash under en1 and the version mask it gave the miner, answers true
// or the server's error, and the results are returned.
func (p *peer) mine(ctx context.Context, m *Miner, n int, job *chain.Job, en1 []byte, mask uint32) []Result {
	p.t.Helper()
	var results []Result
	for range n {
		s, err := m.FindShare(ctx)
		if err != nil {
			p.t.Fatal(err)
		}
		type out struct {
			r   Result
			err error
		}
		ch := make(chan out, 1)
		if err := m.SubmitAsync(s, func(r Result, err error) { ch <- out{r, err} }); err != nil {
			p.t.Fatal(err)
		}
		req := p.expect(wire.MethodSubmit)
		sp, err := wire.DecodeSubmit(req.Params)
		if err != nil {
			p.t.Fatal(err)
		}
		version := uint32(job.Template.Version)
		if sp.HasVersionBits {
			version = RolledVersion(version, mask, sp.VersionBits)
		}
		h, _ := job.Hash(en1, sp.Extranonce2, sp.NTime, sp.Nonce, int32(version))
		target := chain.NewTarget(chain.DifficultyToTarget(peerDifficulty))
		switch {
		case sp.JobID != job.ID:
			p.send(wire.EncodeError(req.ID, wire.CodeJobNotFound, "job not found"))
		case sp.VersionBits&^mask != 0:
			p.send(wire.EncodeError(req.ID, wire.CodeOther, "invalid version bits"))
		case !target.Meets(&h):
			p.send(wire.EncodeError(req.ID, wire.CodeLowDifficulty, "low difficulty share"))
		default:
			p.sendTrue(req)
		}
		o := <-ch
		if o.err != nil {
			p.t.Fatal(o.err)
		}
		if o.r.Accepted && o.r.Hash != h {
			p.t.Fatalf("miner hash %v, chain.Job.Hash %v", o.r.Hash, h)
		}
		results = append(results, o.r)
	}
	return results
}
