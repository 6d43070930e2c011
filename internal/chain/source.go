package chain

import (
	"context"
	"fmt"
	"sync"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// UpdateKind says what changed at a Source.
type UpdateKind int

// Update kinds. The zero UpdateKind is not a valid kind.
const (
	// NewTip: the best chain has a new tip; jobs on the old tip are stale
	// (mining.notify with clean_jobs=true).
	NewTip UpdateKind = iota + 1
	// MempoolChanged: the tip is the same but a template would now carry
	// other transactions or fees.
	MempoolChanged
)

// String returns the kind's name.
func (k UpdateKind) String() string {
	switch k {
	case NewTip:
		return "new-tip"
	case MempoolChanged:
		return "mempool-changed"
	default:
		return fmt.Sprintf("UpdateKind(%d)", int(k))
	}
}

// Update is a change signal from a Source. Signals are coalesced: when
// several changes happen before the consumer reads, it sees one Update with
// the latest tip, whose Kind is NewTip if any of the merged changes was a
// new tip. A consumer builds a fresh Template on every Update and may compare
// heights itself.
type Update struct {
	// Kind is what changed.
	Kind UpdateKind
	// Height is the height of the tip (not of the next block).
	Height int32
	// Tip is the hash of the best tip.
	Tip chainhash.Hash
}

// Source is where templates come from and where solved blocks go: the
// embedded btcd node, an RPC node, or chaintest's in-memory chain.
// Implementations are safe for concurrent use.
type Source interface {
	// Updates delivers coalesced change signals; it never blocks the
	// producer (a full channel means a signal is already pending). Closed
	// when the source stops.
	Updates() <-chan Update
	// Template builds a template on the current best tip with the current
	// mempool. It fails with ErrNotSynced while the node is syncing and with
	// ErrClosed once the source has stopped.
	Template(ctx context.Context) (*Template, error)
	// SubmitBlock hands a solved block to the network/node at once. The
	// result classifies it; an error means the block could not be handed
	// over at all (the outcome is then unknown).
	SubmitBlock(ctx context.Context, b *wire.MsgBlock) (SubmitResult, error)
}

// SubmitStatus classifies the outcome of SubmitBlock.
type SubmitStatus int

// Submit statuses. The zero SubmitStatus is not a valid status.
const (
	// Accepted: the node accepted the block (it extends the best chain).
	Accepted SubmitStatus = iota + 1
	// Duplicate: the node already had the block.
	Duplicate
	// Inconclusive: the node took the block but has not decided on it
	// (e.g. a valid block on a side chain, or validation still pending).
	Inconclusive
	// Rejected: the block is invalid; Reason says why.
	Rejected
)

// String returns the status's name.
func (s SubmitStatus) String() string {
	switch s {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Inconclusive:
		return "inconclusive"
	case Rejected:
		return "rejected"
	default:
		return fmt.Sprintf("SubmitStatus(%d)", int(s))
	}
}

// SubmitResult is the outcome of SubmitBlock.
type SubmitResult struct {
	// Status classifies the outcome.
	Status SubmitStatus
	// Reason is the node's reason string (e.g. "bad-txnmrklroot"), if any.
	Reason string
}

// Notifier implements the coalescing Updates channel of a Source: Notify
// never blocks; an unread update is merged with the new one (latest tip;
// NewTip wins over MempoolChanged). It is safe for concurrent use. The zero
// Notifier is not usable; use NewNotifier.
type Notifier struct {
	mu     sync.Mutex
	ch     chan Update
	closed bool
}

// NewNotifier returns an open Notifier.
func NewNotifier() *Notifier {
	return &Notifier{ch: make(chan Update, 1)}
}

// Updates returns the channel the updates arrive on; it is closed by Close.
func (n *Notifier) Updates() <-chan Update {
	return n.ch
}

// Notify delivers u, merged with an update still pending. It does nothing
// after Close.
func (n *Notifier) Notify(u Update) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	select {
	case old := <-n.ch:
		if old.Kind == NewTip {
			u.Kind = NewTip
		}
	default:
	}
	// Senders hold n.mu and the channel was just emptied (or was empty),
	// so this send cannot block.
	n.ch <- u
}

// Close closes the Updates channel (a pending update is still delivered
// first). It is idempotent.
func (n *Notifier) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.ch)
	}
}
