package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
)

// TestReconnectCommand runs `stratumd reconnect HOST:PORT USER` against a
// running server: the user's miner gets client.reconnect to HOST:PORT,
// the other miner keeps its session, and the command prints the count.
func TestReconnectCommand(t *testing.T) {
	pool := stratumtest.Start(t, stratumtest.Config{Bits: 0x1d00ffff, Configure: func(c *stratum.Config) {
		c.AdminPassword = "maintenance"
		c.AdminHasher = password.Argon2id{Params: password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(seed byte) *miner.Miner {
		m, err := miner.Dial(ctx, pool.Addr, miner.Options{User: stratumtest.Address(seed), Workers: []string{"rig"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	moved, stays := dial(1), dial(2)

	pwFile := filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(pwFile, []byte("maintenance\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"--listen", pool.Addr, "--admin-password", "file:" + pwFile, "reconnect", "pool2.example:3334", stratumtest.Address(1)}
	if err := run(ctx, args, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("reconnect: %v (stderr %s)", err, stderr.String())
	}
	if want := "sent the miners of " + stratumtest.Address(1) + " to pool2.example:3334: 1 sessions\n"; stdout.String() != want {
		t.Errorf("output %q, want %q", stdout.String(), want)
	}
	r, err := moved.WaitReconnect(ctx)
	if err != nil || r.Host != "pool2.example" || r.Port != 3334 {
		t.Fatalf("reconnect %+v, %v", r, err)
	}
	if st := pool.Server.Stats(); st.Reconnects != 1 {
		t.Errorf("Reconnects = %d, want 1", st.Reconnects)
	}
	if _, err := stays.Mine(ctx, 1); err != nil {
		t.Errorf("the other miner: %v", err)
	}
	for _, e := range stays.Events() {
		if e.Reconnect != nil {
			t.Errorf("the other miner got client.reconnect %+v", e.Reconnect)
		}
	}
}

func TestReconnectCommandArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want stratum.ReconnectOrder
		err  string
	}{
		{args: []string{"backup.example:3333"}, want: stratum.ReconnectOrder{Host: "backup.example", Port: 3333}},
		{args: []string{"[2001:db8::1]:3333", "alice"}, want: stratum.ReconnectOrder{Host: "2001:db8::1", Port: 3333, User: "alice"}},
		{args: []string{"here", "alice"}, want: stratum.ReconnectOrder{User: "alice"}},
		{args: []string{}, err: "usage"},
		{args: []string{"backup.example"}, err: "HOST:PORT"},
		{args: []string{"backup.example:0"}, err: "port"},
		{args: []string{":3333"}, err: "HOST:PORT"},
		{args: []string{"here", "alice", "bob"}, err: "usage"},
	} {
		got, err := parseReconnectArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want one mentioning %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for listen, want := range map[string]string{"": "127.0.0.1:3333", "0.0.0.0:3340": "127.0.0.1:3340", "[::]:3333": "[::1]:3333", "10.0.0.5:3333": "10.0.0.5:3333"} {
		var l listenList
		if listen != "" {
			l = listenList{{Value: listen, Addr: listen}}
		}
		if got, err := adminAddr(l); err != nil || got != want {
			t.Errorf("adminAddr(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	var stdout bytes.Buffer
	if err := cmdReconnect(context.Background(), &config{}, []string{"here"}, &stdout); err == nil || !strings.Contains(err.Error(), "admin-password") {
		t.Errorf("without an admin password: %v", err)
	}
}
