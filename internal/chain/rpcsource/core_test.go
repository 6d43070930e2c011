package rpcsource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
)

// fastConfig is a regtest Config with quick reconnects and no slow poll
// (an hour), so that the tests see the notification path under test.
func fastConfig(nodes ...NodeConfig) Config {
	return Config{Nodes: nodes, Network: &chaincfg.RegressionNetParams, PollInterval: time.Hour,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, RequestTimeout: 10 * time.Second}
}

// writeCookie writes a Core cookie file.
func writeCookie(t testing.TB, path, pass string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("__cookie__:"+pass), 0o600); err != nil {
		t.Fatal(err)
	}
}

// hashOf returns a distinct made-up block hash.
func hashOf(i byte) chainhash.Hash {
	var h chainhash.Hash
	h[0], h[31] = i, 0x42
	return h
}

// TestCoreRecordedReplies runs the source against the fake Core: kind
// detection, cookie authentication re-read after a 401, the recorded
// template, every submitblock answer, and long polling for mempool changes
// and new tips.
func TestCoreRecordedReplies(t *testing.T) {
	cookie := filepath.Join(t.TempDir(), ".cookie")
	writeCookie(t, cookie, "first")
	core := newFakeCore(t, "__cookie__", "first")
	s := startSource(t, fastConfig(NodeConfig{URL: core.srv.URL, CookieFile: cookie}))
	ctx := testCtx(t)

	waitUpdate(t, s, "tip at genesis", tipIs(*chaincfg.RegressionNetParams.GenesisHash))
	if st := s.Stats(); len(st.Nodes) != 1 || st.Nodes[0].Kind != KindCore || !st.Nodes[0].Healthy || st.Nodes[0].Height != 0 {
		t.Fatalf("stats %+v", st)
	}

	tmpl, err := s.Template(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Height != 1 || tmpl.PrevHash != *chaincfg.RegressionNetParams.GenesisHash || tmpl.CoinbaseValue != 50e8 {
		t.Fatalf("template %+v", tmpl)
	}

	// Core restarts and writes a new cookie: the next call gets a 401,
	// re-reads the file and succeeds.
	core.set(func(f *fakeCore) { f.pass = "second" })
	writeCookie(t, cookie, "second")
	if _, err := s.Template(ctx); err != nil {
		t.Fatalf("template after cookie change: %v", err)
	}
	core.set(func(f *fakeCore) {
		// The long poll's first call may also have met the new cookie.
		if f.unauthorized < 1 || f.unauthorized > 2 {
			t.Errorf("%d 401s, want 1 or 2", f.unauthorized)
		}
	})
	// A wrong cookie stays refused: an error wrapping ErrAuth.
	core.set(func(f *fakeCore) { f.pass = "third" })
	if _, err := s.Template(ctx); !errors.Is(err, ErrAuth) {
		t.Fatalf("template with a stale cookie: %v", err)
	}
	// The node was marked down; with the right cookie again it reconnects
	// and reports its tip, which moved meanwhile.
	moved := hashOf(9)
	core.set(func(f *fakeCore) { f.pass, f.tip, f.height = "second", moved, 1 })
	waitUpdate(t, s, "reconnect after auth failure", tipIs(moved))
	if st := s.Stats(); st.Outages != 1 || st.Reconnects != 1 {
		t.Fatalf("stats after auth failure %+v", st)
	}

	block, blockHex := solveTemplate(t, tmpl)
	replies := []struct {
		raw    string
		status chain.SubmitStatus
	}{
		{`null`, chain.Accepted},
		{`"duplicate"`, chain.Duplicate},
		{`"inconclusive"`, chain.Inconclusive},
		{`"high-hash"`, chain.Rejected},
		{`"duplicate-inconclusive"`, chain.Duplicate},
	}
	for _, r := range replies {
		core.set(func(f *fakeCore) { f.submits = []string{r.raw} })
		res, err := s.SubmitBlock(ctx, block)
		if err != nil || res.Status != r.status {
			t.Fatalf("submit answered %s: got %+v, %v; want %v", r.raw, res, err, r.status)
		}
	}
	core.set(func(f *fakeCore) {
		if len(f.submitted) != len(replies) || f.submitted[0] != blockHex {
			t.Errorf("node received %d blocks, first %.40s...", len(f.submitted), f.submitted[0])
		}
	})

	// The long poll returns on the same tip: the mempool changed.
	select {
	case core.longPoll <- core.templateOn(moved, 1):
	case <-ctx.Done():
		t.Fatal("no long poll pending")
	}
	waitUpdate(t, s, "mempool change", func(u chain.Update) bool { return u.Kind == chain.MempoolChanged })

	// It returns on a new tip: NewTip with the height from getblockheader.
	tip := hashOf(1)
	core.set(func(f *fakeCore) { f.tip, f.height = tip, 2 })
	select {
	case core.longPoll <- core.templateOn(tip, 2):
	case <-ctx.Done():
		t.Fatal("no long poll pending")
	}
	if u := waitUpdate(t, s, "new tip from long poll", tipIs(tip)); u.Height != 2 {
		t.Fatalf("update %+v", u)
	}
}

// TestCoreBadReplies: a malformed template is an error wrapping
// ErrBadReply and is counted, a syncing node gives chain.ErrNotSynced, and
// neither takes the node down.
func TestCoreBadReplies(t *testing.T) {
	core := newFakeCore(t, "u", "p")
	s := startSource(t, fastConfig(NodeConfig{URL: core.srv.URL, User: "u", Pass: "p", Kind: KindCore}))
	ctx := testCtx(t)
	waitUpdate(t, s, "tip", tipIs(*chaincfg.RegressionNetParams.GenesisHash))

	core.set(func(f *fakeCore) { f.gbt = []byte(`{"version":1,"transactions":[{"data":"zz"}]}`) })
	if _, err := s.Template(ctx); !errors.Is(err, ErrBadReply) {
		t.Fatalf("bad template: %v", err)
	}
	core.set(func(f *fakeCore) { f.gbtErr = "initial-download" })
	if _, err := s.Template(ctx); !errors.Is(err, chain.ErrNotSynced) {
		t.Fatalf("syncing node: %v", err)
	}
	st := s.Stats()
	if st.InvalidReplies < 1 || st.TemplateErrors != 2 || st.Outages != 0 || !st.Nodes[0].Healthy {
		t.Fatalf("stats %+v", st)
	}
}

// TestParseHashBlock checks the ZMQ message decoding.
func TestParseHashBlock(t *testing.T) {
	hash := hashOf(7)
	rev := hash
	slices.Reverse(rev[:])
	h, seq, err := parseHashBlock([][]byte{[]byte("hashblock"), rev[:], {5, 0, 0, 1}})
	if err != nil || h != hash || seq != 0x01000005 {
		t.Fatalf("got %s %d %v", h, seq, err)
	}
	for _, frames := range [][][]byte{
		nil,
		{[]byte("hashblock"), rev[:]},
		{[]byte("hashtx"), rev[:], {0, 0, 0, 0}},
		{[]byte("hashblock"), rev[:31], {0, 0, 0, 0}},
		{[]byte("hashblock"), rev[:], {0, 0, 0}},
		{[]byte("hashblock"), rev[:], {0, 0, 0, 0}, {}},
	} {
		if _, _, err := parseHashBlock(frames); !errors.Is(err, ErrBadReply) {
			t.Errorf("%x: got %v", frames, err)
		}
	}
}

// TestFailover runs two fake nodes: templates come from the first healthy
// one, blocks go to both (accepted from either wins), an outage of the
// first switches to the second with NewTip and is counted, and the first
// is preferred again once it is back.
func TestFailover(t *testing.T) {
	a, b := newFakeCore(t, "u", "p"), newFakeCore(t, "u", "p")
	tipA, tipB := hashOf(0xa), hashOf(0xb)
	// Node a starts down: node b serves until a comes up, then a is
	// preferred.
	a.set(func(f *fakeCore) { f.tip, f.height, f.gbt, f.down = tipA, 5, f.templateOn(tipA, 5), true })
	b.set(func(f *fakeCore) { f.tip, f.height, f.gbt = tipB, 5, f.templateOn(tipB, 5) })
	s := startSource(t, fastConfig(
		NodeConfig{URL: a.srv.URL, User: "u", Pass: "p", Kind: KindCore},
		NodeConfig{URL: b.srv.URL, User: "u", Pass: "p", Kind: KindCore}))
	ctx := testCtx(t)
	waitUpdate(t, s, "tip of node b", tipIs(tipB))
	a.set(func(f *fakeCore) { f.down = false })
	waitUpdate(t, s, "tip of node a", tipIs(tipA))
	if st := s.Stats(); st.Outages != 0 || st.Reconnects != 0 {
		t.Fatalf("stats after a came up %+v", st)
	}

	tmpl, err := s.Template(ctx)
	if err != nil || tmpl.PrevHash != tipA {
		t.Fatalf("template on %v (%v), want node a's", tmpl, err)
	}
	job, err := chain.NewJob("1", tmpl, coinbaseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	block := solve(t, job)
	a.set(func(f *fakeCore) { f.submits = []string{`"high-hash"`} })
	b.set(func(f *fakeCore) { f.submits = []string{`null`} })
	if res, err := s.SubmitBlock(ctx, block); err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit: %+v %v", res, err)
	}
	a.set(func(f *fakeCore) { f.submits = []string{`"inconclusive"`} })
	b.set(func(f *fakeCore) { f.submits = []string{`"bad-txnmrklroot"`} })
	if res, err := s.SubmitBlock(ctx, block); err != nil || res.Status != chain.Inconclusive {
		t.Fatalf("submit: %+v %v", res, err)
	}

	a.set(func(f *fakeCore) { f.down = true })
	tmpl, err = s.Template(ctx)
	if err != nil || tmpl.PrevHash != tipB {
		t.Fatalf("template during outage on %v (%v), want node b's", tmpl, err)
	}
	waitUpdate(t, s, "tip of node b", tipIs(tipB))
	// A block still goes to both; node b answers.
	if res, err := s.SubmitBlock(ctx, block); err != nil || res.Status != chain.Accepted {
		t.Fatalf("submit during outage: %+v %v", res, err)
	}
	st := s.Stats()
	if st.Outages != 1 || st.Nodes[0].Healthy || !st.Nodes[1].Healthy || st.Nodes[0].DownSince.IsZero() {
		t.Fatalf("stats during outage %+v", st)
	}

	// Both down: no template, and no block handed over.
	b.set(func(f *fakeCore) { f.down = true })
	if _, err := s.Template(ctx); err == nil {
		t.Fatal("template with both nodes down")
	}
	if _, err := s.Template(ctx); !errors.Is(err, ErrNoHealthyNode) {
		t.Fatalf("template with both nodes marked down: %v", err)
	}
	if _, err := s.SubmitBlock(ctx, block); err == nil {
		t.Fatal("submit with both nodes down")
	}

	a.set(func(f *fakeCore) { f.down = false })
	waitUpdate(t, s, "node a back", tipIs(tipA))
	if tmpl, err = s.Template(ctx); err != nil || tmpl.PrevHash != tipA {
		t.Fatalf("template after recovery on %v (%v)", tmpl, err)
	}
	b.set(func(f *fakeCore) { f.down = false })
	if st := s.Stats(); st.Outages != 2 || st.Reconnects < 1 || st.SubmitErrors != 1 || !st.Nodes[0].Healthy {
		t.Fatalf("stats after recovery %+v", st)
	}
}

// TestNewValidation rejects configs that cannot run.
func TestNewValidation(t *testing.T) {
	ok := NodeConfig{URL: "http://127.0.0.1:8332", User: "u", Pass: "p"}
	bad := map[string]Config{
		"no nodes":          {Network: &chaincfg.RegressionNetParams},
		"no network":        {Nodes: []NodeConfig{ok}},
		"no credentials":    {Nodes: []NodeConfig{{URL: "http://127.0.0.1:8332"}}, Network: &chaincfg.RegressionNetParams},
		"both credentials":  {Nodes: []NodeConfig{{URL: "http://127.0.0.1:8332", User: "u", Pass: "p", CookieFile: "/c"}}, Network: &chaincfg.RegressionNetParams},
		"no port":           {Nodes: []NodeConfig{{URL: "http://127.0.0.1", Pass: "p"}}, Network: &chaincfg.RegressionNetParams},
		"bad scheme":        {Nodes: []NodeConfig{{URL: "ftp://127.0.0.1:1", Pass: "p"}}, Network: &chaincfg.RegressionNetParams},
		"bad kind":          {Nodes: []NodeConfig{{URL: "http://127.0.0.1:1", Pass: "p", Kind: "bcoin"}}, Network: &chaincfg.RegressionNetParams},
		"btcd with zmq":     {Nodes: []NodeConfig{{URL: "http://127.0.0.1:1", Pass: "p", Kind: KindBtcd, ZMQBlock: "tcp://127.0.0.1:2"}}, Network: &chaincfg.RegressionNetParams},
		"bad zmq":           {Nodes: []NodeConfig{{URL: "http://127.0.0.1:1", Pass: "p", ZMQBlock: "127.0.0.1:2"}}, Network: &chaincfg.RegressionNetParams},
		"ca for http":       {Nodes: []NodeConfig{{URL: "http://127.0.0.1:1", Pass: "p", CAFile: "/etc/hostname"}}, Network: &chaincfg.RegressionNetParams},
		"missing ca":        {Nodes: []NodeConfig{{URL: "https://127.0.0.1:1", Pass: "p", CAFile: "/nonexistent"}}, Network: &chaincfg.RegressionNetParams},
		"negative duration": {Nodes: []NodeConfig{ok}, Network: &chaincfg.RegressionNetParams, PollInterval: -1},
		"backoff inverted":  {Nodes: []NodeConfig{ok}, Network: &chaincfg.RegressionNetParams, BackoffMin: time.Second, BackoffMax: time.Millisecond},
	}
	for name, cfg := range bad {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	s, err := New(Config{Nodes: []NodeConfig{{URL: "user:secret@127.0.0.1:8332"}}, Network: &chaincfg.RegressionNetParams})
	if err != nil {
		t.Fatal(err)
	}
	ep := s.nodes[0].ep
	if ep.User != "user" || ep.Pass != "secret" || ep.rpcURL != "http://127.0.0.1:8332/" || ep.name != "http://127.0.0.1:8332" {
		t.Fatalf("endpoint %+v", ep)
	}
	if _, err := s.Template(context.Background()); !errors.Is(err, ErrNoHealthyNode) {
		t.Fatalf("template before Run: %v", err)
	}
	if _, err := s.SubmitBlock(context.Background(), nil); !errors.Is(err, ErrInvalidBlock) {
		t.Fatalf("nil block: %v", err)
	}
}

// TestRunLifecycle: Run returns nil when ctx ends, closes Updates, and the
// source then answers chain.ErrClosed; a second Run fails.
func TestRunLifecycle(t *testing.T) {
	core := newFakeCore(t, "u", "p")
	s, err := New(fastConfig(NodeConfig{URL: core.srv.URL, User: "u", Pass: "p"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitUpdate(t, s, "tip", tipIs(*chaincfg.RegressionNetParams.GenesisHash))
	if err := s.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, open := <-s.Updates(); open {
		t.Fatal("updates still open")
	}
	if _, err := s.Template(context.Background()); !errors.Is(err, chain.ErrClosed) {
		t.Fatalf("template after Run: %v", err)
	}
	if _, err := s.SubmitBlock(context.Background(), &wire.MsgBlock{}); !errors.Is(err, chain.ErrClosed) {
		t.Fatalf("submit after Run: %v", err)
	}
}
