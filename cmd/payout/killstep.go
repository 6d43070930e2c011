package main

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/stratumd/stratumd/internal/cliconf"
)

// killStepEnv names the test-only environment variable that makes payout
// kill itself with SIGKILL at the K-th step boundary it reaches (see the
// command's documentation).
const killStepEnv = "PAYOUT_TEST_KILL_STEP"

// killStepHook returns a payout.Options.StepHook that calls kill at the
// k-th call (1-based) for spec = "k", or nil for an empty spec. kill is
// expected not to return (SIGKILL to the own process); if it does, the
// hook reports an error so that the run stops there all the same.
func killStepHook(spec string, kill func()) (func(step string) error, error) {
	if spec == "" {
		return nil, nil
	}
	k, err := strconv.ParseInt(spec, 10, 64)
	if err != nil || k < 1 {
		return nil, fmt.Errorf("%w: %s=%q: want a step number ≥ 1", cliconf.ErrConfig, killStepEnv, spec)
	}
	var n atomic.Int64
	return func(step string) error {
		if n.Add(1) != k {
			return nil
		}
		kill()
		return fmt.Errorf("%s=%d: killed at step %q", killStepEnv, k, step)
	}, nil
}
