// Command payout splits each matured block's reward with PPLNS and pays the
// resulting balances through btcwallet. It is meant to run from cron or a
// systemd timer; every step is idempotent.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "payout: not implemented yet (see the project's issues)")
	os.Exit(2)
}
