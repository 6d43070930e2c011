package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestMain lets a test run this test binary as the payout command
// (PAYOUT_TEST_AS_MAIN=1, the command's arguments after the binary).
func TestMain(m *testing.M) {
	if os.Getenv("PAYOUT_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestKillStepHookCounts(t *testing.T) {
	if h, err := killStepHook("", nil); h != nil || err != nil {
		t.Fatalf("unset: %v %v", h != nil, err)
	}
	for _, bad := range []string{"0", "-1", "x", "1.5"} {
		if _, err := killStepHook(bad, nil); !errors.Is(err, cliconf.ErrConfig) {
			t.Errorf("%q: %v, want a configuration error", bad, err)
		}
	}
	var kills []int
	n := 0
	h, err := killStepHook("3", func() { kills = append(kills, n) })
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		n = i
		err := h("step")
		if (i == 3) != (err != nil) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if len(kills) != 1 || kills[0] != 3 {
		t.Fatalf("killed at calls %v, want [3]", kills)
	}
}

// TestKillStepKillsTheProcess runs the command on an empty ledger with a
// wallet that has no locks: its two step boundaries are "classified" and
// "locks-reconciled", so PAYOUT_TEST_KILL_STEP=2 ends the process by
// SIGKILL and 3 lets it finish normally.
func TestKillStepKillsTheProcess(t *testing.T) {
	url := pgtest.NewDatabase(t)
	// A wallet that answers listlockunspent with no locks, the only call
	// a run on an empty ledger makes.
	wallet := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Method != "listlockunspent" {
			http.Error(w, "unexpected call "+req.Method, http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"result":[],"error":null,"id":%s}`, req.ID)
	}))
	defer wallet.Close()
	payout := func(k string) error {
		cmd := exec.Command(os.Args[0], "run", "--db", url, "--wallet-url", wallet.URL, "--wallet-user", "u", "--wallet-pass", "p", "--network", "regtest", "--log-level", "error")
		cmd.Env = append(os.Environ(), "PAYOUT_TEST_AS_MAIN=1", killStepEnv+"="+k)
		out, err := cmd.CombinedOutput()
		t.Logf("PAYOUT_TEST_KILL_STEP=%s: %v\n%s", k, err, out)
		return err
	}
	for _, k := range []string{"1", "2"} {
		err := payout(k)
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("step %s: %v, want killed", k, err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("step %s: %v, want SIGKILL", k, err)
		}
	}
	if err := payout("3"); err != nil {
		t.Fatalf("step 3 of a two-step run: %v, want a normal exit", err)
	}
}
