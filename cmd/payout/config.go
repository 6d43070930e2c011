package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/payout"
)

// config is payout's whole configuration after flags, environment and file.
type config struct {
	ConfigFile string
	DB         string
	Network    string
	payout.Config
	WalletPass, WalletPassphrase, NodePass string // raw (file:PATH allowed)
	JSON                                   bool
	LogLevel                               string
	PaymentID                              int64 // bump, abandon
}

func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*config, []string, error) {
	c := &config{}
	o := &c.Config.Options
	fs := flag.NewFlagSet("payout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: payout run [--dry-run] [--json] | payout status [--json] | payout bump ID --fee-rate N | payout abandon ID [--fee-rate N]\n       (flags also PAYOUT_<NAME> and --config TOML)")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.ConfigFile, "config", "", "TOML configuration file")
	fs.StringVar(&c.DB, "db", "", "PostgreSQL connection string (default $DATABASE_URL)")
	fs.StringVar(&c.Network, "network", "mainnet", "mainnet, testnet3, signet, regtest or simnet")
	fs.StringVar(&c.Config.Wallet.URL, "wallet-url", "", "btcwallet RPC URL, http(s)://host:port")
	fs.StringVar(&c.Config.Wallet.User, "wallet-user", "", "btcwallet RPC user")
	fs.StringVar(&c.WalletPass, "wallet-pass", "", "btcwallet RPC password; file:PATH reads it from a file")
	fs.StringVar(&c.Config.Wallet.CertFile, "wallet-cert", "", "btcwallet RPC TLS certificate (https)")
	fs.StringVar(&c.WalletPassphrase, "wallet-passphrase", "", "wallet private passphrase, to unlock it while signing; file:PATH reads it from a file")
	fs.StringVar(&c.Config.Node.URL, "node-url", "", "node RPC URL (default: the wallet's, which forwards chain calls to btcd)")
	fs.StringVar(&c.Config.Node.User, "node-user", "", "node RPC user")
	fs.StringVar(&c.NodePass, "node-pass", "", "node RPC password; file:PATH reads it from a file")
	fs.StringVar(&c.Config.Node.CertFile, "node-cert", "", "node RPC TLS certificate (https)")
	fs.Float64Var(&o.PPLNSFactor, "pplns-factor", 2, "PPLNS window N = factor × the block's network difficulty")
	fs.IntVar(&o.FeeBPS, "fee-bps", 0, "pool fee in basis points (100 = 1 %)")
	fs.Int64Var(&o.MinPayout, "min-payout", 1000000, "pay balances at or above this many satoshis")
	fs.Int64Var(&o.FeeRate, "fee-rate", 2, "payment transaction fee rate, sat/vB (bump: the replacement's; abandon: the conflict's, at least 1 above the payment's)")
	fs.Int64Var(&o.MaturityMargin, "maturity-margin", 10, "credit blocks at coinbase maturity (100) + this many confirmations")
	fs.IntVar(&o.MaxOutputs, "max-outputs", 200, "most outputs per payment transaction")
	fs.IntVar(&o.ConflictConfirmations, "conflict-confirmations", 6, "confirmations of a conflicting spend (abandon, or inputs spent elsewhere) before a payment's outputs count as unpaid again")
	fs.BoolVar(&o.KeepForeignLocks, "keep-foreign-locks", false, "release only wallet locks of outputs a payment recorded (set when outputs of this wallet are locked by hand)")
	fs.BoolVar(&c.Config.DryRun, "dry-run", false, "run: report what would be credited and paid; write and send nothing")
	fs.BoolVar(&c.JSON, "json", false, "print JSON instead of tables")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	positional, err := cliconf.Parse(fs, args, cliconf.Options{EnvPrefix: "PAYOUT", ConfigFlag: "config", LookupEnv: lookupEnv})
	if err != nil {
		return nil, nil, err
	}
	if c.DB == "" {
		c.DB, _ = lookupEnv("DATABASE_URL")
	}
	c.Config.DB = c.DB
	bad := func(setting, format string, a ...any) error {
		return fmt.Errorf("%w: --%s: %s", cliconf.ErrConfig, setting, fmt.Sprintf(format, a...))
	}
	switch {
	case len(positional) == 1 && (positional[0] == "run" || positional[0] == "status"):
	case len(positional) == 2 && (positional[0] == "bump" || positional[0] == "abandon"):
		if c.PaymentID, err = strconv.ParseInt(positional[1], 10, 64); err != nil || c.PaymentID < 1 {
			return nil, nil, fmt.Errorf("%w: %s: payment id %q", cliconf.ErrConfig, positional[0], positional[1])
		}
	default:
		fs.Usage()
		return nil, nil, fmt.Errorf("%w: want one command: run, status, bump ID or abandon ID; got %q", cliconf.ErrConfig, positional)
	}
	if c.DB == "" {
		return nil, nil, bad("db", "no database: set --db, PAYOUT_DB or DATABASE_URL")
	}
	if o.Params, err = chain.NetworkParams(c.Network); err != nil {
		return nil, nil, bad("network", "%v", err)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, nil, bad("log-level", "%q", c.LogLevel)
	}
	o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	for _, s := range []struct {
		name string
		raw  string
		dst  *string
	}{{"wallet-pass", c.WalletPass, &c.Config.Wallet.Pass}, {"wallet-passphrase", c.WalletPassphrase, &c.Config.WalletPassphrase},
		{"node-pass", c.NodePass, &c.Config.Node.Pass}} {
		if *s.dst, err = cliconf.Secret(s.raw, nil); err != nil {
			return nil, nil, bad(s.name, "%v", err)
		}
	}
	if positional[0] != "status" {
		if c.Config.Wallet.URL == "" {
			return nil, nil, bad("wallet-url", "required for %s", positional[0])
		}
		// Check the money settings now, with the flag names in the message.
		if err := o.Check(); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", cliconf.ErrConfig, err)
		}
	}
	return c, positional, nil
}

// run parses the configuration and does the command. kill is what the
// PAYOUT_TEST_KILL_STEP hook calls (main: SIGKILL to this process).
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), kill func(), stdout, stderr io.Writer) error {
	c, positional, err := parseConfig(args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	spec, _ := lookupEnv(killStepEnv)
	if c.Config.Options.StepHook, err = killStepHook(spec, kill); err != nil {
		return err
	}
	if c.Config.Options.StepHook, err = pauseStepHook(lookupEnv, os.Stdin, stderr, c.Config.Options.StepHook); err != nil {
		return err
	}
	var out interface{ WriteText(io.Writer) error }
	var runErr error
	switch positional[0] {
	case "run":
		rep, err := payout.Run(ctx, c.Config)
		if rep == nil {
			return err
		}
		out, runErr = rep, err
	case "status":
		st, err := payout.ReadStatusDB(ctx, c.DB, c.Config.Options.Params)
		if err != nil {
			return err
		}
		out = st
	case "bump", "abandon":
		do := payout.Bump
		if positional[0] == "abandon" {
			do = payout.Abandon
		}
		rep, err := do(ctx, c.Config, c.PaymentID)
		if rep == nil {
			return err
		}
		out, runErr = rep, err
	}
	if c.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if err := out.WriteText(stdout); err != nil {
		return err
	}
	return runErr
}
