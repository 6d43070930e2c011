package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/stratumd/stratumd/internal/payout"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	kill := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	err := run(ctx, os.Args[1:], os.LookupEnv, kill, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, payout.ErrLocked):
		fmt.Fprintln(os.Stderr, "payout: another payout run is in progress; nothing done")
		os.Exit(75)
	default:
		fmt.Fprintln(os.Stderr, "payout:", err)
		os.Exit(1)
	}
}
