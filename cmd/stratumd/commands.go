package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stratumd/stratumd/internal/cliconf"
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

func openStore(ctx context.Context, cfg *config) (*store.Store, error) {
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
	return store.Open(ctx, store.Config{URL: cfg.DB})
}

// cmdAddUser creates a user; the password is the first line of stdin.
func cmdAddUser(ctx context.Context, cfg *config, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("adduser: usage: stratumd adduser NAME (password on stdin)")
	}
	st, err := openStore(ctx, cfg)
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
	u, err := st.CreateUser(ctx, store.NewUser{Name: args[0], Password: pw})
	if err != nil {
		return fmt.Errorf("adduser: %w", err)
	}
	fmt.Fprintf(stdout, "created user %s (id %d)\n", u.Name, u.ID)
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
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.ImportUsers(ctx, f)
	fmt.Fprintf(stdout, "imported %d users, %d already present\n", res.Created, res.Skipped)
	return err
}
