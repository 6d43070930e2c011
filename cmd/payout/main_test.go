package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/payout"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

func noEnv(string) (string, bool) { return "", false }

func noKill() { panic("PAYOUT_TEST_KILL_STEP kill called") }

func TestStatusTextAndJSON(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"status", "--db", url}, noEnv, noKill, &out, &errb); err != nil {
		t.Fatal(err, errb.String())
	}
	if !strings.Contains(out.String(), "BALANCES") || !strings.Contains(out.String(), "credited") {
		t.Fatalf("status text:\n%s", out.String())
	}
	out.Reset()
	env := func(k string) (string, bool) {
		if k == "PAYOUT_DB" {
			return url, true
		}
		return "", false
	}
	if err := run(context.Background(), []string{"status", "--json"}, env, noKill, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var st payout.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Balances == nil || st.Blocks == nil {
		t.Fatalf("status json %q: %v", out.String(), err)
	}
}

func TestRunRefusesPendingMigrations(t *testing.T) {
	url := pgtest.NewEmptyDatabase(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run", "--db", url, "--wallet-url", "http://127.0.0.1:1", "--network", "regtest"}, noEnv, noKill, &out, &errb)
	if !errors.Is(err, store.ErrPendingMigrations) {
		t.Fatalf("got %v, want pending migrations", err)
	}
}

func TestSecondRunIsRefused(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(0x7061796f7574)); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = run(ctx, []string{"run", "--db", url, "--wallet-url", "http://127.0.0.1:1", "--network", "regtest"}, noEnv, noKill, &out, &errb)
	if !errors.Is(err, payout.ErrLocked) {
		t.Fatalf("got %v, want ErrLocked", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--db", "postgres://x/y"},                                              // no wallet
		{"run", "--db", "postgres://x/y", "--wallet-url", "h:1", "--fee-bps", "10001"}, // fee over 100 %
		{"run", "--db", "postgres://x/y", "--wallet-url", "h:1", "--min-payout", "10"}, // dust
		{"run", "--db", "postgres://x/y", "--wallet-url", "h:1", "--network", "moon"},
		{"pay", "--db", "postgres://x/y"},
		{"bump", "--db", "postgres://x/y", "--wallet-url", "h:1"},         // no payment id
		{"bump", "x", "--db", "postgres://x/y", "--wallet-url", "h:1"},    // not a number
		{"abandon", "0", "--db", "postgres://x/y", "--wallet-url", "h:1"}, // not an id
		{"abandon", "3", "--db", "postgres://x/y"},                        // no wallet
		{"bump", "3", "--db", "postgres://x/y", "--wallet-url", "h:1", "--fee-rate", "-1"},
		{"run", "--db", "postgres://x/y", "--wallet-url", "h:1", "--conflict-confirmations", "-1"},
		{"status"}, // no database
	} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, noEnv, noKill, &out, &errb); !errors.Is(err, cliconf.ErrConfig) {
			t.Errorf("%q: %v, want a configuration error", args, err)
		}
	}
}
