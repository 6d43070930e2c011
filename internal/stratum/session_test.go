package stratum

import (
	"errors"
	"github.com/stratumd/stratumd/internal/stratum/wire"

	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSubscribeResultShape(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	c1, c2 := h.dial(), h.dial()
	r1 := c1.call(wire.MethodSubscribe, "cpuminer/2.5.1")
	r2 := c2.call(wire.MethodSubscribe)
	var res []json.RawMessage
	if err := json.Unmarshal(r1.Result, &res); err != nil || len(res) != 3 {
		t.Fatalf("result %s", r1.raw)
	}
	var subs [][]string
	if err := json.Unmarshal(res[0], &subs); err != nil || len(subs) != 2 ||
		subs[0][0] != wire.MethodSetDifficulty || subs[1][0] != wire.MethodNotify {
		t.Errorf("subscriptions %s", res[0])
	}
	var en1 string
	var en2n int
	json.Unmarshal(res[1], &en1)
	json.Unmarshal(res[2], &en2n)
	if len(en1) != 8 || !strings.HasPrefix(en1, "01") || en2n != 8 {
		t.Errorf("extranonce1 %q size %d", en1, en2n)
	}
	var res2 []json.RawMessage
	json.Unmarshal(r2.Result, &res2)
	var en1b string
	json.Unmarshal(res2[1], &en1b)
	if en1b == en1 || !strings.HasPrefix(en1b, "01") {
		t.Errorf("second extranonce1 %q, first %q", en1b, en1)
	}
	if r := c1.call(wire.MethodExtranonceSubscribe); string(r.Result) != "true" {
		t.Errorf("extranonce.subscribe: %s", r.raw)
	}
	if r := c1.call("mining.get_transactions"); r.errCode() != wire.CodeOther {
		t.Errorf("unknown method: %s", r.raw)
	}
	// Still connected after an unknown method.
	if r := c1.call(wire.MethodSubscribe); r.errCode() != 0 {
		t.Errorf("resubscribe: %s", r.raw)
	}
}

func TestExtranonce1Unique(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true})
	seen := map[uint32]bool{}
	for range 1000 {
		n, ok := h.srv.allocExtranonce1()
		if !ok || seen[n] || n > 0xffffff {
			t.Fatalf("allocation %d ok=%v repeated=%v", n, ok, seen[n])
		}
		seen[n] = true
	}
	// A wrapped counter skips numbers in use.
	h.srv.mu.Lock()
	h.srv.en1Next = 0xfffffe
	h.srv.en1Used[0xffffff] = struct{}{}
	h.srv.mu.Unlock()
	if n, _ := h.srv.allocExtranonce1(); n != 0 {
		t.Errorf("after wrap got %x, want 0", n)
	}
}

func TestConfigureVersionRolling(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	for _, tc := range []struct {
		mask string
		want string
	}{
		{"ffffffff", `{"version-rolling":true,"version-rolling.mask":"1fffe000"}`},
		{"00fff000", `{"version-rolling":true,"version-rolling.mask":"00ffe000"}`},
		{"e0000000", `{"version-rolling":false}`},
	} {
		c := h.dial()
		r := c.call(wire.MethodConfigure, []string{"version-rolling"}, map[string]any{"version-rolling.mask": tc.mask, "version-rolling.min-bit-count": 2})
		if string(r.Result) != tc.want {
			t.Errorf("mask %s: %s, want %s", tc.mask, r.Result, tc.want)
		}
	}
	c := h.dial()
	r := c.call(wire.MethodConfigure, []string{"version-rolling", "minimum-difficulty", "subscribe-extranonce"},
		map[string]any{"version-rolling.mask": "1fffe000", "minimum-difficulty.value": 0.5})
	if string(r.Result) != `{"version-rolling":true,"version-rolling.mask":"1fffe000","minimum-difficulty":true}` {
		t.Errorf("configure: %s", r.Result)
	}
	c.handshake(regtestAddress(t, 1) + ".w")
	if c.diff != 0.5 {
		t.Errorf("difficulty %v, want the configured minimum 0.5", c.diff)
	}
}

