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
	var rep *Report
	err := withPayer(ctx, cfg, func(p *Payer) error {
		var err error
		rep, err = p.Run(ctx, cfg.DryRun)
		return err
	})
	return rep, err
}

// Bump does what `payout bump ID --fee-rate N` does: Payer.Bump with
// feeRate cfg.Options.FeeRate.
func Bump(ctx context.Context, cfg Config, id int64) (*PaymentReport, error) {
	var rep *PaymentReport
	err := withPayer(ctx, cfg, func(p *Payer) error {
		var err error
		rep, err = p.Bump(ctx, id, cfg.Options.FeeRate)
		return err
	})
	return rep, err
}

// Abandon does what `payout abandon ID` does: Payer.Abandon with feeRate
// cfg.Options.FeeRate (raised above the payment's own when lower).
func Abandon(ctx context.Context, cfg Config, id int64) (*PaymentReport, error) {
	var rep *PaymentReport
	err := withPayer(ctx, cfg, func(p *Payer) error {
		var err error
		rep, err = p.Abandon(ctx, id, cfg.Options.FeeRate)
		return err
	})
	return rep, err
}

// withPayer opens the database (refusing to run while migrations are
// pending), connects to the wallet and the node, and calls fn with a
// Payer over them.
func withPayer(ctx context.Context, cfg Config, fn func(*Payer) error) error {
	if err := cfg.Options.Check(); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer st.Close()
	w, err := NewRPCWallet(cfg.Wallet, cfg.WalletPassphrase, cfg.Options.Params)
	if err != nil {
		return err
	}
	defer w.Close()
	nodeCfg := cfg.Node
	if nodeCfg.URL == "" {
		nodeCfg = cfg.Wallet
	}
	n, err := NewRPCNode(nodeCfg)
	if err != nil {
		return err
	}
	defer n.Close()
	p, err := NewPayer(StoreLedger(st), n, w, cfg.Options)
	if err != nil {
		return err
	}
	return fn(p)
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
