package payout

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratumd/stratumd/internal/store"
)

// Config is everything one `payout run` or `payout status` needs.
type Config struct {
	// DB is the PostgreSQL connection string.
	DB string
	// Wallet is btcwallet's RPC server; WalletPassphrase its private
	// passphrase (unlocks it only while signing).
	Wallet           RPCConfig
	WalletPassphrase string
	// Node is the full node's RPC server; an empty URL means the wallet's,
	// as btcwallet forwards chain calls to its btcd.
	Node RPCConfig
	// Options are the money settings.
	Options Options
	// DryRun: report, write and send nothing.
	DryRun bool
}

// Run opens the database (refusing to run while migrations are pending),
// connects to the wallet and the node, and does one Payer.Run. It is what
// `payout run` does; the end-to-end tests call it directly.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Options.Check(); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	w, err := NewRPCWallet(cfg.Wallet, cfg.WalletPassphrase, cfg.Options.Params)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	nodeCfg := cfg.Node
	if nodeCfg.URL == "" {
		nodeCfg = cfg.Wallet
	}
	n, err := NewRPCNode(nodeCfg)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	p, err := NewPayer(StoreLedger(st), n, w, cfg.Options)
	if err != nil {
		return nil, err
	}
	return p.Run(ctx, cfg.DryRun)
}

// ReadStatusDB opens the database (refusing to run while migrations are
// pending) and reads the ledger's status.
func ReadStatusDB(ctx context.Context, url string) (*Status, error) {
	st, err := openStore(ctx, url)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return ReadStatus(ctx, st)
}

func openStore(ctx context.Context, url string) (*store.Store, error) {
	if url == "" {
		return nil, fmt.Errorf("no database URL: %w", ErrInvalid)
	}
	m, err := store.NewMigrator(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	err = m.CheckCurrent(ctx)
	m.Close()
	if err != nil {
		if errors.Is(err, store.ErrPendingMigrations) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	st, err := store.Open(ctx, store.Config{URL: url, MaxConns: 4})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	return st, nil
}
