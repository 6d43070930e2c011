package payout

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stratumd/stratumd/internal/store"
)

// Report is what one run did (or, dry, would do). Its JSON form is the
// stable `payout run --json` output described in the package documentation.
type Report struct {
	DryRun   bool            `json:"dry_run"`
	Blocks   []BlockChange   `json:"blocks"`
	Credited []CreditedBlock `json:"credited"`
	Payments []PaymentReport `json:"payments"`
	Skipped  []Skipped       `json:"skipped,omitempty"`
	Errors   []string        `json:"errors"`
}

// BlockChange is one block's status change.
type BlockChange struct {
	Height        int64  `json:"height"`
	Hash          string `json:"hash"`
	From          string `json:"from"`
	To            string `json:"to"`
	Confirmations int64  `json:"confirmations"`
}

// CreditedBlock is a block whose reward was split into the ledger.
type CreditedBlock struct {
	Height     int64  `json:"height"`
	Hash       string `json:"hash"`
	Reward     int64  `json:"reward"`
	Split      Split  `json:"split"`
	Window     Window `json:"window"`
	WindowFull bool   `json:"window_full"`
}

// PaymentReport is one payment after the run.
type PaymentReport struct {
	ID      int64   `json:"id"`
	State   string  `json:"state"`
	TxID    string  `json:"txid,omitempty"` // the current paying transaction
	Total   int64   `json:"total"`
	Fee     int64   `json:"fee"`
	Outputs []PayTo `json:"outputs"`
	Error   string  `json:"error,omitempty"`
	// Txs lists every transaction of a payment that has more than one
	// (bumped or abandoned), oldest first.
	Txs []PaymentTxReport `json:"transactions,omitempty"`
}

// PaymentTxReport is one transaction of a payment.
type PaymentTxReport struct {
	TxID    string `json:"txid"`
	Kind    string `json:"kind"` // payment, bump or abandon
	Fee     int64  `json:"fee"`
	FeeRate int64  `json:"fee_rate"`
}

// WriteText writes one payment (payout bump, payout abandon) as a table.
func (r *PaymentReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PAYMENT\tID\tSTATE\tOUTPUTS\tTOTAL\tFEE\tTXID")
	fmt.Fprintf(tw, "\t%d\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.State, len(r.Outputs), r.Total, r.Fee, r.TxID)
	fmt.Fprintln(tw, "TRANSACTIONS\tKIND\tFEE\tFEE RATE\tTXID")
	for _, t := range r.Txs {
		fmt.Fprintf(tw, "\t%s\t%d\t%d\t%s\n", t.Kind, t.Fee, t.FeeRate, t.TxID)
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "ERROR\t%s\n", strings.ReplaceAll(r.Error, "\t", " "))
	}
	return tw.Flush()
}

// Skipped is a balance due that was not paid, and why.
type Skipped struct {
	Username string `json:"username"`
	Balance  int64  `json:"balance"`
	Reason   string `json:"reason"`
}

// WriteText writes the report as human-readable tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if r.DryRun {
		fmt.Fprintln(tw, "DRY RUN: nothing was written or sent")
	}
	fmt.Fprintln(tw, "BLOCKS\tHEIGHT\tHASH\tFROM\tTO\tCONFS")
	for _, b := range r.Blocks {
		fmt.Fprintf(tw, "\t%d\t%s\t%s\t%s\t%d\n", b.Height, b.Hash, b.From, b.To, b.Confirmations)
	}
	fmt.Fprintln(tw, "CREDITED\tHEIGHT\tREWARD\tMINERS\tPOOL FEE\tREMAINDER\tUSERS\tWINDOW")
	for _, c := range r.Credited {
		full := "full"
		if !c.WindowFull {
			full = fmt.Sprintf("young (%.6g of %.6g)", c.Window.Counted, c.Window.Target)
		}
		fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", c.Height, c.Reward, c.Split.MinersTotal,
			c.Split.PoolFee, c.Split.Remainder, len(c.Split.Credits), full)
	}
	fmt.Fprintln(tw, "PAYMENTS\tID\tSTATE\tOUTPUTS\tTOTAL\tFEE\tTXID")
	for _, p := range r.Payments {
		fmt.Fprintf(tw, "\t%d\t%s\t%d\t%d\t%d\t%s\n", p.ID, p.State, len(p.Outputs), p.Total, p.Fee, p.TxID)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(tw, "SKIPPED\t%s\t%d\t%s\n", s.Username, s.Balance, s.Reason)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(tw, "ERROR\t%s\n", strings.ReplaceAll(e, "\t", " "))
	}
	return tw.Flush()
}