func TestSuggestDifficultyClamped(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) {
		c.MinDiff, c.MaxDiff, c.StartDiff = 0.001, 512, 0.001
	}})
	for _, tc := range []struct {
		suggest any
		want    float64
	}{
		{0.25, 0.25},
		{1e-9, 0.001},
		{1e9, 512},
		{"64", 64},
		{[]float64{2}, 2},
	} {
		c := h.dial()
		c.call(wire.MethodSubscribe)
		if r := c.call(wire.MethodSuggestDifficulty, tc.suggest); string(r.Result) != "true" {
			t.Fatalf("suggest %v: %s", tc.suggest, r.raw)
		}
		c.call(wire.MethodAuthorize, regtestAddress(t, 1)+".w", "")
		d := c.expect(wire.MethodSetDifficulty)
		if c.diff != tc.want {
			t.Errorf("suggest %v: set_difficulty %s, want %v", tc.suggest, d.raw, tc.want)
		}
		if m := c.expect(wire.MethodNotify); !c.clean {
			t.Errorf("first job not clean: %s", m.raw)
		}
	}
	// After the first job a suggestion retargets: set_difficulty, then the
	// current job again under an alias id, clean=false.
	c := h.dial()
	c.handshake(regtestAddress(t, 1) + ".w")
	first := c.jobID
	c.call(wire.MethodSuggestDifficulty, 8)
	c.expect(wire.MethodSetDifficulty)
	c.expect(wire.MethodNotify)
	if c.diff != 8 || c.jobID != first+".1" || c.clean {
		t.Errorf("after retarget: diff %v job %q clean %v", c.diff, c.jobID, c.clean)
	}
}

func TestAuthorizeOpen(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	c := h.dial()
	c.call(wire.MethodSubscribe)
	mainnet := "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
	for _, user := range []string{mainnet + ".w", "alice.w", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"} {
		if r := c.call(wire.MethodAuthorize, user, "x"); r.errCode() != wire.CodeUnauthorized {
			t.Errorf("%s: %s", user, r.raw)
		}
	}
	addr := regtestAddress(t, 7)
	if r := c.call(wire.MethodAuthorize, addr+".rig1", "x"); string(r.Result) != "true" {
		t.Fatalf("regtest address refused: %s", r.raw)
	}
	c.expect(wire.MethodSetDifficulty)
	c.expect(wire.MethodNotify)
	if r := c.call(wire.MethodAuthorize, addr+".rig2", ""); string(r.Result) != "true" {
		t.Fatalf("second worker: %s", r.raw)
	}
	h.users.mu.Lock()
	ensured := append([]string(nil), h.users.ensured...)
	h.users.mu.Unlock()
	if len(ensured) != 1 || ensured[0] != addr {
		t.Errorf("EnsureUser calls %v, want one for %s (cached after)", ensured, addr)
	}
}

func TestAuthorizePassword(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.Auth = AuthPassword }})
	h.users.passwords["alice"] = "pw"
	c := h.dial()
	c.call(wire.MethodSubscribe)
	for _, tc := range [][2]string{{"bob.w", "pw"}, {"alice.w", "wrong"}, {"alice", ""}} {
		if r := c.call(wire.MethodAuthorize, tc[0], tc[1]); r.errCode() != wire.CodeUnauthorized {
			t.Errorf("%v: %s", tc, r.raw)
		}
	}
	if r := c.call(wire.MethodAuthorize, "alice.w1", "pw"); string(r.Result) != "true" {
		t.Fatalf("alice: %s", r.raw)
	}
	before := h.users.verifyCount()
	for range 5 {
		c2 := h.dial()
		c2.call(wire.MethodSubscribe)
		if r := c2.call(wire.MethodAuthorize, "alice.w2", "pw"); string(r.Result) != "true" {
			t.Fatalf("alice again: %s", r.raw)
		}
	}
	if n := h.users.verifyCount(); n != before {
		t.Errorf("verifications after the first: %d, want cached", n-before)
	}
	if r := c.call(wire.MethodAuthorize, "alice.w3", "other"); r.errCode() != wire.CodeUnauthorized {
		t.Errorf("other password accepted from cache: %s", r.raw)
	}
}

