// Package payout splits matured block rewards among miners with PPLNS and
// pays balances through btcwallet. Its maths is pure and table-tested; its
// payment steps run under an advisory lock and are safe to rerun at any point.
// It speaks no SQL: the ledger is reached through the Ledger, LedgerRun,
// ShareSource and StatusSource interfaces declared here, which package store
// implements (StoreLedger adapts a *store.Store); the store's errors are
// translated into this package's at that boundary.
//
// # Files
//
//   - run.go: Config, and Run, Bump, Abandon and ReadStatusDB, which open
//     the store, the wallet and the node for one command.
//   - payer.go: Options, NewPayer and Payer, Payer.Run's steps in order, and
//     the Step* constants of the step hook.
//   - blocks.go: classifying blocks against the node's best chain, and
//     OrphanWatcher, which stratumd runs beside its embedded node.
//   - credit.go: crediting a matured block, exactly once.
//   - window.go: SelectWindow and Window, the PPLNS window.
//   - split.go: SplitReward, the pure split of a reward (Weight, Split,
//     Credit).
//   - payments.go: planning payments and moving them from state to state.
//   - sign.go: a planned payment's transaction built, its inputs recorded
//     and locked, signed by the wallet and stored.
//   - txbuild.go: transactions: size bounds, payments, bumps, abandons.
//   - rbf.go: Payer.Bump and Payer.Abandon, settling a payment with several
//     transactions, and proving that its inputs were spent elsewhere.
//   - locks.go: the wallet's locks, reconciled with the ledger.
//   - wallet.go: the Wallet and Node interfaces and their RPC
//     implementations for btcwallet and btcd (RPCWallet, RPCNode,
//     RPCConfig).
//   - ledger.go: Ledger, LedgerRun, ShareSource and the other interfaces the
//     store implements; StoreLedger.
//   - report.go: Report, Status and StatusSource, and their text form.
//   - errors.go: the sentinel errors.
//
// The package imports internal/store and no other package of this module:
// the store's types, its errors (translated here) and the StoreLedger
// adapter. It must not import internal/stratum, internal/httpapi or the
// chain sources: it talks to the node and the wallet over their RPC
// (btcd's rpcclient), so that a payout run needs neither the daemon nor
// its node in process. Package stratum must not import it either;
// cmd/stratumd does, for OrphanWatcher.
//
// # A run
//
// Payer.Run (and Run, which builds one from a Config) does, under the
// store's payout lock (pg_try_advisory_lock; a second run gets ErrLocked):
//
//  1. Classify every block that is not final by asking the node for the best
//     chain's hash at the block's height: the same hash is confirmed, or
//     matured at coinbase maturity (100) + MaturityMargin confirmations; a
//     different one is orphaned (earns nothing; rechecked until it is deeper
//     than the maturity, in case a reorganization brings it back). A block
//     still submitted is left to stratumd's resubmitter until the chain is
//     store.GiveUpDepth (6) blocks past its height: the same rule.
//  2. Credit every matured block in one transaction that inserts its
//     block_splits row and credits and moves it to credited: exactly once.
//     A solo block (blocks.mode 'solo': its coinbase paid its finder) is
//     classified like any block but never credited: it stays matured. Solo
//     shares (user "solo:<address>") are never part of a PPLNS window.
//  3. Reconcile the wallet's locks with the ledger (see below), then move
//     open payments on (planned → signed → broadcast → confirmed; an
//     abandoning one to abandoned or confirmed; a signed or broadcast one
//     whose inputs were spent elsewhere to failed).
//  4. Plan payments: balances at or above MinPayout whose user has a valid
//     address (users.payout_address, or in open auth the user name itself),
//     at most MaxOutputs per payment, recorded as planned with their outputs
//     before anything is sent; then carry them out as in 3.
//
// # PPLNS window, fee and remainder
//
// For a block, N = PPLNSFactor × the block's network difficulty, in share
// difficulty units. Shares are walked backwards in (time, instance_id, seq)
// order from the block's last share (blocks.share_time, share_instance,
// share_seq, included), adding each share's assigned difficulty until N is
// reached; the share that crosses N counts only for the part still missing.
// When the shares run out first (a young pool) all shares up to the block
// count: the whole reward is split among them, nothing is kept back.
//
// With reward R satoshis and a fee of F basis points: miners get
// M = floor(R × (10000 − F) / 10000), the pool fee is R − M. Each user gets
// floor(M × w / W) (w: the user's difficulty in the window, W: the window's
// total); the remainder M − Σ, less than one satoshi per user, goes to the
// pool. R = Σ credits + pool_fee + pool_remainder holds for every block and
// is a CHECK of block_splits.
//
// # Payments and crashes
//
// A payment is built from the wallet's listunspent (spendable, confirmed,
// P2PKH only, never an input of an open payment), signed by the wallet
// (signrawtransaction, the wallet unlocked with the passphrase only for
// that call), and its signed bytes, txid and fee are stored (signed) before
// it is broadcast (sendrawtransaction) and marked broadcast. Outputs are
// built with txscript.PayToAddrScript: P2PKH, P2SH, P2WPKH, P2WSH and P2TR
// recipients all work. The fee (FeeRate sat/vB × an upper bound of the
// size) and any change are the pool's: every recipient gets exactly the
// ledger's amount. Every input signals replace-by-fee (sequence
// 0xfffffffd, BIP 125).
//
// A payment may have several transactions (payment_txs, each stored
// before it is broadcast): its first, bumps and an abandon. They all spend
// the same inputs, so at most one confirms, and whichever does settles the
// payment; payments.txid is the current paying transaction (the newest
// payment or bump, or the one that confirmed). After a crash: a planned
// payment has no stored transaction, so nothing was sent, and it is built
// afresh; a signed one is broadcast again with the same bytes (a node that
// has it already is not an error); a broadcast or abandoning one is
// checked with gettransaction, every one of its transactions, and its
// newest transaction is sent again, the same bytes, if the wallet lost it.
// Nothing is ever paid twice: the balances view counts the outputs of
// every payment that is not abandoned or failed as paid or pending.
//
// A stuck payment (a fee too low to be mined) is handled by an operator:
//
//   - Payer.Bump (`payout bump ID --fee-rate N`) replaces its transaction
//     by one spending the same inputs and paying the same recipients the
//     same amounts at N sat/vB, above the current rate; the extra fee
//     comes out of the change (ErrInsufficientFunds when there is no
//     change, or too little: abandon it instead).
//   - Payer.Abandon (`payout abandon ID`) broadcasts a transaction that
//     spends its inputs back to the wallet at a rate above the payment's.
//     The payment is abandoning: its outputs still count as pending, so
//     nothing is paid anew. When that conflict has ConflictConfirmations
//     confirmations the payment is abandoned and its outputs count as
//     unpaid again (the same run plans them anew); if one of its paying
//     transactions confirms first, it is confirmed, paid once.
//
// A payment whose inputs are spent on chain by a transaction that is none
// of its own (the wallet spent them after a restart lost the locks, an
// operator spent them) fails, its outputs unpaid again, only when that is
// proven: the spend has ConflictConfirmations confirmations (counted from
// the height a run first saw it, payments.conflict_seen_height), the
// wallet has processed the node's best block and knows none of the
// payment's transactions as confirmed, and no output of any of them is
// unspent on chain. Never set a payment's state by hand: a payment marked
// failed while one of its transactions can still confirm is paid twice.
//
// Wallet locks follow the ledger. The inputs a payment chooses are recorded
// (payment_inputs, the payment still planned) before they are locked with
// lockunspent, and locked before they are signed, so that the wallet's own
// sends cannot take them. btcwallet keeps locks in memory only and never
// drops the lock of a spent output, so no run trusts them: at its start
// (StepLocksReconciled; bump and abandon do it too) it locks exactly the
// inputs of the open payments (signed, broadcast, abandoning) and releases
// every other lock; during the run it releases a payment's inputs when
// signing fails and once the payment is settled (confirmed, abandoned,
// failed). payout assumes it is the wallet's only locker; with
// Options.KeepForeignLocks (--keep-foreign-locks) it releases only locks
// of outputs some payment recorded.
//
// Options.StepHook sees every step boundary (the Step* constants). A normal
// run that credits one block and makes one payment reports: classified,
// credited, locks-reconciled, planned, inputs-recorded, built,
// signed-not-stored, signed-stored, sent-not-marked, broadcast-marked,
// payment-done; the run that confirms it: classified, locks-reconciled,
// confirmed, unlocked, payment-done. A bump reports locks-reconciled,
// bump-stored, bump-sent; an abandon locks-reconciled, abandon-stored,
// abandon-sent. `payout` kills itself at the K-th one when
// PAYOUT_TEST_KILL_STEP=K (test only).
//
// # JSON output
//
// `payout run --json` prints one Report object:
//
//	{
//	  "dry_run": false,
//	  "blocks": [{"height": 840000, "hash": "…", "from": "confirmed", "to": "matured", "confirmations": 110}],
//	  "credited": [{"height": 840000, "hash": "…", "reward": 318750000, "window_full": true,
//	      "split": {"reward": 318750000, "fee_bps": 100, "pool_fee": 3187500, "pool_remainder": 2,
//	                "miners_total": 315562498, "credits": [{"username": "bc1q…", "amount": 1234, "difficulty": 5.5}]},
//	      "window": {"target": 1.7e14, "counted": 1.7e14, "shares": 912345}}],
//	  "payments": [{"id": 7, "state": "broadcast", "txid": "…", "total": 315562498, "fee": 4480,
//	      "outputs": [{"username": "bc1q…", "address": "bc1q…", "amount": 1234}]}],
//	  "skipped": [{"username": "bob", "balance": 2000000, "reason": "no valid payout address for mainnet"}],
//	  "errors": []
//	}
//
// Amounts are satoshis (integers), difficulties numbers, hashes and txids
// hex. "blocks", "credited", "payments" and "errors" are always arrays;
// "skipped", "txid", "error" and "transactions" are left out when empty. A
// payment with more than one transaction lists them all, oldest first:
// "transactions": [{"txid", "kind": "payment"|"bump"|"abandon", "fee",
// "fee_rate"}]. States: planned, signed, broadcast, abandoning, confirmed,
// abandoned, failed. `payout bump` and `payout abandon` print one such
// payment object. `payout status --json` prints a Status:
// {"blocks": {"credited": 12, …}, "balances": [{"username", "credited",
// "paid", "pending", "balance"}], "held_back": [{"username", "balance",
// "reason"}], "payments": [{"id", "state", "txid", "outputs", "total",
// "fee", "last_error", "updated_at"}]}. "held_back" (always an array) lists
// every positive balance no run pays because its user has no valid payout
// address for --network (reason as in "skipped"). Fields may be added; none
// is renamed or removed without a major version.
//
// # Auditing a payment with SQL
//
//	-- a block's split: reward = miners_total + pool_fee + pool_remainder
//	SELECT b.height, s.* FROM block_splits s JOIN blocks b ON b.id = s.block_id WHERE b.hash = '…';
//	SELECT username, amount, difficulty FROM credits WHERE block_id = (SELECT id FROM blocks WHERE hash = '…');
//	-- one payment: what it pays, what it spends, its fee and transaction
//	SELECT id, state, txid, total, fee, fee_rate, block_hash, encode(raw_tx, 'hex') FROM payments WHERE id = 7;
//	SELECT txid, kind, fee, fee_rate, block_hash FROM payment_txs WHERE payment_id = 7 ORDER BY id;
//	SELECT username, address, amount FROM payment_outputs WHERE payment_id = 7;
//	SELECT txid, vout, amount FROM payment_inputs WHERE payment_id = 7;   -- Σ inputs = total + fee + change
//	-- a user: credited − paid − pending = balance
//	SELECT * FROM balances WHERE username = 'bc1q…';
//
// raw_tx can be decoded with any tool (bitcoin-cli decoderawtransaction,
// btcctl) and its txid checked against the chain. A payment that can never
// confirm is given up with `payout abandon ID`, never by editing its state.
package payout
