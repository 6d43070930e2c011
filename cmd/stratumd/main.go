// Command stratumd is the pool's Stratum v1 server. It runs beside an
// in-process Bitcoin node (or talks to one over RPC), keeps users and shares
// in PostgreSQL, and writes a <height>-<hash>.json share dump per found block.
//
// Usage:
//
//	stratumd [flags]                 run the daemon
//	stratumd migrate [up|down|status] apply or inspect the schema migrations
//	stratumd adduser NAME [--address ADDRESS]
//	                                 create a user; the password is read from stdin
//	stratumd set-address NAME ADDRESS | set-address --clear NAME
//	                                 set or remove a user's payout address
//	stratumd import-users FILE       import bcoin-stratum's users.json
//	stratumd submit-block HASH       hand a stored found block to the node(s) again
//	stratumd version                 print the version
//	stratumd password-worker NICE N  the argon2 child process (see --password-nice)
//
// Every flag may also be set with the environment variable STRATUMD_<NAME>
// (upper case, '-' as '_') or the key <name> in the TOML file given by
// --config; flags win over the environment, which wins over the file.
// Payout addresses are checked for --network. The subcommands' own flags
// (--address, --clear) come from the command line only, before or after
// the command's arguments.
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
	case "password-worker":
		return cmdPasswordWorker(ctx, rest, stdin, stdout)
	case "version":
		fmt.Fprintln(stdout, "stratumd", version())
		return nil
	default:
		return fmt.Errorf("unknown command %q (commands: migrate, adduser, set-address, import-users, submit-block, version)", cmd)
	}
}
