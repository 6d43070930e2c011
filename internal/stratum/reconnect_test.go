package stratum

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// handshaken connects a miner (cgminer's lines) as user.worker and waits
// for its first job.
func handshaken(t *testing.T, p *fwPool, user string) *fwMiner {
	t.Helper()
	m := p.dial(t)
	m.send(`{"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.12.0"]}` + "\n")
	m.subscribed(1)
	m.send(`{"id": 2, "method": "mining.authorize", "params": ["` + user + `", "x"]}` + "\n")
	m.expectTrue(2, "authorize")
	m.haveJob()
	return m
}

// pings sends mining.ping and checks that the very next line is its
// "pong": nothing (no client.reconnect) was sent before it.
func pings(t *testing.T, m *fwMiner, id int) {
	t.Helper()
	m.send(fmt.Sprintf(`{"id": %d, "method": "mining.ping", "params": []}`+"\n", id))
	if l := m.read(); !l.isReplyTo(id) || string(l.Result) != `"pong"` {
		t.Fatalf("want the pong first, got %s", l.raw)
	}
}

// reconnected checks that m got client.reconnect with params and then
// was closed.
func reconnected(t *testing.T, m *fwMiner, params string) {
	t.Helper()
	l := m.until("client.reconnect", func(l *msg) bool { return l.Method == wire.MethodReconnect })
	if got := l.raw; got != `{"id":null,"method":"client.reconnect","params":`+params+`}` {
		t.Errorf("reconnect line %s, want params %s", got, params)
	}
	if l, err := m.tryRead(); err == nil {
		t.Errorf("after client.reconnect: %s, want the connection closed", l.raw)
	}
}

// TestReconnectMinersAdminCall: mining.reconnect_miners from an admin
// session sends the named user's sessions client.reconnect to the given
// host and port (with the message shown first) and closes them; the other
// user's session gets nothing and keeps mining; without a user every
// miner goes, the admin's own session excepted; a session that is not an
// admin's is refused.
func TestReconnectMinersAdminCall(t *testing.T) {
	p := startFirmwarePool(t, firmwareLimits, false, func(c *Config) {
		c.AdminPassword = "maintenance"
		c.AdminHasher = password.Argon2id{Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	})
	alice, bob := regtestAddress(t, 0x21), regtestAddress(t, 0x22)
	a1, a2, b := handshaken(t, p, alice+".rig1"), handshaken(t, p, alice+".rig2"), handshaken(t, p, bob+".rig1")

	outsider := handshaken(t, p, bob+".rig2")
	outsider.send(`{"id": 9, "method": "mining.reconnect_miners", "params": ["backup.example", 3334, 5]}` + "\n")
	if r := outsider.reply(9); r.errCode() != wire.CodeUnauthorized {
		t.Fatalf("reconnect_miners from a miner: %s", r.raw)
	}

	admin := p.dial(t)
	admin.send(`{"id": 1, "method": "mining.authorize_admin", "params": ["maintenance"]}` + "\n")
	admin.expectTrue(1, "authorize_admin")
	admin.send(`{"id": 2, "method": "mining.reconnect_miners", "params": ["backup.example", 3334, 5, "` + alice + `", "moving to backup"]}` + "\n")
	if r := admin.reply(2); string(r.Result) != "2" {
		t.Fatalf("reconnect_miners for alice: %s", r.raw)
	}
	for _, m := range []*fwMiner{a1, a2} {
		m.until("client.show_message", func(l *msg) bool {
			return l.Method == wire.MethodShowMessage && string(l.Params[0]) == `"moving to backup"`
		})
		reconnected(t, m, `["backup.example","3334",5]`)
	}
	pings(t, b, 10)
	pings(t, outsider, 11)
	if r := b.submitCgminer(bob+".rig1", 12); string(r.Result) != "true" {
		t.Fatalf("bob's share after alice moved: %s", r.raw)
	}

	// Everyone, back to this pool (empty host), the admin spared.
	admin.send(`{"id": 3, "method": "mining.reconnect_miners", "params": ["", null, 0]}` + "\n")
	if r := admin.reply(3); string(r.Result) != "2" {
		t.Fatalf("reconnect_miners for all: %s", r.raw)
	}
	reconnected(t, b, `[]`)
	reconnected(t, outsider, `[]`)
	pings(t, admin, 4)
	// The sessions' exits count them once their readers have stopped.
	deadline := time.Now().Add(10 * time.Second)
	for p.srv.Stats().SessionsClosed["reconnect"] < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := p.srv.Stats(); st.Reconnects != 4 || st.SessionsClosed["reconnect"] != 4 {
		t.Errorf("Reconnects %d, closed for reconnect %d; want 4 and 4", st.Reconnects, st.SessionsClosed["reconnect"])
	}
}

// TestRequestReconnect is the daemon's reconnect command against the real
// server: with the admin password it moves the named user's miner and
// reports one session; with a wrong password it is refused and moves
// nobody.
func TestRequestReconnect(t *testing.T) {
	p := startFirmwarePool(t, firmwareLimits, false, func(c *Config) {
		c.AdminPassword = "maintenance"
		c.AdminHasher = password.Argon2id{Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	})
	alice, bob := regtestAddress(t, 0x23), regtestAddress(t, 0x24)
	a, b := handshaken(t, p, alice+".rig"), handshaken(t, p, bob+".rig")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	order := ReconnectOrder{Host: "pool2.example", Port: 3333, Wait: 2, User: alice}
	if n, err := RequestReconnect(ctx, p.addr, "wrong", order); !errors.Is(err, ErrAdminRefused) || n != 0 {
		t.Fatalf("wrong admin password: %d, %v", n, err)
	}
	pings(t, a, 20)
	n, err := RequestReconnect(ctx, p.addr, "maintenance", order)
	if err != nil || n != 1 {
		t.Fatalf("RequestReconnect: %d, %v", n, err)
	}
	reconnected(t, a, `["pool2.example","3333",2]`)
	pings(t, b, 21)
}
