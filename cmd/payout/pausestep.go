package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stratumd/stratumd/internal/cliconf"
)

// Test-only environment variables beside PAYOUT_TEST_KILL_STEP; the payout
// kill matrix (internal/e2e/chaos, TestPayoutKill) uses them. Both count
// step boundaries as PAYOUT_TEST_KILL_STEP does: every call of the step
// hook, from 1. Unset or empty: nothing.
const (
	// pauseStepEnv: PAYOUT_TEST_PAUSE_STEP=K, the run waits at the K-th
	// step boundary until a line (or end of file) arrives on stdin, so that
	// a test can act on the wallet in the middle of a run. NAME:N instead
	// of K waits at the N-th boundary called NAME (e.g. built:2, the second
	// payment's inputs locked): where a step falls in the count can vary
	// from run to run.
	pauseStepEnv = "PAYOUT_TEST_PAUSE_STEP"
	// stepLogEnv: PAYOUT_TEST_STEP_LOG=1 writes "payout: test step K NAME"
	// to stderr at every step boundary, before the other hooks act, so
	// that a test knows where a run stopped or was killed.
	stepLogEnv = "PAYOUT_TEST_STEP_LOG"
)

// stepAt is where a test hook acts: at the k-th boundary, or (k == 0) at
// the nth boundary called name.
type stepAt struct {
	k    int
	name string
	nth  int
}

// parseStepAt reads K or NAME:N from the environment variable env; unset
// or empty gives the zero stepAt, which never matches.
func parseStepAt(lookupEnv func(string) (string, bool), env string) (stepAt, error) {
	v, _ := lookupEnv(env)
	if v == "" {
		return stepAt{}, nil
	}
	if name, n, ok := strings.Cut(v, ":"); ok {
		nth, err := strconv.Atoi(n)
		if name == "" || err != nil || nth < 1 {
			return stepAt{}, fmt.Errorf("%w: %s=%q: want a step number from 1 or NAME:N", cliconf.ErrConfig, env, v)
		}
		return stepAt{name: name, nth: nth}, nil
	}
	k, err := strconv.Atoi(v)
	if err != nil || k < 1 {
		return stepAt{}, fmt.Errorf("%w: %s=%q: want a step number from 1 or NAME:N", cliconf.ErrConfig, env, v)
	}
	return stepAt{k: k}, nil
}

// at reports whether the n-th boundary, the seen-th called name, is a.
func (a stepAt) at(n int, name string, seen int) bool {
	if a.k > 0 {
		return n == a.k
	}
	return a.nth > 0 && name == a.name && seen == a.nth
}

// pauseStepHook wraps next (nil or the PAYOUT_TEST_KILL_STEP hook) with the
// step log and the pause the environment asks for; with neither set it
// returns next. At the pause it writes "payout: test pause at step K NAME"
// to stderr and reads a line from stdin.
func pauseStepHook(lookupEnv func(string) (string, bool), stdin io.Reader, stderr io.Writer,
	next func(string) error) (func(string) error, error) {
	pause, err := parseStepAt(lookupEnv, pauseStepEnv)
	if err != nil {
		return nil, err
	}
	logSteps := false
	if v, _ := lookupEnv(stepLogEnv); v != "" {
		if logSteps, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("%w: %s=%q: want 1 or 0", cliconf.ErrConfig, stepLogEnv, v)
		}
	}
	if pause == (stepAt{}) && !logSteps {
		return next, nil
	}
	n := 0
	seen := map[string]int{}
	return func(step string) error {
		n++
		seen[step]++
		if logSteps {
			fmt.Fprintf(stderr, "payout: test step %d %s\n", n, step)
		}
		if pause.at(n, step, seen[step]) {
			fmt.Fprintf(stderr, "payout: test pause at step %d %s\n", n, step)
			bufio.NewReader(stdin).ReadString('\n')
		}
		if next != nil {
			return next(step)
		}
		return nil
	}, nil
}