// Status is the ledger at a glance (`payout status`).
type Status struct {
	Blocks   map[string]int64 `json:"blocks"` // count per block status
	Balances []Balance        `json:"balances"`
	Payments []PaymentRow     `json:"payments"` // open ones and the 20 newest
}

// Balance is one row of the balances view.
type Balance struct {
	Username string `json:"username"`
	Credited int64  `json:"credited"`
	Paid     int64  `json:"paid"`
	Pending  int64  `json:"pending"`
	Balance  int64  `json:"balance"`
}

// PaymentRow is one payment as stored.
type PaymentRow struct {
	ID        int64     `json:"id"`
	State     string    `json:"state"`
	TxID      string    `json:"txid,omitempty"`
	Outputs   int64     `json:"outputs"`
	Total     int64     `json:"total"`
	Fee       int64     `json:"fee"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// StatusSource reads the ledger's state; *store.Store implements it.
type StatusSource interface {
	LedgerStatus(ctx context.Context) (store.LedgerStatus, error)
}

// ReadStatus reads the ledger's state.
func ReadStatus(ctx context.Context, src StatusSource) (*Status, error) {
	ls, err := src.LedgerStatus(ctx)
	if err != nil {
		return nil, fromStore("status", err)
	}
	st := &Status{Blocks: make(map[string]int64, len(ls.Blocks)), Balances: make([]Balance, len(ls.Balances)),
		Payments: make([]PaymentRow, len(ls.Payments))}
	for k, n := range ls.Blocks {
		st.Blocks[string(k)] = n
	}
	for i, b := range ls.Balances {
		st.Balances[i] = Balance{Username: b.Username, Credited: b.Credited, Paid: b.Paid, Pending: b.Pending, Balance: b.Balance.Balance}
	}
	for i, p := range ls.Payments {
		st.Payments[i] = PaymentRow{ID: p.ID, State: p.State, TxID: p.TxID, Outputs: p.Outputs, Total: p.Total, Fee: p.Fee,
			LastError: p.LastError, UpdatedAt: p.UpdatedAt}
	}
	return st, nil
}

// WriteText writes the status as human-readable tables.
func (s *Status) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BLOCKS\tSTATUS\tCOUNT")
	for _, k := range []string{"submitted", "confirmed", "matured", "credited", "orphaned", "rejected"} {
		fmt.Fprintf(tw, "\t%s\t%d\n", k, s.Blocks[k])
	}
	fmt.Fprintln(tw, "BALANCES\tUSER\tCREDITED\tPAID\tPENDING\tBALANCE")
	for _, b := range s.Balances {
		fmt.Fprintf(tw, "\t%s\t%d\t%d\t%d\t%d\n", b.Username, b.Credited, b.Paid, b.Pending, b.Balance)
	}
	fmt.Fprintln(tw, "PAYMENTS\tID\tSTATE\tOUTPUTS\tTOTAL\tFEE\tTXID\tERROR")
	for _, p := range s.Payments {
		fmt.Fprintf(tw, "\t%d\t%s\t%d\t%d\t%d\t%s\t%s\n", p.ID, p.State, p.Outputs, p.Total, p.Fee, p.TxID,
			strings.ReplaceAll(p.LastError, "\t", " "))
	}
	return tw.Flush()
}