func TestOrderErrors(t *testing.T) {
	h := startHarness(t, harnessOpts{})
	c := h.dial()
	args := submitArgs("w", "1", make([]byte, 8), 0, 0)
	if r := c.call(wire.MethodSubmit, args...); r.errCode() != wire.CodeNotSubscribed {
		t.Errorf("submit before subscribe: %s", r.raw)
	}
	c.call(wire.MethodSubscribe)
	if r := c.call(wire.MethodSubmit, args...); r.errCode() != wire.CodeUnauthorized {
		t.Errorf("submit before authorize: %s", r.raw)
	}
	// Authorize before subscribe works too.
	c2 := h.dial()
	if r := c2.call(wire.MethodAuthorize, regtestAddress(t, 1)+".w", ""); string(r.Result) != "true" {
		t.Fatalf("authorize first: %s", r.raw)
	}
	c2.call(wire.MethodSubscribe)
	c2.expect(wire.MethodSetDifficulty)
	c2.expect(wire.MethodNotify)
}

func TestMalformedDisconnects(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.MaxLineLength = 256 }})
	for _, line := range []string{
		`{"id":1,"method":"mining.subscribe"`,
		`not json`,
		`{"id":[1],"method":"mining.subscribe","params":[]}`,
		`{"id":1,"method":"x","params":[]}` + strings.Repeat(" ", 300),
	} {
		c := h.dial()
		c.sendLine(line)
		got := c.waitClosed()
		if len(got) != 1 || got[0].errCode() != wire.CodeOther {
			t.Errorf("%.40q: got %v before close", line, got)
		}
	}
	if st := h.srv.Stats(); st.Malformed != 4 {
		t.Errorf("malformed count %d", st.Malformed)
	}
}

func TestMalformedBan(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.BanMalformed = 3 }})
	for range 3 {
		c := h.dial()
		c.sendLine("garbage")
		c.waitClosed()
	}
	if !h.srv.Banned("127.0.0.1") {
		t.Fatal("not banned after 3 malformed lines")
	}
	c := h.dial()
	if got := c.waitClosed(); len(got) != 0 {
		t.Errorf("banned connection got %v", got)
	}
	h.clock.Advance(DefaultBanDuration + time.Second)
	c = h.dial()
	if r := c.call(wire.MethodSubscribe); r.errCode() != 0 {
		t.Errorf("after the ban expired: %s", r.raw)
	}
	st := h.srv.Stats()
	if st.Bans != 1 || st.Refused != 1 {
		t.Errorf("bans %d refused %d", st.Bans, st.Refused)
	}
}

func TestPerIPCap(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.MaxConnsPerIP = 2 }})
	c1, c2 := h.dial(), h.dial()
	c1.call(wire.MethodSubscribe)
	c2.call(wire.MethodSubscribe)
	c3 := h.dial()
	if got := c3.waitClosed(); len(got) != 0 {
		t.Errorf("third connection got %v", got)
	}
	c1.conn.Close()
	// Once the first is gone a new one is admitted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c4 := h.dial()
		c4.sendLine(`{"id":1,"method":"mining.subscribe","params":[]}`)
		if m, err := c4.tryRead(5 * time.Second); err == nil && m.errCode() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection admitted after one closed")
		}
	}
	if st := h.srv.Stats(); st.Refused < 1 {
		t.Errorf("refused %d", st.Refused)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond }})
	c := h.dial()
	c.call(wire.MethodSubscribe)
	start := time.Now()
	c.waitClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
}

func TestPanicDropsOnlyThatSession(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true})
	h.srv.hookDispatch = func(method string) {
		if method == "test.panic" {
			panic("injected")
		}
	}
	good, bad := h.dial(), h.dial()
	good.call(wire.MethodSubscribe)
	bad.call(wire.MethodSubscribe)
	bad.sendLine(`{"id":9,"method":"test.panic","params":[]}`)
	bad.waitClosed()
	if r := good.call(wire.MethodExtranonceSubscribe); string(r.Result) != "true" {
		t.Errorf("other session: %s", r.raw)
	}
	if st := h.srv.Stats(); st.Panics != 1 {
		t.Errorf("panics %d", st.Panics)
	}
}

