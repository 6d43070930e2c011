package stratum

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	btcwire "github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// scriptOf is the output script of a regtest address.
func scriptOf(t testing.TB, addr string) []byte {
	t.Helper()
	a, err := btcutil.DecodeAddress(addr, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// soloHandshake subscribes, authorizes user and returns the first
// mining.notify's coinb1 and coinb2 (hex).
func (c *client) soloHandshake(user, password string) (coinb1, coinb2 string) {
	c.t.Helper()
	m := c.handshakeAs(user, password)
	json.Unmarshal(m.Params[2], &coinb1)
	json.Unmarshal(m.Params[3], &coinb2)
	return coinb1, coinb2
}

// mineJob finds a share of j at difficulty diff for c; wantBlock as in
// harness.mine. With avoid set, the share must not meet diff under avoid
// (another coinbase of the same job).
func mineJob(t *testing.T, c *client, j, avoid *chain.Job, diff float64, wantBlock bool) solution {
	t.Helper()
	share := chain.NewTarget(chain.DifficultyToTarget(diff))
	en2 := make([]byte, c.en2n)
	ntime := uint32(j.Template.CurTime.Unix())
	version := int32(j.Template.Version)
	for nonce := uint32(0); nonce < 1<<26; nonce++ {
		hash, _ := j.Hash(c.en1, en2, ntime, nonce, version)
		if !share.Meets(&hash) || j.Target.Meets(&hash) != wantBlock {
			continue
		}
		if avoid != nil {
			if other, _ := avoid.Hash(c.en1, en2, ntime, nonce, version); share.Meets(&other) {
				continue
			}
		}
		return solution{en2: en2, ntime: ntime, nonce: nonce, version: uint32(version), block: wantBlock}
	}
	t.Fatal("no solution found")
	return solution{}
}

// TestSoloSessions: in password mode, "solo:<address>" users mine without an
// account; their notify carries a coinbase paying their address, built
// once per job and address and shared by the sessions of that address;
// shares are checked against that coinbase (a share of the pool's
// coinbase is low difficulty) and stored under "solo:<address>"; a
// connection keeps one payout; bad solo addresses are refused.
func TestSoloSessions(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits, config: func(c *Config) {
		c.Auth = AuthPassword
		c.SoloFeeBPS = 150
	}})
	h.users.passwords["alice"] = "pw"
	e := h.srv.currentJob()
	addrA, addrB := regtestAddress(t, 0xa1), regtestAddress(t, 0xb2)
	scriptA := hex.EncodeToString(scriptOf(t, addrA))

	cA1 := h.dial()
	a1b1, a1b2 := cA1.soloHandshake("solo:"+addrA+".rig1", "")
	cA2 := h.dial()
	a2b1, a2b2 := cA2.soloHandshake("solo:"+strings.ToUpper(addrA)+".rig2", "anything")
	if a1b1 != a2b1 || a1b2 != a2b2 || !strings.Contains(a1b2, scriptA) {
		t.Fatalf("sessions of one solo address got different coinbases, or not paying it: %s / %s", a1b2, a2b2)
	}
	if st := h.srv.Stats(); st.SoloCoinbases != 1 || st.SoloSessions != 2 {
		t.Fatalf("after two sessions of one address: %d solo coinbases built, %d solo sessions", st.SoloCoinbases, st.SoloSessions)
	}
	cB := h.dial()
	_, bb2 := cB.soloHandshake("solo:"+addrB, "")
	cP := h.dial()
	_, pb2 := cP.soloHandshake("alice.rig", "pw")
	if pb2 != hex.EncodeToString(e.job.Coinb2) || bb2 == a1b2 || bb2 == pb2 || a1b2 == pb2 {
		t.Fatal("pool and solo sessions do not each get their own coinbase")
	}
	if st := h.srv.Stats(); st.SoloCoinbases != 2 || st.SoloSessions != 3 {
		t.Fatalf("after a second address: %d solo coinbases built, %d solo sessions", st.SoloCoinbases, st.SoloSessions)
	}

	// One payout per connection; bad addresses are refused.
	for _, tc := range []struct {
		c    *client
		user string
	}{
		{cA1, "alice.x"},
		{cA1, "solo:" + addrB + ".x"},
		{cP, "solo:" + addrA},
		{h.dial(), "solo:notanaddress"},
		{h.dial(), "solo:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}, // mainnet
		{h.dial(), "solo:"},
	} {
		if r := tc.c.call(wire.MethodAuthorize, tc.user, "pw"); r.errCode() != wire.CodeUnauthorized {
			t.Errorf("authorize %s: %s, want error 24", tc.user, r.raw)
		}
	}
	if r := cA1.call(wire.MethodAuthorize, "solo:"+addrA+".rig9", ""); string(r.Result) != "true" {
		t.Errorf("a second worker of the same solo address: %s", r.raw)
	}

	// Shares are checked against the session's own coinbase.
	m, err := h.srv.authorizeSolo("solo:" + addrA)
	if err != nil {
		t.Fatal(err)
	}
	soloJob := h.srv.soloJob(e, m).job
	if soloJob == nil || hex.EncodeToString(soloJob.Coinb2) != a1b2 {
		t.Fatal("the cached solo job is not the one sent")
	}
	// The notify lines spliced from the pool's are what encoding them whole gives.
	for _, clean := range []bool{false, true} {
		j := soloJob
		want := wire.EncodeNotify(j.ID, j.PrevHashStratum, hex.EncodeToString(j.Coinb1), hex.EncodeToString(j.Coinb2),
			j.MerkleBranchHex(), j.VersionHex, j.BitsHex, j.NTimeHex, clean)
		if got := h.srv.soloJob(e, m).notifyLine(e, clean); !bytes.Equal(got, want) || e.coinb2At < 0 {
			t.Fatalf("clean=%v: spliced line %s, want %s", clean, got, want)
		}
	}
	s := mineJob(t, cA1, soloJob, e.job, cA1.diff, false)
	if r := cA1.call(wire.MethodSubmit, submitArgs("solo:"+addrA+".rig1", e.job.ID, s.en2, s.ntime, s.nonce)...); string(r.Result) != "true" {
		t.Fatalf("solo share: %s", r.raw)
	}
	s = mineJob(t, cA1, e.job, soloJob, cA1.diff, false) // good only for the pool's coinbase
	if r := cA1.call(wire.MethodSubmit, submitArgs("solo:"+addrA+".rig1", e.job.ID, s.en2, s.ntime, s.nonce)...); r.errCode() != wire.CodeLowDifficulty {
		t.Fatalf("a share of the pool's coinbase from a solo session: %s, want error 23", r.raw)
	}
	shares := h.shares.list()
	if len(shares) != 1 || shares[0].Username != "solo:"+addrA || shares[0].Worker != "rig1" {
		t.Fatalf("stored shares %+v", shares)
	}
	if h.users.verifyCount() != 1 {
		t.Fatalf("%d password checks; solo users need none (alice needed one)", h.users.verifyCount())
	}
}

// TestSoloBlock: a solo miner's block pays its address the reward less the
// fee (rounded down) and the fee to the pool; it is handed to the source,
// spooled with its bytes under "solo:<address>" and followed by the
// resubmitter like a pool block.
func TestSoloBlock(t *testing.T) {
	const feeBPS = 333
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.SoloFeeBPS = feeBPS }})
	e := h.srv.currentJob()
	addr := regtestAddress(t, 0x5c)
	c := h.dial()
	c.soloHandshake("solo:"+addr+".rig", "")
	m, err := h.srv.authorizeSolo("solo:" + addr)
	if err != nil {
		t.Fatal(err)
	}
	j := h.srv.soloJob(e, m).job
	s := mineJob(t, c, j, nil, c.diff, true)
	if r := c.call(wire.MethodSubmit, submitArgs("solo:"+addr+".rig", e.job.ID, s.en2, s.ntime, s.nonce)...); string(r.Result) != "true" {
		t.Fatalf("block share: %s", r.raw)
	}
	sub := h.src.Submitted()
	if len(sub) != 1 {
		t.Fatalf("%d blocks submitted", len(sub))
	}
	h.stop()
	cb := sub[0].Transactions[0]
	miner, fee := chain.SoloSplit(e.job.Template.CoinbaseValue, feeBPS)
	if fee == 0 || len(cb.TxOut) < 2 ||
		!bytes.Equal(cb.TxOut[0].PkScript, scriptOf(t, addr)) || cb.TxOut[0].Value != miner ||
		!bytes.Equal(cb.TxOut[1].PkScript, payoutScript(t)) || cb.TxOut[1].Value != fee {
		t.Fatalf("coinbase outputs %+v %+v, want %d to the miner and %d to the pool", cb.TxOut[0], cb.TxOut[1], miner, fee)
	}
	sh := spooledBlock(t, h)
	if sh.Username != "solo:"+addr || sh.Worker != "rig" || chainhash.Hash(sh.Block.Hash) != sub[0].BlockHash() {
		t.Fatalf("spooled share %+v", sh)
	}
	var spooled btcwire.MsgBlock
	if err := spooled.Deserialize(bytes.NewReader(sh.Block.Raw)); err != nil || spooled.BlockHash() != sub[0].BlockHash() {
		t.Fatalf("spooled block bytes: %v", err)
	}
	if row := sh.BlockRow(1); row.Username != "solo:"+addr {
		t.Fatalf("block row %+v", row)
	}
	if added := h.resub.list(); len(added) != 1 || added[0].block != sub[0] {
		t.Fatalf("resubmitter got %+v", added)
	}
}

