package stratum

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// The firmware replays. Each test writes the lines a public miner writes,
// byte for byte as its published source formats them (the source, file
// and commit are cited in the test), to the real server over real TCP (or
// TLS), with the real spool, drainer and PostgreSQL behind it, and checks
// the server's answers and what reaches the shares table. The README's
// compatibility table lists them.

// firmwareBits makes the chain's blocks hard enough (difficulty 1) that a
// test's shares are never blocks.
const firmwareBits = 0x1d00ffff

// fwPool is the real server on a loopback listener (plain or TLS) with the
// real store behind it.
type fwPool struct {
	addr    string
	tls     *tls.Config // the client's, for a TLS listener
	srv     *Server
	st      *store.Store
	sp      *spool.Spool
	drainer *store.Drainer
	src     *chaintest.Source
}

func startFirmwarePool(t *testing.T, limits Limits, useTLS bool, configure func(*Config)) *fwPool {
	t.Helper()
	st, _ := pgtest.NewStore(t)
	t.Cleanup(st.Close)
	sp, err := spool.Open(spool.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	drainer, err := store.NewDrainer(store.DrainerConfig{Store: st, Spool: sp, InstanceID: 5, QuarantineDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	params := &chaincfg.RegressionNetParams
	src := chaintest.New(params)
	src.SetBits(firmwareBits)
	pkScript := payoutScript(t)
	cfg := Config{
		Source: src, Network: params, Users: st, Shares: store.NewShareWriter(sp), Blocks: st,
		PayoutScript: pkScript, InstanceID: 5, Auth: AuthOpen, Limits: limits,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fwPool{addr: l.Addr().String(), srv: srv, st: st, sp: sp, drainer: drainer, src: src}
	if useTLS {
		serverCfg, clientCfg := selfSignedTLS(t)
		l = tls.NewListener(l, serverCfg)
		p.tls = clientCfg
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { sp.Run(ctx) })
	wg.Go(func() { drainer.Run(ctx) })
	wg.Go(func() { srv.Serve(ctx, l) })
	wg.Go(func() { srv.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		sp.Close()
		src.Close()
	})
	return p
}

// selfSignedTLS returns a server config with a fresh self-signed
// certificate for 127.0.0.1 and a client config that trusts it.
func selfSignedTLS(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stratumd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

// storedShare is a row of the shares table.
type storedShare struct {
	user, worker string
	difficulty   float64
}

// storedShares waits until every share the spool holds is in PostgreSQL
// and returns the rows, oldest first.
func (p *fwPool) storedShares(t *testing.T) []storedShare {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.drainer.WaitStored(ctx, p.sp.Durable()); err != nil {
		t.Fatal(err)
	}
	rows, err := p.st.Pool().Query(ctx, `SELECT username, worker, difficulty FROM shares ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedShare
	for rows.Next() {
		var s storedShare
		if err := rows.Scan(&s.user, &s.worker, &s.difficulty); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (l *msg) isReplyTo(id int) bool { return l.Method == "" && string(l.ID) == fmt.Sprint(id) }

// fwMiner is a firmware's connection: it writes the firmware's lines as
// given and follows what the server sends (extranonce, difficulty, jobs).
type fwMiner struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader

	en1     []byte
	en2Size int
	diff    float64
	mask    uint32
	job     *miner.Job // the last job, at the difficulty in force when it came
	seen    []*msg     // every line read
}

func (p *fwPool) dial(t *testing.T) *fwMiner {
	t.Helper()
	var conn net.Conn
	var err error
	if p.tls != nil {
		conn, err = tls.Dial("tcp", p.addr, p.tls)
	} else {
		conn, err = net.Dial("tcp", p.addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fwMiner{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// send writes line exactly as given (the firmware's own terminator included).
func (m *fwMiner) send(line string) {
	m.t.Helper()
	if _, err := io.WriteString(m.conn, line); err != nil {
		m.t.Fatalf("write: %v", err)
	}
}

// read returns the next line, following the session's state.
func (m *fwMiner) read() *msg {
	m.t.Helper()
	l, err := m.tryRead()
	if err != nil {
		m.t.Fatalf("read: %v (lines so far: %s)", err, m.rawSeen())
	}
	return l
}

func (m *fwMiner) tryRead() (*msg, error) {
	m.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	s, err := m.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	l := &msg{raw: strings.TrimSuffix(s, "\n")}
	if err := json.Unmarshal([]byte(s), l); err != nil {
		return nil, fmt.Errorf("line %q: %w", s, err)
	}
	m.seen = append(m.seen, l)
	switch l.Method {
	case wire.MethodSetDifficulty:
		json.Unmarshal(l.Params[0], &m.diff)
	case wire.MethodNotify:
		raw, _ := json.Marshal(l.Params)
		j, err := miner.ParseNotify(raw, m.en1, m.en2Size, m.diff, m.mask)
		if err != nil {
			return nil, err
		}
		m.job = j
	}
	return l, nil
}

func (m *fwMiner) rawSeen() string {
	var b strings.Builder
	for _, l := range m.seen {
		b.WriteString("\n\t" + l.raw)
	}
	return b.String()
}

// until reads lines until one satisfies ok and returns it.
func (m *fwMiner) until(what string, ok func(*msg) bool) *msg {
	m.t.Helper()
	for {
		l, err := m.tryRead()
		if err != nil {
			m.t.Fatalf("waiting for %s: %v (lines so far: %s)", what, err, m.rawSeen())
		}
		if ok(l) {
			return l
		}
	}
}

// reply reads until the reply to id.
func (m *fwMiner) reply(id int) *msg {
	m.t.Helper()
	return m.until(fmt.Sprintf("the reply to %d", id), func(l *msg) bool { return l.isReplyTo(id) })
}

// subscribed reads the subscribe reply with id and records the extranonce.
func (m *fwMiner) subscribed(id int) {
	m.t.Helper()
	r := m.reply(id)
	var res []json.RawMessage
	var en1 string
	if json.Unmarshal(r.Result, &res) != nil || len(res) != 3 || json.Unmarshal(res[1], &en1) != nil ||
		json.Unmarshal(res[2], &m.en2Size) != nil {
		m.t.Fatalf("subscribe reply %s", r.raw)
	}
	m.en1, _ = hex.DecodeString(en1)
}

// expectTrue reads the reply to id and checks it is true.
func (m *fwMiner) expectTrue(id int, what string) {
	m.t.Helper()
	if r := m.reply(id); string(r.Result) != "true" {
		m.t.Fatalf("%s: %s", what, r.raw)
	}
}

// fwShare is a share of the current job: its fields as the firmware
// formats them are up to the caller.
type fwShare struct {
	jobID       string
	en2         string
	ntime       uint32
	nonce       uint32
	versionBits uint32
}

// find mines the current job at its difficulty with versionBits rolled
// (0: none). With nonceBelow > 0 it looks only at nonces below it.
func (m *fwMiner) find(versionBits uint32, nonceBelow uint32) fwShare {
	m.t.Helper()
	j := m.job
	if j == nil {
		m.t.Fatal("no job")
	}
	target := j.ShareTarget()
	en2 := make([]byte, m.en2Size)
	version := j.Version
	if versionBits != 0 {
		version = miner.RolledVersion(j.Version, m.mask, versionBits)
	}
	for e := 0; e < 1<<16; e++ {
		en2[0], en2[1] = byte(e), byte(e>>8)
		for nonce := uint32(0); nonce < 1<<22; nonce++ {
			if nonceBelow > 0 && nonce >= nonceBelow {
				break
			}
			h := j.Hash(en2, j.NTime, nonce, version)
			if target.Meets(&h) && !j.NetworkTarget().Meets(&h) {
				return fwShare{jobID: j.ID, en2: hex.EncodeToString(en2), ntime: j.NTime, nonce: nonce, versionBits: versionBits}
			}
		}
	}
	m.t.Fatal("no share found")
	return fwShare{}
}

// firmwareLimits let tests mine cheaply: difficulty between 1e-6 and 1/4096.
var firmwareLimits = Limits{MinDiff: 1e-6, MaxDiff: 1.0 / 4096, StartDiff: 1.0 / 65536, VardiffTarget: time.Hour}

// TestFirmwareESPMinerBitaxe replays ESP-Miner (Bitaxe) over TLS: the lines
// of bitaxeorg/ESP-Miner components/stratum/stratum_api.c at commit
// 04a3186820fe53cc633023f5b5ae42e799bc9a2a (STRATUM_V1_configure_version_rolling,
// _subscribe, _authorize, _suggest_difficulty, _submit_share), in the order
// of main/tasks/stratum_task.c at 258c4c722d3259604925cbbf465042af232636cb
// (configure id 1, subscribe id 2, authorize id 3, then suggest_difficulty;
// a TLS transport when the pool is configured for it). The mask ffffffff is
// answered with the pool's 1fffe000; the suggestion after authorize
// retargets at once and is clamped to the port's maximum; a share for the
// job sent before the retarget keeps its difficulty; a share with rolled
// version bits (ESP-Miner sends them as the 6th param) is accepted; both
// reach PostgreSQL under the worker name.
func TestFirmwareESPMinerBitaxe(t *testing.T) {
	p := startFirmwarePool(t, firmwareLimits, true, nil)
	m := p.dial(t)
	user := regtestAddress(t, 0x11) + ".bitaxe"
	m.send(`{"jsonrpc": "2.0", "id": 1, "method": "mining.configure", "params": [["version-rolling"], {"version-rolling.mask": "ffffffff"}]}` + "\n")
	m.send(`{"jsonrpc": "2.0", "id": 2, "method": "mining.subscribe", "params": ["bitaxe/BM1370/v2.4.0"]}` + "\n")
	m.send(`{"jsonrpc": "2.0", "id": 3, "method": "mining.authorize", "params": ["` + user + `", "x"]}` + "\n")
	r := m.reply(1)
	var conf map[string]any
	if json.Unmarshal(r.Result, &conf) != nil || conf["version-rolling"] != true || conf["version-rolling.mask"] != "1fffe000" {
		t.Fatalf("configure reply %s", r.raw)
	}
	m.mask = 0x1fffe000
	m.subscribed(2)
	m.expectTrue(3, "authorize")
	m.haveJob()
	first := m.job
	if !near(first.Difficulty, firmwareLimits.StartDiff) {
		t.Fatalf("first job at difficulty %v, want the start %v", first.Difficulty, firmwareLimits.StartDiff)
	}
	old := m.find(0x00006000, 0)

	// The suggestion after authorize (ESP-Miner's default is 1000).
	m.send(`{"jsonrpc": "2.0", "id": 4, "method": "mining.suggest_difficulty", "params": [1000]}` + "\n")
	m.expectTrue(4, "suggest_difficulty")
	m.until("the retarget's job", func(l *msg) bool { return l.Method == wire.MethodNotify })
	if !near(m.diff, firmwareLimits.MaxDiff) || m.job.ID == first.ID {
		t.Fatalf("after suggesting 1000: difficulty %v job %s, want %v and an alias id (lines: %s)", m.diff, m.job.ID, firmwareLimits.MaxDiff, m.rawSeen())
	}
	submit := func(id int, s fwShare) *msg {
		m.send(fmt.Sprintf(`{"jsonrpc": "2.0", "id": %d, "method": "mining.submit", "params": ["%s", "%s", "%s", "%08x", "%08x", "%08x"]}`+"\n",
			id, user, s.jobID, s.en2, s.ntime, s.nonce, s.versionBits))
		return m.reply(id)
	}
	if r := submit(5, old); string(r.Result) != "true" {
		t.Fatalf("share for the job before the retarget: %s", r.raw)
	}
	cur := m.find(0x0000e000, 0)
	if r := submit(6, cur); string(r.Result) != "true" {
		t.Fatalf("share at the suggested difficulty: %s", r.raw)
	}
	got := p.storedShares(t)
	want := []storedShare{
		{regtestAddress(t, 0x11), "bitaxe", first.Difficulty},
		{regtestAddress(t, 0x11), "bitaxe", m.diff},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored shares %v, want %v", got, want)
	}
	if st := p.srv.Stats(); st.VersionBitsUnnegotiated != 0 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestFirmwareNerdMiner replays NerdMiner_v2: the lines of
// BitMaker-hub/NerdMiner_v2 src/stratum.cpp at commit
// 07f9dc72ffc3fd72d514600998193248d3654b61 (tx_mining_subscribe,
// tx_mining_auth with params before id and method, tx_suggest_difficulty
// with "%.10g", tx_mining_submit without spaces and with the nonce printed
// by String(nonce, HEX), i.e. without leading zeros), with
// DEFAULT_DIFFICULTY 0.00015 and the 30 s keepalive (the same
// suggest_difficulty again) of src/mining.h at commit
// 04b200f171216c718b585084085ea300d4932105. The difficulty below 1e-3 is
// honoured, the short nonce is read, and the keepalive changes nothing.
func TestFirmwareNerdMiner(t *testing.T) {
	p := startFirmwarePool(t, Limits{MinDiff: 1e-6, MaxDiff: 1, StartDiff: 1.0 / 65536, VardiffTarget: time.Hour}, false, nil)
	m := p.dial(t)
	user := regtestAddress(t, 0x12) + ".nerd"
	suggest := func(id int) string {
		return fmt.Sprintf(`{"id": %d, "method": "mining.suggest_difficulty", "params": [%.10g]}`+"\n", id, 0.00015)
	}
	m.send(`{"id": 1, "method": "mining.subscribe", "params": ["NerdMinerV2"]}` + "\n")
	m.subscribed(1)
	m.send(`{"params": ["` + user + `", "x"], "id": 2, "method": "mining.authorize"}` + "\n")
	m.send(suggest(3))
	m.expectTrue(2, "authorize")
	m.expectTrue(3, "suggest_difficulty")
	m.until("a job at 0.00015", func(l *msg) bool { return l.Method == wire.MethodNotify && m.diff == 0.00015 })
	if !strings.Contains(m.rawSeen(), `"method":"mining.set_difficulty","params":[0.00015]`) {
		t.Fatalf("set_difficulty 0.00015 not sent as such: %s", m.rawSeen())
	}
	submit := func(id int, s fwShare) *msg {
		m.send(fmt.Sprintf(`{"id": %d, "method": "mining.submit", "params": ["%s","%s","%s","%08x","%x"]}`+"\n",
			id, user, s.jobID, s.en2, s.ntime, s.nonce))
		return m.reply(id)
	}
	s := m.find(0, 1<<22) // a nonce below 2^22: at most 6 hex digits
	if r := submit(4, s); string(r.Result) != "true" {
		t.Fatalf("share with a %d-digit nonce: %s", len(fmt.Sprintf("%x", s.nonce)), r.raw)
	}
	// The keepalive: the same suggestion again, then more work.
	before := len(m.seen)
	m.send(suggest(5))
	m.expectTrue(5, "keepalive suggest_difficulty")
	if r := submit(6, m.findAfter(s)); string(r.Result) != "true" {
		t.Fatalf("share after the keepalive: %s", r.raw)
	}
	for _, l := range m.seen[before:] {
		if l.Method != "" {
			t.Errorf("the keepalive made the server send %s", l.raw)
		}
	}
	got := p.storedShares(t)
	if len(got) != 2 || got[0] != (storedShare{regtestAddress(t, 0x12), "nerd", 0.00015}) || got[1] != got[0] {
		t.Errorf("stored shares %v", got)
	}
}

// submitCgminer finds a share of the current job and submits it as
// cgminer's stratum code formats mining.submit (params first; bmminer-mix
// cgminer.c, as the replays above cite), returning the reply.
func (m *fwMiner) submitCgminer(user string, id int) *msg {
	m.t.Helper()
	s := m.find(0, 0)
	m.send(fmt.Sprintf(`{"params": ["%s", "%s", "%s", "%08x", "%08x"], "id": %d, "method": "mining.submit"}`+"\n",
		user, s.jobID, s.en2, s.ntime, s.nonce, id))
	return m.reply(id)
}

// haveJob reads until the session has a job.
func (m *fwMiner) haveJob() {
	m.t.Helper()
	if m.job == nil {
		m.until("a job", func(l *msg) bool { return l.Method == wire.MethodNotify })
	}
}

// near reports whether a is b within the vardiff's rounding (3 significant
// digits).
func near(a, b float64) bool { return a > 0.99*b && a < 1.01*b }

// findAfter finds a share of the current job other than prev.
func (m *fwMiner) findAfter(prev fwShare) fwShare {
	m.t.Helper()
	j := m.job
	target := j.ShareTarget()
	en2, _ := hex.DecodeString(prev.en2)
	for nonce := prev.nonce + 1; nonce != 0; nonce++ {
		h := j.Hash(en2, j.NTime, nonce, j.Version)
		if target.Meets(&h) && !j.NetworkTarget().Meets(&h) {
			return fwShare{jobID: j.ID, en2: prev.en2, ntime: j.NTime, nonce: nonce}
		}
	}
	m.t.Fatal("no share found")
	return fwShare{}
}

// TestFirmwareBmminerAntminer replays bmminer as on stock Antminers (a
// cgminer 4.9 fork): the lines of bitmaintech/bmminer-mix util.c at commit
// 9ad5588bae88028dd5174b3e24de823d1463989f: initiate_stratum's subscribe
// with "bmminer/<version>", subscribe_extranonce, auth_stratum, the
// mining.multi_version bmminer sends after authorize (answered with error
// 20; bmminer only logs it), and cgminer's submit with params first. On a
// resubscribe bmminer sends empty params (no user agent): the pool then
// asks client.get_version, and bmminer's send_version answer
// ({"id": %d, "result": "bmminer/…", "error": null}) and send_pong answer
// to a ping ({"id": %d, "result": "pong", "error": null}) are read as
// replies, not as malformed requests.
func TestFirmwareBmminerAntminer(t *testing.T) {
	p := startFirmwarePool(t, firmwareLimits, false, nil)
	user := regtestAddress(t, 0x13) + ".s9"
	m := p.dial(t)
	m.send(`{"id": 0, "method": "mining.subscribe", "params": ["bmminer/2.0.0"]}` + "\n")
	m.subscribed(0)
	m.send(`{"id": 1, "method": "mining.extranonce.subscribe", "params": []}` + "\n")
	m.expectTrue(1, "extranonce.subscribe")
	m.send(`{"id": 2, "method": "mining.authorize", "params": ["` + user + `", "x"]}` + "\n")
	m.expectTrue(2, "authorize")
	m.send(`{"id": 3, "method": "mining.multi_version", "params": [4]}` + "\n")
	if r := m.reply(3); r.errCode() != wire.CodeOther {
		t.Fatalf("multi_version: %s", r.raw)
	}
	m.haveJob()
	if r := m.submitCgminer(user, 4); string(r.Result) != "true" {
		t.Fatalf("submit: %s", r.raw)
	}
	for _, l := range m.seen {
		if l.Method == wire.MethodGetVersion {
			t.Errorf("client.get_version sent to a miner that named itself: %s", l.raw)
		}
	}

	// The resubscribe without a user agent.
	m2 := p.dial(t)
	m2.send(`{"id": 5, "method": "mining.subscribe", "params": []}` + "\n")
	m2.subscribed(5)
	m2.send(`{"id": 6, "method": "mining.authorize", "params": ["` + user + `", "x"]}` + "\n")
	m2.expectTrue(6, "authorize")
	gv := m2.until("client.get_version", func(l *msg) bool { return l.Method == wire.MethodGetVersion })
	var id int
	if json.Unmarshal(gv.ID, &id) != nil || id == 0 {
		t.Fatalf("client.get_version id %s: cgminer answers only a non-zero integer id", gv.ID)
	}
	m2.send(fmt.Sprintf(`{"id": %d, "result": "bmminer/2.0.0", "error": null}`+"\n", id))
	m2.send(fmt.Sprintf(`{"id": %d, "result": "pong", "error": null}`+"\n", 7))
	m2.haveJob()
	if r := m2.submitCgminer(user, 8); string(r.Result) != "true" {
		t.Fatalf("submit after the replies: %s", r.raw)
	}
	if st := p.srv.Stats(); st.Responses != 2 || st.Malformed != 0 {
		t.Errorf("responses %d malformed %d, want 2 and 0", st.Responses, st.Malformed)
	}
	if got := p.storedShares(t); len(got) != 2 || got[0].worker != "s9" || got[1].worker != "s9" {
		t.Errorf("stored shares %v", got)
	}
}

// TestFirmwareBraiinsOS replays Braiins OS. Its miner (bosminer) is closed
// source; its documented Stratum v1 behaviour is BIP 310, which Braiins
// wrote: the configure request of the BIP's example (bitcoin/bips
// bip-0310.mediawiki), asking minimum-difficulty and version-rolling with
// mask 1fffe000 and min-bit-count 2, then shares with the rolled bits as
// the 6th param. The floor is honoured (clamped to the port), the mask
// granted, and a rolled share stored.
func TestFirmwareBraiinsOS(t *testing.T) {
	p := startFirmwarePool(t, firmwareLimits, false, nil)
	user := regtestAddress(t, 0x14) + ".bos"
	m := p.dial(t)
	m.send(`{"method": "mining.configure","id": 1,"params": [["minimum-difficulty", "version-rolling"],{"minimum-difficulty.value": 2048, "version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}]}` + "\n")
	r := m.reply(1)
	var conf map[string]any
	if json.Unmarshal(r.Result, &conf) != nil || conf["version-rolling"] != true || conf["version-rolling.mask"] != "1fffe000" ||
		conf["minimum-difficulty"] != true {
		t.Fatalf("configure reply %s", r.raw)
	}
	m.mask = 0x1fffe000
	m.send(`{"id": 2, "method": "mining.subscribe", "params": ["bosminer/1.0"]}` + "\n")
	m.subscribed(2)
	m.send(`{"id": 3, "method": "mining.authorize", "params": ["` + user + `", ""]}` + "\n")
	m.expectTrue(3, "authorize")
	m.haveJob()
	if !near(m.diff, firmwareLimits.MaxDiff) {
		t.Fatalf("difficulty %v: want the floor 2048 clamped to the port's %v", m.diff, firmwareLimits.MaxDiff)
	}
	s := m.find(0x1fffe000, 0)
	m.send(fmt.Sprintf(`{"id": 4, "method": "mining.submit", "params": ["%s", "%s", "%s", "%08x", "%08x", "%08x"]}`+"\n",
		user, s.jobID, s.en2, s.ntime, s.nonce, s.versionBits))
	if r := m.reply(4); string(r.Result) != "true" {
		t.Fatalf("rolled share: %s", r.raw)
	}
	if got := p.storedShares(t); len(got) != 1 || got[0].worker != "bos" {
		t.Errorf("stored shares %v", got)
	}
}

// TestFirmwareWhatsminerLongUserNames replays a Whatsminer's cgminer-style
// lines with user names at the limits OCEAN-xyz/datum_gateway documents in
// doc/usernames.md at commit aa2bd4b34ed334503e46806378c77aa6ee269315:
// Whatsminer overflows beyond 127 characters, DATUM takes up to 191. Both
// lengths authorize, and the whole worker name reaches PostgreSQL. The
// shares carry version bits without mining.configure (inside the pool's
// mask): accepted and counted.
func TestFirmwareWhatsminerLongUserNames(t *testing.T) {
	p := startFirmwarePool(t, firmwareLimits, false, nil)
	address := regtestAddress(t, 0x15)
	var want []storedShare
	for i, total := range []int{127, 191} {
		worker := strings.Repeat("w", total-len(address)-1)
		user := address + "." + worker
		m := p.dial(t)
		m.send(`{"id": 1, "method": "mining.subscribe", "params": ["btminer/1.0"]}` + "\n")
		m.subscribed(1)
		m.send(`{"params": ["` + user + `", "123"], "id": 2, "method": "mining.authorize"}` + "\n")
		m.expectTrue(2, fmt.Sprintf("authorize a %d-character user name", len(user)))
		m.haveJob()
		m.mask = 0x1fffe000 // never negotiated: the pool's mask
		s := m.find(0x00400000, 0)
		m.send(fmt.Sprintf(`{"params": ["%s", "%s", "%s", "%08x", "%08x", "%08x"], "id": %d, "method": "mining.submit"}`+"\n",
			user, s.jobID, s.en2, s.ntime, s.nonce, s.versionBits, 3))
		if r := m.reply(3); string(r.Result) != "true" {
			t.Fatalf("submit as a %d-character user: %s", len(user), r.raw)
		}
		want = append(want, storedShare{address, worker, m.job.Difficulty})
		if n := p.srv.Stats().VersionBitsUnnegotiated; n != uint64(i+1) {
			t.Errorf("VersionBitsUnnegotiated = %d, want %d", n, i+1)
		}
	}
	if got := p.storedShares(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored shares %v\nwant %v", got, want)
	}
}

// TestFirmwareNiceHash replays NiceHash's side of a rental as its
// specification for mining.extranonce.subscribe gives it
// (https://www.nicehash.com/help/patches-for-extranoncesubscription):
// subscribe with a null session id, then {"id": X, "method":
// "mining.extranonce.subscribe", "params": []}, answered true. stratumd
// never changes a session's extranonce1, so no mining.set_extranonce is
// ever due; the subscribe's extranonce1 stays the one the work is judged
// with. On a high-difficulty port (start 500,000) the difficulty is sent
// as a plain number and work under it is refused with 23.
func TestFirmwareNiceHash(t *testing.T) {
	p := startFirmwarePool(t, Limits{MinDiff: 500000, MaxDiff: 1 << 40, StartDiff: 500000, VardiffTarget: time.Hour}, false, nil)
	user := regtestAddress(t, 0x16) + ".nh"
	m := p.dial(t)
	m.send(`{"id": 1, "method": "mining.subscribe", "params": ["NiceHash/1.0.0", null]}` + "\n")
	m.subscribed(1)
	m.send(`{"id": 2, "method": "mining.extranonce.subscribe", "params": []}` + "\n")
	m.expectTrue(2, "extranonce.subscribe")
	m.send(`{"id": 3, "method": "mining.authorize", "params": ["` + user + `", "x"]}` + "\n")
	m.expectTrue(3, "authorize")
	m.haveJob()
	if !strings.Contains(m.rawSeen(), `"method":"mining.set_difficulty","params":[500000]`) {
		t.Fatalf("difficulty 500000 not sent as a plain number: %s", m.rawSeen())
	}
	if m.en2Size < 2 {
		t.Errorf("extranonce2 size %d: NiceHash keeps 1-2 bytes of it for itself", m.en2Size)
	}
	// Work found at a low difficulty is judged at 500,000.
	low := *m.job
	low.Difficulty = 1.0 / 65536
	m.job = &low
	s := m.find(0, 0)
	m.send(fmt.Sprintf(`{"id": 4, "method": "mining.submit", "params": ["%s", "%s", "%s", "%08x", "%08x"]}`+"\n",
		user, s.jobID, s.en2, s.ntime, s.nonce))
	if r := m.reply(4); r.errCode() != wire.CodeLowDifficulty {
		t.Fatalf("low share at 500000: %s", r.raw)
	}
	for _, l := range m.seen {
		if l.Method == wire.MethodSetExtranonce {
			t.Errorf("set_extranonce sent though extranonce1 did not change: %s", l.raw)
		}
	}
}

// TestFirmwarePing: a miner's mining.ping is answered "pong" (the answer
// cgminer-family miners give the pool's ping, bmminer-mix util.c
// send_pong, above), and the session goes on.
func TestFirmwarePing(t *testing.T) {
	p := startFirmwarePool(t, firmwareLimits, false, nil)
	m := p.dial(t)
	m.send(`{"id": 1, "method": "mining.ping", "params": []}` + "\n")
	if r := m.reply(1); string(r.Result) != `"pong"` || r.errCode() != 0 {
		t.Fatalf("ping: %s", r.raw)
	}
	m.send(`{"id": 2, "method": "mining.subscribe", "params": ["x/1"]}` + "\n")
	m.subscribed(2)
}
