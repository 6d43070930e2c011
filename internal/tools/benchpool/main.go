package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Node kinds of -node.
const (
	nodeChaintest = "chaintest"
	nodeEmbedded  = "embedded"
)

// config is one benchpool run.
type config struct {
	Listen      string
	DB          string
	MinDiff     float64
	MaxDiff     float64
	TipEvery    time.Duration
	SpoolDir    string
	Instance    uint8
	Node        string
	NetworkDiff float64
	Txs         int
	DataDir     string
	Duration    time.Duration
	StatsEvery  time.Duration
	LogLevel    slog.Level
	CPUProfile  string
	PprofListen string

	// listening, when set, is told the listener's address (tests).
	listening func(net.Addr)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "benchpool:", err)
		}
		os.Exit(2)
	}
}

// run parses the flags and runs the pool until ctx ends or -duration passes.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	return runPool(ctx, cfg, stdout, log)
}

// parseFlags turns the command line into a config.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("benchpool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      config
		instance uint
		level    string
	)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:3334", "stratum listener host:port (port 0: any free port)")
	fs.StringVar(&cfg.DB, "db", getenv("DATABASE_URL"), "PostgreSQL connection string (default $DATABASE_URL); migrated on start")
	fs.Float64Var(&cfg.MinDiff, "min-diff", 1.0/65536, "least share difficulty")
	fs.Float64Var(&cfg.MaxDiff, "max-diff", 1.0/65536, "greatest share difficulty (equal to -min-diff: pinned)")
	fs.DurationVar(&cfg.TipEvery, "tip-every", 0, "make a new tip every interval: chaintest advances, embedded mines a block (0: never)")
	fs.StringVar(&cfg.SpoolDir, "spool-dir", "", "share spool directory (default: a temporary directory removed at exit)")
	fs.UintVar(&instance, "instance", 0, "instance id: first byte of every extranonce1 (0-255)")
	fs.StringVar(&cfg.Node, "node", nodeChaintest, "chain source: chaintest (high network difficulty, no share is a block) or embedded (btcd on regtest)")
	fs.Float64Var(&cfg.NetworkDiff, "network-diff", 1e9, "chaintest: network difficulty of the templates")
	fs.IntVar(&cfg.Txs, "txs", 0, "chaintest: transactions in every template (a longer merkle branch per share)")
	fs.StringVar(&cfg.DataDir, "datadir", "", "embedded: node data directory (default: a temporary directory removed at exit)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	fs.DurationVar(&cfg.StatsEvery, "stats-every", 5*time.Second, "print a stats line every interval (0: never)")
	fs.StringVar(&level, "log-level", "warn", "debug, info, warn or error")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&cfg.PprofListen, "pprof", "", "serve net/http/pprof on this host:port (heap, goroutines, MemStats)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return config{}, fmt.Errorf("-log-level %q: %w", level, err)
	}
	if instance > 255 {
		return config{}, fmt.Errorf("-instance %d: want 0-255", instance)
	}
	cfg.Instance = uint8(instance)
	switch {
	case cfg.DB == "":
		return config{}, errors.New("no database: set -db or DATABASE_URL")
	case cfg.Node != nodeChaintest && cfg.Node != nodeEmbedded:
		return config{}, fmt.Errorf("-node %q: want %s or %s", cfg.Node, nodeChaintest, nodeEmbedded)
	case !(cfg.MinDiff > 0) || !(cfg.MaxDiff >= cfg.MinDiff):
		return config{}, fmt.Errorf("-min-diff %v, -max-diff %v: want 0 < min <= max", cfg.MinDiff, cfg.MaxDiff)
	case !(cfg.NetworkDiff >= 1):
		return config{}, fmt.Errorf("-network-diff %v: want at least 1", cfg.NetworkDiff)
	case cfg.Txs < 0 || cfg.TipEvery < 0 || cfg.Duration < 0 || cfg.StatsEvery < 0:
		return config{}, errors.New("-txs, -tip-every, -duration and -stats-every must not be negative")
	}
	return cfg, nil
}

// pct formats a duration in milliseconds with three decimals.
func pct(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64) + " ms"
}
