package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "stratumd:", err)
		}
		os.Exit(1)
	}
}

// run dispatches to the subcommand named by args (the daemon when none).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, positional, err := parseConfig(args, os.LookupEnv, stderr)
	if err != nil {
		return err
	}
	if len(positional) == 0 {
		return (&daemon{cfg: cfg, args: args}).run(ctx, stderr)
	}
	switch cmd, rest := positional[0], positional[1:]; cmd {
	case "migrate":
		return cmdMigrate(ctx, cfg, rest, stdout)
	case "adduser":
		return cmdAddUser(ctx, cfg, rest, stdin, stdout)
	case "set-address":
		return cmdSetAddress(ctx, cfg, rest, stdout)
	case "import-users":
		return cmdImportUsers(ctx, cfg, rest, stdout)
	case "submit-block":
		return cmdSubmitBlock(ctx, cfg, rest, stdout)
	case "reconnect":
		return cmdReconnect(ctx, cfg, rest, stdout)
	case "password-worker":
		return cmdPasswordWorker(ctx, rest, stdin, stdout)
	case "version":
		fmt.Fprintln(stdout, "stratumd", version())
		return nil
	default:
		return fmt.Errorf("unknown command %q (commands: migrate, adduser, set-address, import-users, submit-block, reconnect, version)", cmd)
	}
}
