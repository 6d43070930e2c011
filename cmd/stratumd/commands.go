package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/pwworker"
	"github.com/stratumd/stratumd/internal/store"
)

func needDB(cfg *config) error {
	if cfg.DB == "" {
		return fmt.Errorf("%w: --db: no database: set --db, STRATUMD_DB or DATABASE_URL", cliconf.ErrConfig)
	}
	return nil
}

// cmdMigrate applies (up), rolls back one (down) or lists (status) the
// schema migrations, under goose's PostgreSQL session lock.
func cmdMigrate(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	if err := needDB(cfg); err != nil {
		return err
	}
	verb := "up"
	if len(args) > 0 {
		verb = args[0]
	}
	if len(args) > 1 {
		return fmt.Errorf("migrate: one of up, down, status")
	}
	m, err := store.NewMigrator(cfg.DB)
	if err != nil {
		return err
	}
	defer m.Close()
	switch verb {
	case "up":
		applied, err := m.Up(ctx)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			fmt.Fprintln(stdout, "migrations: up to date")
		}
		for _, v := range applied {
			fmt.Fprintf(stdout, "migrations: applied %05d\n", v)
		}
		return nil
	case "down":
		v, err := m.Down(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "migrations: rolled back %05d\n", v)
		return nil
	case "status":
		return m.Status(ctx, stdout)
	}
	return fmt.Errorf("migrate: %q is not up, down or status", verb)
}

// openStore opens the database once the schema is current. hasher checks
// passwords (nil: in-process with the default costs).
func openStore(ctx context.Context, cfg *config, hasher password.Hasher) (*store.Store, error) {
	if err := needDB(cfg); err != nil {
		return nil, err
	}
	m, err := store.NewMigrator(cfg.DB)
	if err != nil {
		return nil, err
	}
	err = m.CheckCurrent(ctx)
	m.Close()
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, store.Config{URL: cfg.DB, Hasher: hasher})
}

// cmdAddUser creates a user; the password is the first line of stdin. With
// --address the user gets that payout address, checked for --network first.
func cmdAddUser(ctx context.Context, cfg *config, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("adduser: usage: stratumd adduser NAME [--address ADDRESS] (password on stdin)")
	}
	var addr string
	if cfg.addressSet {
		var err error
		if addr, err = payoutAddress(cfg, cfg.Address); err != nil {
			return fmt.Errorf("adduser: --address: %w", err)
		}
	}
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("adduser: read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("adduser: empty password on stdin")
	}
	u, err := st.CreateUser(ctx, store.NewUser{Name: args[0], Password: pw, PayoutAddress: addr})
	if err != nil {
		return fmt.Errorf("adduser: %w", err)
	}
	if u.PayoutAddress != "" {
		fmt.Fprintf(stdout, "created user %s (id %d), payout address %s\n", u.Name, u.ID, u.PayoutAddress)
	} else {
		fmt.Fprintf(stdout, "created user %s (id %d), no payout address\n", u.Name, u.ID)
	}
	return nil
}

// cmdSetAddress sets a user's payout address, checked for --network, or
// with --clear removes it. An empty address is refused rather than taken
// for --clear.
func cmdSetAddress(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	const usage = "set-address: usage: stratumd set-address NAME ADDRESS, or stratumd set-address --clear NAME"
	if (cfg.ClearAddress && len(args) != 1) || (!cfg.ClearAddress && len(args) != 2) {
		return errors.New(usage)
	}
	name := args[0]
	var addr string
	if !cfg.ClearAddress {
		if args[1] == "" {
			return fmt.Errorf("set-address: empty address (to remove %s's address: stratumd set-address --clear %s)", name, name)
		}
		var err error
		if addr, err = payoutAddress(cfg, args[1]); err != nil {
			return fmt.Errorf("set-address: %w", err)
		}
	}
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.ClearAddress {
		if err := st.ClearPayoutAddress(ctx, name); err != nil {
			return fmt.Errorf("set-address: %w", err)
		}
		fmt.Fprintf(stdout, "removed the payout address of %s\n", name)
		return nil
	}
	if err := st.SetPayoutAddress(ctx, name, addr); err != nil {
		return fmt.Errorf("set-address: %w", err)
	}
	fmt.Fprintf(stdout, "payout address of %s: %s\n", name, addr)
	return nil
}

// cmdImportUsers imports bcoin-stratum's users.json.
func cmdImportUsers(ctx context.Context, cfg *config, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("import-users: usage: stratumd import-users FILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("import-users: %w", err)
	}
	defer f.Close()
	st, err := openStore(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.ImportUsers(ctx, f, func(addr string) (string, error) { return payoutAddress(cfg, addr) })
	if err != nil {
		return fmt.Errorf("import-users: %s: %w", args[0], err)
	}
	fmt.Fprintf(stdout, "imported %d users, %d already present\n", res.Created, res.Skipped)
	return nil
}

// payoutAddress checks addr for the configured --network and returns its
// canonical form.
func payoutAddress(cfg *config, addr string) (string, error) {
	a, err := chain.PayoutAddress(addr, cfg.params)
	if err != nil {
		return "", err
	}
	return a.EncodeAddress(), nil
}

// cmdPasswordWorker is the child process of --password-nice: it lowers the
// priority of all its threads to NICE and checks argon2 passwords for the
// daemon on stdin/stdout, CONCURRENCY at once, until stdin ends. SIGTERM and
// SIGINT (systemd stops the whole unit, a terminal's ^C the process group)
// do not end it: the daemon may still need it while it shuts down, and it
// dies with the daemon anyway (parent-death signal, end of stdin).
func cmdPasswordWorker(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 2 {
		return errors.New("password-worker: usage: stratumd password-worker NICE CONCURRENCY (started by the daemon)")
	}
	nice, err := strconv.Atoi(args[0])
	if err != nil || nice < 0 || nice > 19 {
		return fmt.Errorf("password-worker: nice %q: want 0 to 19", args[0])
	}
	conc, err := strconv.Atoi(args[1])
	if err != nil || conc < 1 || conc > 1024 {
		return fmt.Errorf("password-worker: concurrency %q: want 1 to 1024", args[1])
	}
	if nice != 0 { // 0: keep the priority inherited
		if err := pwworker.Renice(nice); err != nil {
			return fmt.Errorf("password-worker: %w", err)
		}
	}
	h := password.Argon2id{Params: password.DefaultParams()}
	return pwworker.Serve(context.WithoutCancel(ctx), stdin, stdout, h, conc)
}