// A miner that never reads fills its socket buffers; the notify fan-out
// closes it after WriteTimeout and the other miners get their jobs in time.
func TestSlowReaderDoesNotStallFanout(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	h := startHarness(t, harnessOpts{config: func(c *Config) {
		c.WriteTimeout = writeTimeout
		c.FanoutWorkers = 2
	}})
	slow := h.dial()
	slow.handshake(regtestAddress(t, 1) + ".slow")
	if tc, ok := slow.conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	fast := make([]*client, 8)
	for i := range fast {
		fast[i] = h.dial()
		fast[i].handshake(regtestAddress(t, 1) + ".fast")
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, c := range fast {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.tryRead(50 * time.Millisecond); err != nil {
					var ne net.Error
					if !(errors.As(err, &ne) && ne.Timeout()) {
						return
					}
				}
			}
		}()
	}
	// Enough new tips to fill the slow socket many times over.
	worst := time.Duration(0)
	n := 0
	for ; n < 50000; n++ {
		h.src.Advance()
		h.waitJob()
		if d := h.srv.Stats().LastFanout; d > worst {
			worst = d
		}
		if h.srv.Stats().WriteTimeouts > 0 {
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d jobs until the slow reader timed out; worst fan-out %v", n, worst)
	st := h.srv.Stats()
	if st.WriteTimeouts != 1 {
		t.Fatalf("write timeouts %d, want the slow reader closed; stats %+v", st.WriteTimeouts, st)
	}
	if worst > writeTimeout+time.Second {
		t.Errorf("worst fan-out %v, beyond the write timeout %v", worst, writeTimeout)
	}
	if st.Connections != int64(len(fast)) {
		t.Errorf("connections %d, want %d", st.Connections, len(fast))
	}
}

// TestAuthorizeOpenCanonical: in open mode an upper-case bech32 address
// (the form QR codes carry) is the same user as its lower-case form: the
// user is ensured once, under the canonical encoding, and a share of the
// upper-case worker is recorded for it; a bare public key in hex, which no
// payout address accepts, is refused.
func TestAuthorizeOpenCanonical(t *testing.T) {
	h := startHarness(t, harnessOpts{bits: hardBits})
	c := h.dial()
	addr := regtestAddress(t, 9)
	upper := strings.ToUpper(addr) + ".rig1"
	c.handshake(upper)
	pubkey := "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
	if r := c.call(wire.MethodAuthorize, pubkey+".w", "x"); r.errCode() != wire.CodeUnauthorized {
		t.Errorf("hex public key as user: %s", r.raw)
	}
	if r := c.call(wire.MethodAuthorize, addr+".rig2", "x"); string(r.Result) != "true" {
		t.Fatalf("lower-case address refused: %s", r.raw)
	}
	h.users.mu.Lock()
	ensured := append([]string(nil), h.users.ensured...)
	h.users.mu.Unlock()
	if len(ensured) != 1 || ensured[0] != addr {
		t.Errorf("EnsureUser calls %v, want one for %s", ensured, addr)
	}
	e := h.srv.currentJob()
	sol := h.mine(c, e, c.diff, false, 0, 0)
	if r := c.call(wire.MethodSubmit, submitArgs(upper, e.job.ID, sol.en2, sol.ntime, sol.nonce)...); string(r.Result) != "true" {
		t.Fatalf("share of the upper-case worker: %s", r.raw)
	}
	h.shares.mu.Lock()
	defer h.shares.mu.Unlock()
	if n := len(h.shares.shares); n != 1 || h.shares.shares[0].Username != addr || h.shares.shares[0].Worker != "rig1" {
		t.Errorf("shares %+v, want one of %s, worker rig1", h.shares.shares, addr)
	}
}