// TestSoloListener: on a listener served with ListenerConfig{Solo: true} a
// plain address mines solo; a name that is not an address is refused even
// in password mode.
func TestSoloListener(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits, config: func(c *Config) { c.Auth = AuthPassword }})
	h.users.passwords["alice"] = "pw"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.srv.ServeListener(ctx, l, ListenerConfig{Solo: true}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	})
	pool := h.addr
	h.addr = l.Addr().String()
	defer func() { h.addr = pool }()
	addr := regtestAddress(t, 0x3d)
	c := h.dial()
	_, b2 := c.soloHandshake(addr+".rig", "")
	if !strings.Contains(b2, hex.EncodeToString(scriptOf(t, addr))) {
		t.Fatalf("coinb2 %s does not pay %s", b2, addr)
	}
	if st := h.srv.Stats(); st.SoloSessions != 1 {
		t.Fatalf("%d solo sessions", st.SoloSessions)
	}
	// A retarget sends the current job again under an alias id: with the
	// session's own coinbase.
	if r := c.call(wire.MethodSuggestDifficulty, c.diff*4); string(r.Result) != "true" {
		t.Fatalf("suggest_difficulty: %s", r.raw)
	}
	c.expect(wire.MethodSetDifficulty)
	alias := c.expect(wire.MethodNotify)
	var id, aliasB2 string
	json.Unmarshal(alias.Params[0], &id)
	json.Unmarshal(alias.Params[3], &aliasB2)
	if !strings.Contains(id, ".") || aliasB2 != b2 {
		t.Fatalf("alias notify %s, want the solo coinbase %s", alias.raw, b2)
	}
	if r := h.dial().call(wire.MethodAuthorize, "alice", "pw"); r.errCode() != wire.CodeUnauthorized {
		t.Fatalf("a pool account on the solo listener: %s, want error 24", r.raw)
	}
}

