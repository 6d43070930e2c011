package rpcsource

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/testutil"
)

// Tests of the replies captured from real Bitcoin Core nodes
// (testdata/core; its README names each file's source): the template
// decoder and the job built from it, checked against the fields whose
// meaning matters, and the source against the fake Core replaying them.

// customSignet is a signet whose challenge is OP_TRUE (51): the network of
// the captured signet templates. Its genesis block is the default
// signet's, as for every signet.
func customSignet() *chaincfg.Params {
	p := chaincfg.CustomSignetParams([]byte{0x51}, nil)
	return &p
}

// gbtFields decodes the fields of a captured reply the tests compare with.
type gbtFields struct {
	Version                  uint32   `json:"version"`
	Rules                    []string `json:"rules"`
	VBRequired               uint32   `json:"vbrequired"`
	PreviousBlockHash        string   `json:"previousblockhash"`
	CoinbaseValue            int64    `json:"coinbasevalue"`
	LongPollID               string   `json:"longpollid"`
	MinTime                  int64    `json:"mintime"`
	CurTime                  int64    `json:"curtime"`
	Bits                     string   `json:"bits"`
	Height                   int32    `json:"height"`
	SignetChallenge          string   `json:"signet_challenge"`
	DefaultWitnessCommitment string   `json:"default_witness_commitment"`
	Transactions             []struct {
		TxID   string `json:"txid"`
		Hash   string `json:"hash"`
		Fee    int64  `json:"fee"`
		Weight int64  `json:"weight"`
	} `json:"transactions"`
}

