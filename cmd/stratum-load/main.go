package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/stratumd/stratumd/internal/username"
)

func main() {
	// The tool's heap is mostly its connections' buffers and jobs, alive for
	// the whole run; collecting at every doubling spends CPU that the pool
	// being measured shares. Unless GOGC says otherwise, collect at 4×.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "stratum-load:", err)
		}
		os.Exit(2)
	}
}

// run parses the flags, runs the load and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, asJSON, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rep, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}

// parseFlags turns the command line into a Config.
func parseFlags(args []string, stderr io.Writer) (Config, bool, error) {
	fs := flag.NewFlagSet("stratum-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       Config
		user      string
		password  string
		usersFile string
		asJSON    bool
	)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:3333", "pool address host:port")
	fs.IntVar(&cfg.Conns, "conns", 100, "number of connections")
	fs.Float64Var(&cfg.Rate, "rate", 0, "total submits per second across connections (0: as fast as found)")
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, "how long to submit shares (or stay idle with -idle) once connected")
	fs.StringVar(&user, "user", "", "user for mining.authorize (each connection authorizes user.wN)")
	fs.StringVar(&password, "password", "x", "password for mining.authorize")
	fs.StringVar(&usersFile, "users-file", "", `file of "user[:password]" lines, assigned to connections in turn`)
	fs.Float64Var(&cfg.Ramp, "ramp", 0, "new connections per second (0: as fast as possible)")
	fs.BoolVar(&cfg.Configure, "configure", false, "send mining.configure version-rolling first and roll version bits (ESP-Miner); off: cpuminer")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&cfg.Idle, "idle", false, "keep the connections idle for -duration instead of submitting (fan-out and memory runs)")
	fs.IntVar(&cfg.PID, "pid", 0, "pool process id, to report its RSS per connection")
	fs.IntVar(&cfg.Workers, "workers", defaultWorkers(), "hashing goroutines (leave a core for the readers: their timestamps are the measurements)")
	fs.IntVar(&cfg.Parallel, "parallel", DefaultParallel, "handshakes in progress at most")
	fs.IntVar(&cfg.InFlight, "inflight", DefaultInFlight, "unanswered submits per connection at most")
	fs.DurationVar(&cfg.Settle, "settle", DefaultSettle, "wait after the last handshake before reading the pool's RSS")
	if err := fs.Parse(args); err != nil {
		return Config{}, false, err
	}
	if fs.NArg() > 0 {
		return Config{}, false, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case usersFile != "":
		creds, err := readUsersFile(usersFile)
		if err != nil {
			return Config{}, false, err
		}
		cfg.Users = creds
	case user != "":
		cfg.Users = []Credential{{User: user, Password: password}}
	default:
		return Config{}, false, errors.New("-user or -users-file is required")
	}
	return cfg, asJSON, cfg.Validate()
}

// readUsersFile reads "user[:password]" lines; a solo miner's line,
// "solo:<address>[:password]", keeps its prefix in the user. Blank lines
// and lines starting with # are skipped.
func readUsersFile(path string) ([]Credential, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	defer f.Close()
	var creds []Credential
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// A solo miner's name ("solo:<address>") holds a colon itself.
		solo := ""
		if strings.HasPrefix(line, username.SoloPrefix) {
			solo, line = username.SoloPrefix, line[len(username.SoloPrefix):]
		}
		u, p, ok := strings.Cut(line, ":")
		if !ok {
			p = "x"
		}
		creds = append(creds, Credential{User: solo + u, Password: p})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	if len(creds) == 0 {
		return nil, fmt.Errorf("users file %s: no users", path)
	}
	return creds, nil
}