// BenchmarkSoloCoinbase measures what one solo address costs per job: its
// coinbase (chain.NewSoloJob) and the notify line a new tip needs
// (clean_jobs=true), built once per job and address (Server.soloJob), on a
// job of 200 transactions (an 8-level merkle branch). The bytes of coinb2
// and line it keeps per job and address are reported as "kept-B".
func BenchmarkSoloCoinbase(b *testing.B) {
	src := chaintest.New(&chaincfg.RegressionNetParams)
	src.SetBits(hardBits)
	srv, err := New(Config{
		Source: src, Network: &chaincfg.RegressionNetParams, Users: newFakeUsers(), Shares: &fakeShares{},
		Blocks: &fakeBlocks{}, PayoutScript: payoutScript(b), SoloFeeBPS: 100,
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 200 {
		src.AddTx(testTx(uint32(i + 1000)))
	}
	if err := srv.buildJob(context.Background()); err != nil {
		b.Fatal(err)
	}
	e := srv.currentJob()
	miners := make([]*soloMiner, 1024)
	for i := range miners {
		h := make([]byte, 20)
		h[0], h[1] = byte(i), byte(i>>8)
		a, err := btcutil.NewAddressWitnessPubKeyHash(h, &chaincfg.RegressionNetParams)
		if err != nil {
			b.Fatal(err)
		}
		if miners[i], err = srv.authorizeSolo("solo:" + a.EncodeAddress()); err != nil {
			b.Fatal(err)
		}
	}
	sj := srv.soloJob(e, miners[0])
	kept := len(sj.job.Coinb2) + len(sj.notifyLine(e, true)) // Coinb1 is shared with the pool's job
	b.ReportAllocs()
	b.ResetTimer()
	var entry *jobEntry
	for i := 0; i < b.N; i++ {
		if i%len(miners) == 0 { // a fresh job: every address builds again
			entry = &jobEntry{job: e.job, num: e.num, gen: e.gen, branch: e.branch,
				notify: e.notify, notifyClean: e.notifyClean, coinb2At: e.coinb2At}
		}
		sj := srv.soloJob(entry, miners[i%len(miners)])
		if sj == nil || sj.notifyLine(entry, true) == nil {
			b.Fatal("no solo job")
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(kept), "kept-B")
}