func decodeFields(t testing.TB, raw []byte) gbtFields {
	t.Helper()
	var f gbtFields
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// checkJobAgainstCore builds a job from the template and checks it against
// what Core said the block must be: our coinbase's witness commitment
// output is Core's default_witness_commitment, the coinbase pays exactly
// coinbasevalue, the header carries the template's version (with the
// vbrequired bits), bits and time within [mintime, curtime], and the block
// assembled for a share commits to its transactions.
func checkJobAgainstCore(t *testing.T, tmpl *chain.Template, f gbtFields) {
	t.Helper()
	job, err := chain.NewJob("core", tmpl, coinbaseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(job.WitnessCommitment); got != f.DefaultWitnessCommitment {
		t.Fatalf("job witness commitment %s, Core's default_witness_commitment %s", got, f.DefaultWitnessCommitment)
	}
	if job.VersionHex != hexUint32(f.Version) || f.Version&f.VBRequired != f.VBRequired || job.BitsHex != f.Bits {
		t.Fatalf("job version %s bits %s; Core version %08x (vbrequired %08x) bits %s",
			job.VersionHex, job.BitsHex, f.Version, f.VBRequired, f.Bits)
	}
	if job.NTimeHex != hexUint32(uint32(f.CurTime)) || tmpl.MinTime.Unix() != f.MinTime || tmpl.CurTime.Before(tmpl.MinTime) {
		t.Fatalf("job ntime %s, template mintime %v curtime %v; Core mintime %d curtime %d",
			job.NTimeHex, tmpl.MinTime.Unix(), tmpl.CurTime.Unix(), f.MinTime, f.CurTime)
	}
	b, err := job.Block([]byte{0, 0, 0, 1}, []byte{0, 0, 0, 2}, uint32(f.MinTime), 7, int32(f.Version))
	if err != nil {
		t.Fatal(err)
	}
	var paid int64
	for _, out := range b.Transactions[0].TxOut {
		paid += out.Value
	}
	if paid != f.CoinbaseValue {
		t.Fatalf("coinbase pays %d, Core's coinbasevalue %d", paid, f.CoinbaseValue)
	}
	if b.Header.PrevBlock.String() != f.PreviousBlockHash || len(b.Transactions) != 1+len(f.Transactions) {
		t.Fatalf("block on %s with %d transactions", b.Header.PrevBlock, len(b.Transactions))
	}
	for i, tx := range f.Transactions {
		if got := b.Transactions[i+1].TxHash().String(); got != tx.TxID {
			t.Fatalf("transaction %d: %s, Core's %s", i, got, tx.TxID)
		}
	}
	blk := btcutil.NewBlock(b)
	if root := blockchain.CalcMerkleRoot(blk.Transactions(), false); root != b.Header.MerkleRoot {
		t.Fatalf("merkle root %s, header %s", root, b.Header.MerkleRoot)
	}
	if err := blockchain.ValidateWitnessCommitment(blk); err != nil {
		t.Fatal(err)
	}
}

func hexUint32(v uint32) string {
	return hex.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// TestCoreSignetSegwitTemplate decodes a template a real Core node gave
// on a custom signet (challenge 51) with four segwit transactions; Core's
// default_witness_commitment over them is what our coinbase commits to.
func TestCoreSignetSegwitTemplate(t *testing.T) {
	raw := readCore(t, "getblocktemplate-signet-segwit.json")
	f := decodeFields(t, raw)
	tmpl, lpid, err := templateFromGBT(raw, customSignet())
	if err != nil {
		t.Fatal(err)
	}
	if lpid != f.LongPollID || tmpl.Height != f.Height || tmpl.CoinbaseValue != f.CoinbaseValue ||
		len(tmpl.Transactions) != 4 || !tmpl.HasWitness() || !tmpl.RequireWitnessCommitment {
		t.Fatalf("template %+v, longpollid %q", tmpl, lpid)
	}
	var fees int64
	for i, tx := range f.Transactions {
		fees += tmpl.Fees[i]
		if tmpl.Transactions[i].WitnessHash().String() != tx.Hash || blockchain.GetTransactionWeight(tmpl.Transactions[i]) != tx.Weight {
			t.Fatalf("transaction %d: wtxid %s weight %d, Core's %s %d", i, tmpl.Transactions[i].WitnessHash(),
				blockchain.GetTransactionWeight(tmpl.Transactions[i]), tx.Hash, tx.Weight)
		}
	}
	if subsidy := blockchain.CalcBlockSubsidy(tmpl.Height, customSignet()); subsidy+fees != f.CoinbaseValue {
		t.Fatalf("subsidy %d + fees %d != coinbasevalue %d", subsidy, fees, f.CoinbaseValue)
	}
	checkJobAgainstCore(t, tmpl, f)
}

// TestCoreSignetEmptyTemplate: a captured signet template without
// transactions. Core still gives a default_witness_commitment, and on
// signet the block must carry it (BIP 325: the solution lives in the
// commitment output; Core refuses a signet block without one), so our job
// commits even without witness data.
func TestCoreSignetEmptyTemplate(t *testing.T) {
	raw := readCore(t, "getblocktemplate-signet-empty.json")
	f := decodeFields(t, raw)
	tmpl, lpid, err := templateFromGBT(raw, customSignet())
	if err != nil {
		t.Fatal(err)
	}
	if lpid != f.LongPollID || len(tmpl.Transactions) != 0 || tmpl.HasWitness() || !tmpl.RequireWitnessCommitment {
		t.Fatalf("template %+v", tmpl)
	}
	checkJobAgainstCore(t, tmpl, f)
	// On signet the rules say so.
	if !strings.Contains(strings.Join(f.Rules, ","), "!signet") || f.SignetChallenge != "51" {
		t.Fatalf("capture rules %v challenge %q", f.Rules, f.SignetChallenge)
	}
}

// TestCoreSignetChallenges: the captured signet reply with the default
// signet's challenge in place of 51 (the one field changed here) is
// refused with ErrUnmineableSignet, not as a bad reply; without a
// signet_challenge it is a bad reply; off signet the field is ignored.
func TestCoreSignetChallenges(t *testing.T) {
	raw := readCore(t, "getblocktemplate-signet-empty.json")
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["signet_challenge"] = hex.EncodeToString(chaincfg.DefaultSignetChallenge)
	_, _, err := templateFromGBT(mustJSON(t, m), &chaincfg.SigNetParams)
	if !errors.Is(err, chain.ErrUnmineableSignet) || errors.Is(err, ErrBadReply) || !strings.Contains(err.Error(), "default signet") {
		t.Fatalf("default signet challenge: %v", err)
	}
	for _, bad := range []any{nil, "zz", "5"} {
		if bad == nil {
			delete(m, "signet_challenge")
		} else {
			m["signet_challenge"] = bad
		}
		if _, _, err := templateFromGBT(mustJSON(t, m), customSignet()); !errors.Is(err, ErrBadReply) {
			t.Errorf("signet_challenge %v: %v", bad, err)
		}
	}
}

// TestCoreRegtestTemplate decodes the regtest template (the captured
// signet one moved to regtest, see the README); Core's commitment for a
// coinbase-only block is the one our job would use if it committed, and
// the reply's bits are impossible on mainnet.
func TestCoreRegtestTemplate(t *testing.T) {
	raw := readCore(t, "getblocktemplate-regtest.json")
	f := decodeFields(t, raw)
	tmpl, lpid, err := templateFromGBT(raw, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Height != 1 || tmpl.PrevHash != *chaincfg.RegressionNetParams.GenesisHash || tmpl.Bits != 0x207fffff ||
		lpid != f.LongPollID || tmpl.RequireWitnessCommitment || len(tmpl.Transactions) != 0 {
		t.Fatalf("template %+v, longpollid %q", tmpl, lpid)
	}
	// Off signet a block without witness data needs no commitment; with
	// one required it is Core's.
	tmpl.RequireWitnessCommitment = true
	checkJobAgainstCore(t, tmpl, f)
	if _, _, err := templateFromGBT(raw, &chaincfg.MainNetParams); !errors.Is(err, ErrBadReply) {
		t.Fatalf("regtest bits accepted on mainnet: %v", err)
	}
}

// TestCoreTestnet3TrimmedTemplate: a testnet3 template of Core 0.13 as
// btcpool's tests keep it, with three transactions of the real list. The
// coinbasevalue (and the commitment) cover the full list, so the reply is
// refused as inconsistent; with the fees and the commitment dropped (here,
// in the test) the real transactions decode to Core's txids and weights.
func TestCoreTestnet3TrimmedTemplate(t *testing.T) {
	raw := readCore(t, "getblocktemplate-testnet3-trimmed.json")
	_, _, err := templateFromGBT(raw, &chaincfg.TestNet3Params)
	if !errors.Is(err, ErrBadReply) || !strings.Contains(err.Error(), "exceeds subsidy plus fees") {
		t.Fatalf("trimmed template: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "default_witness_commitment")
	for _, tx := range m["transactions"].([]any) {
		delete(tx.(map[string]any), "fee")
	}
	tmpl, _, err := templateFromGBT(mustJSON(t, m), &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	f := decodeFields(t, raw)
	for i, tx := range f.Transactions {
		got := tmpl.Transactions[i]
		if got.Hash().String() != tx.TxID || got.WitnessHash().String() != tx.Hash || blockchain.GetTransactionWeight(got) != tx.Weight {
			t.Fatalf("transaction %d: %s weight %d, Core's %s %d", i, got.Hash(), blockchain.GetTransactionWeight(got), tx.TxID, tx.Weight)
		}
	}
	if tmpl.HasWitness() || tmpl.Bits != 0x1a171448 || tmpl.Height != 1038222 {
		t.Fatalf("template %+v", tmpl)
	}
}

// TestCoreRulesAndVersionBits: a rule the client must understand ("!"
// prefix, BIP 9) that stratumd does not know, or a version lacking the
// vbrequired bits, makes the template unusable.
func TestCoreRulesAndVersionBits(t *testing.T) {
	raw := readCore(t, "getblocktemplate-regtest.json")
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rules      []string
		vbrequired uint32
		ok         bool
	}{
		{[]string{"csv", "!segwit", "taproot"}, 0, true},
		{[]string{"csv", "!segwit", "!signet", "taproot", "testdummy"}, 0, true},
		{[]string{"csv", "!segwit", "!newfork"}, 0, false},
		{[]string{"csv", "!segwit"}, 0x20000000, true},
		{[]string{"csv", "!segwit"}, 1 << 28, false},
	} {
		m["rules"], m["vbrequired"] = c.rules, c.vbrequired
		_, _, err := templateFromGBT(mustJSON(t, m), &chaincfg.RegressionNetParams)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadReply)) {
			t.Errorf("rules %v vbrequired %08x: %v", c.rules, c.vbrequired, err)
		}
	}
}

// signetConfig is fastConfig on the custom signet, logging into logs.
func signetConfig(logs *testutil.SyncBuffer, net *chaincfg.Params, nodes ...NodeConfig) Config {
	cfg := fastConfig(nodes...)
	cfg.Network = net
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return cfg
}

// TestCoreSignetSource runs the source against the fake Core on signet
// replaying the captured template: every template request carries the
// signet rule (Core refuses it otherwise, answering with its -8 error), and
// the job commits as Core says.
func TestCoreSignetSource(t *testing.T) {
	core := newFakeCoreOn(t, "u", "p", customSignet(), "getblocktemplate-signet-segwit.json")
	var logs testutil.SyncBuffer
	s := startSource(t, signetConfig(&logs, customSignet(), NodeConfig{URL: core.srv.URL, User: "u", Pass: "p"}))
	waitUpdate(t, s, "tip at genesis", tipIs(*chaincfg.SigNetParams.GenesisHash))
	tmpl, err := s.Template(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	checkJobAgainstCore(t, tmpl, decodeFields(t, readCore(t, "getblocktemplate-signet-segwit.json")))
	core.set(func(f *fakeCore) {
		if len(f.gbtRules) == 0 {
			t.Error("no template request")
		}
		for _, r := range f.gbtRules {
			if strings.Join(r, ",") != "segwit,signet" {
				t.Errorf("template request rules %v", r)
			}
		}
	})
	if strings.Contains(logs.String(), "CANNOT MINE") {
		t.Fatalf("refusal logged for a mineable signet:\n%s", logs.String())
	}
}

// TestCoreDefaultSignetRefused: a Core node on the default signet (its
// captured template with the default challenge) gives no template, with
// one clear log line however often stratumd asks.
func TestCoreDefaultSignetRefused(t *testing.T) {
	core := newFakeCoreOn(t, "u", "p", &chaincfg.SigNetParams, "getblocktemplate-signet-empty.json")
	core.set(func(f *fakeCore) {
		var m map[string]any
		if err := json.Unmarshal(f.gbt, &m); err != nil {
			t.Fatal(err)
		}
		m["signet_challenge"] = hex.EncodeToString(chaincfg.DefaultSignetChallenge)
		f.gbt = mustJSON(t, m)
	})
	var logs testutil.SyncBuffer
	s := startSource(t, signetConfig(&logs, &chaincfg.SigNetParams, NodeConfig{URL: core.srv.URL, User: "u", Pass: "p"}))
	waitUpdate(t, s, "tip at genesis", tipIs(*chaincfg.SigNetParams.GenesisHash))
	ctx := testCtx(t)
	for range 3 {
		if _, err := s.Template(ctx); !errors.Is(err, chain.ErrUnmineableSignet) {
			t.Fatalf("template on the default signet: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "CANNOT MINE THIS SIGNET"); n != 1 {
		t.Fatalf("%d refusal lines, want 1:\n%s", n, logs.String())
	}
	if st := s.Stats(); !st.Nodes[0].Healthy || st.InvalidReplies != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCoreLongPoll: the long poll sends back the longpollid of the reply
// before (Core's <tip hash><transactions updated>, as captured), a reply on
// the same tip is a mempool change and one on another tip a new tip, and
// Core's "Shutting down" answer to a pending long poll does not take the
// node down.
func TestCoreLongPoll(t *testing.T) {
	core := newFakeCore(t, "u", "p")
	s := startSource(t, fastConfig(NodeConfig{URL: core.srv.URL, User: "u", Pass: "p"}))
	ctx := testCtx(t)
	waitUpdate(t, s, "tip at genesis", tipIs(*chaincfg.RegressionNetParams.GenesisHash))
	captured := decodeFields(t, readCore(t, "getblocktemplate-regtest.json")).LongPollID

	release := func(reply []byte) {
		t.Helper()
		select {
		case core.longPoll <- reply:
		case <-ctx.Done():
			t.Fatal("no long poll pending")
		}
	}
	lastID := func() string {
		var id string
		core.set(func(f *fakeCore) {
			if n := len(f.longPollIDs); n > 0 {
				id = f.longPollIDs[n-1]
			}
		})
		return id
	}
	waitID := func(want string) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for lastID() != want {
			if time.Now().After(deadline) {
				t.Fatalf("long poll ids %q, want last %q", lastID(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitID(captured)

	same := core.templateOn(*chaincfg.RegressionNetParams.GenesisHash, 0)
	release(same)
	waitUpdate(t, s, "mempool change", func(u chain.Update) bool { return u.Kind == chain.MempoolChanged })
	waitID(decodeFields(t, same).LongPollID)

	tip := hashOf(4)
	core.set(func(f *fakeCore) { f.tip, f.height = tip, 1 })
	moved := core.templateOn(tip, 1)
	release(moved)
	waitUpdate(t, s, "new tip from long poll", tipIs(tip))
	waitID(decodeFields(t, moved).LongPollID)

	// Core answers a pending long poll "Shutting down" (-9) when it stops.
	release(nil)
	waitID(decodeFields(t, moved).LongPollID)
	if st := s.Stats(); st.Outages != 0 || !st.Nodes[0].Healthy {
		t.Fatalf("stats %+v", st)
	}
}

// TestCoreErrorReplies replays Core's error envelopes: a node in initial
// download or without peers gives chain.ErrNotSynced; one warming up (the
// captured -28) is not connected until it answers; another error (-1) is
// the node's answer, neither a bad reply nor an outage; an unknown
// method's 404 still yields Core's error object.
func TestCoreErrorReplies(t *testing.T) {
	core := newFakeCore(t, "u", "p")
	core.set(func(f *fakeCore) { f.rpcErr = "warmup" })
	var logs testutil.SyncBuffer
	cfg := fastConfig(NodeConfig{URL: core.srv.URL, User: "u", Pass: "p"})
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := startSource(t, cfg)
	ctx := testCtx(t)
	deadline := time.Now().Add(waitTimeout)
	for s.Stats().ConnectFailures < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no connection attempts: %+v", s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.Nodes[0].Healthy || !strings.Contains(st.Nodes[0].LastError, "is starting up") ||
		!strings.Contains(st.Nodes[0].LastError, "Verifying blocks…") {
		t.Fatalf("node warming up: %+v", st.Nodes[0])
	}
	core.set(func(f *fakeCore) { f.rpcErr = "" })
	waitUpdate(t, s, "tip after warm-up", tipIs(*chaincfg.RegressionNetParams.GenesisHash))

	for name, want := range map[string]error{"initial-download": chain.ErrNotSynced, "not-connected": chain.ErrNotSynced} {
		core.set(func(f *fakeCore) { f.gbtErr = name })
		if _, err := s.Template(ctx); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	// Any other error (-1, RPC_MISC_ERROR) is the node's answer: no
	// template, but neither a bad reply nor an outage.
	var rerr *RPCError
	core.set(func(f *fakeCore) { f.gbtErr = "misc-error" })
	if _, err := s.Template(ctx); !errors.As(err, &rerr) || rerr.Code != -1 || errors.Is(err, chain.ErrNotSynced) {
		t.Errorf("misc error: %v", err)
	}
	core.set(func(f *fakeCore) { f.gbtErr = "" })

	n := s.nodes[0]
	if err := n.call(ctx, "nosuchmethod", nil, nil); !errors.As(err, &rerr) || rerr.Code != -32601 || rerr.Message != "Method not found" {
		t.Fatalf("unknown method: %v", err)
	}
	if st := s.Stats(); !st.Nodes[0].Healthy || st.Outages != 0 || st.InvalidReplies != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCoreSubmitblockAnswers submits a block to the fake Core answering
// each BIP 22 answer Core gives (submitblock.json) and checks the source's
// outcome is the shared table's.
func TestCoreSubmitblockAnswers(t *testing.T) {
	var answers []*string
	if err := json.Unmarshal(readCore(t, "submitblock.json"), &answers); err != nil {
		t.Fatal(err)
	}
	core := newFakeCore(t, "u", "p")
	s := startSource(t, fastConfig(NodeConfig{URL: core.srv.URL, User: "u", Pass: "p"}))
	ctx := testCtx(t)
	waitUpdate(t, s, "tip", tipIs(*chaincfg.RegressionNetParams.GenesisHash))
	tmpl, err := s.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	block, blockHex := solveTemplate(t, tmpl)
	for _, a := range answers {
		raw, reason := "null", ""
		if a != nil {
			raw, reason = string(mustJSON(t, *a)), *a
		}
		core.set(func(f *fakeCore) { f.submits = []string{raw} })
		res, err := s.SubmitBlock(ctx, block)
		if wantRes := chain.BIP22Result(reason); err != nil || res != wantRes {
			t.Errorf("answer %s: %+v, %v; want %+v", raw, res, err, wantRes)
		}
	}
	core.set(func(f *fakeCore) {
		if len(f.submitted) != len(answers) || f.submitted[0] != blockHex {
			t.Errorf("node received %d blocks", len(f.submitted))
		}
	})
	// A block Core cannot decode: -22, a rejection.
	bad := &wire.MsgBlock{Header: block.Header}
	core.set(func(f *fakeCore) { f.rpcErr = "block-decode" })
	if res, err := s.SubmitBlock(ctx, bad); err != nil || res.Status != chain.Rejected || res.Reason != "Block decode failed" {
		t.Fatalf("undecodable block: %+v, %v", res, err)
	}
}
