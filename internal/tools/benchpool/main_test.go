package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/stratumd/stratumd/internal/testutil"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestBenchpoolAcceptsAShare starts benchpool in-process on a random port,
// mines one share through it with the in-repo miner and checks that the
// share is accepted, lands in PostgreSQL under the miner's user, and that a
// new tip reaches the miner as a clean notify.
func TestBenchpoolAcceptsAShare(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	addrCh := make(chan net.Addr, 1)
	cfg, err := parseFlags([]string{
		"-listen", "127.0.0.1:0", "-min-diff", "0.000001", "-max-diff", "0.000001",
		"-tip-every", "200ms", "-stats-every", "0", "-txs", "3",
	}, func(string) string { return dbURL }, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.listening = func(a net.Addr) { addrCh <- a }

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	poolCtx, stopPool := context.WithCancel(ctx)
	defer stopPool()
	var out testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- runPool(poolCtx, cfg, &out, discardLogger()) }()
	var addr net.Addr
	select {
	case addr = <-addrCh:
	case err := <-done:
		t.Fatalf("benchpool stopped early: %v", err)
	}

	user := regtestAddress(t)
	m, err := miner.Dial(ctx, addr.String(), miner.Options{User: user, Workers: []string{"w1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// A tip may make a share stale (code 21); at least one of three is
	// accepted, and exactly the accepted ones must reach PostgreSQL.
	results, err := m.Mine(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, r := range results {
		switch {
		case r.MeetsNetwork:
			t.Fatal("a share met the network target: the benchmark pool must not make blocks")
		case r.Accepted:
			accepted++
		case r.Error == nil || r.Error.Code != 21:
			t.Fatalf("share rejected: %+v", r.Error)
		}
	}
	if accepted == 0 {
		t.Fatal("no share accepted")
	}
	// Tips made by -tip-every arrive as clean notifies. Once the second
	// has arrived, benchpool has recorded the first one's latency (it
	// makes a tip only after the previous one's fan-out is done).
	seen := 0
	if evs := m.Events(); len(evs) > 0 {
		seen = evs[len(evs)-1].Seq
	}
	prev := m.CurrentJob().PrevHash
	for range 2 {
		e, err := m.WaitEvent(ctx, func(e miner.Event) bool {
			return e.Seq > seen && e.Job != nil && e.Job.Clean
		})
		if err != nil {
			t.Fatalf("no clean notify for a new tip: %v", err)
		}
		if e.Job.PrevHash == prev {
			t.Fatalf("clean notify on the same previous block %v", prev)
		}
		seen, prev = e.Seq, e.Job.PrevHash
	}

	stopPool()
	if err := <-done; err != nil {
		t.Fatalf("benchpool: %v", err)
	}
	text := out.String()
	for _, want := range []string{"benchpool pid=", "listen=" + addr.String(),
		fmt.Sprintf("server: accepted=%d ", accepted),
		fmt.Sprintf("postgresql: %d shares added", accepted), "tip → first notify written"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	var worker string
	if err := conn.QueryRow(ctx, `SELECT count(*), max(worker) FROM shares WHERE username = $1`, user).Scan(&n, &worker); err != nil {
		t.Fatal(err)
	}
	if n != accepted || worker != "w1" {
		t.Fatalf("shares in PostgreSQL for %s: %d (worker %q), want %d (w1)", user, n, worker, accepted)
	}
}

func TestParseFlagsRefusesBadInput(t *testing.T) {
	env := func(string) string { return "postgres://x" }
	for _, args := range [][]string{
		{"-node", "rpc"},
		{"-min-diff", "0"},
		{"-min-diff", "2", "-max-diff", "1"},
		{"-instance", "256"},
		{"-network-diff", "0.5"},
		{"-tip-every", "-1s"},
		{"extra"},
	} {
		if _, err := parseFlags(args, env, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if _, err := parseFlags(nil, func(string) string { return "" }, &bytes.Buffer{}); err == nil {
		t.Error("no database accepted")
	}
}

// regtestAddress is a P2WPKH regtest address.
func regtestAddress(t *testing.T) string {
	t.Helper()
	a, err := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{7}, 20), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a.EncodeAddress()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
