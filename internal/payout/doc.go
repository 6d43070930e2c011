// Package payout splits matured block rewards among miners with PPLNS and
// pays balances through btcwallet. Its maths is pure and table-tested; its
// payment steps run under an advisory lock and are safe to rerun at any point.
//
// # A run
//
// Payer.Run (and Run, which builds one from a Config) does, under
// pg_try_advisory_lock (a second run gets ErrLocked):
//
//  1. Classify every block that is not final by asking the node for the best
//     chain's hash at the block's height: the same hash is confirmed, or
//     matured at coinbase maturity (100) + MaturityMargin confirmations; a
//     different one is orphaned (earns nothing; rechecked until it is deeper
//     than the maturity, in case a reorganization brings it back).
//  2. Credit every matured block in one transaction that inserts its
//     block_splits row and credits and moves it to credited: exactly once.
//  3. Move open payments on (planned → signed → broadcast → confirmed).
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
// ledger's amount. After a crash: a planned payment has no stored
// transaction, so nothing was sent, and it is built afresh; a signed one is
// broadcast again with the same bytes (a node that has it already is not an
// error); a broadcast one is checked with gettransaction and rebroadcast
// with the same bytes if the wallet lost it. Nothing is ever paid twice: the
// balances view subtracts the outputs of every payment that is not failed.
//
// Wallet locks follow the ledger. The inputs a payment chooses are recorded
// (payment_inputs, the payment still planned) before they are locked with
// lockunspent, and locked before they are signed, so that the wallet's own
// sends cannot take them. btcwallet keeps locks in memory only and never
// drops the lock of a spent output, so a run never trusts them: at its
// start (StepLocksReconciled) it locks exactly the inputs of the open
// payments (signed, broadcast) and releases every other lock; during the
// run it releases a payment's inputs when signing fails and once the
// payment is confirmed. payout assumes it is the wallet's only locker;
// with Options.KeepForeignLocks (--keep-foreign-locks) it releases only
// locks of outputs some payment recorded.
//
// btcwallet's limits: signrawtransaction cannot sign segwit inputs, so the
// pool's coinbase (stratumd --payout-address) must pay a P2PKH address of
// the wallet (getnewaddress of the default account), and change goes to a
// P2PKH address (getrawchangeaddress).
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
// "skipped", "txid" and "error" are left out when empty. States: planned,
// signed, broadcast, confirmed, failed. `payout status --json` prints a
// Status: {"blocks": {"credited": 12, …}, "balances": [{"username", "credited",
// "paid", "pending", "balance"}], "payments": [{"id", "state", "txid",
// "outputs", "total", "fee", "last_error", "updated_at"}]}. Fields may be
// added; none is renamed or removed without a major version.
//
// # Auditing a payment with SQL
//
//	-- a block's split: reward = miners_total + pool_fee + pool_remainder
//	SELECT b.height, s.* FROM block_splits s JOIN blocks b ON b.id = s.block_id WHERE b.hash = '…';
//	SELECT username, amount, difficulty FROM credits WHERE block_id = (SELECT id FROM blocks WHERE hash = '…');
//	-- one payment: what it pays, what it spends, its fee and transaction
//	SELECT id, state, txid, total, fee, fee_rate, block_hash, encode(raw_tx, 'hex') FROM payments WHERE id = 7;
//	SELECT username, address, amount FROM payment_outputs WHERE payment_id = 7;
//	SELECT txid, vout, amount FROM payment_inputs WHERE payment_id = 7;   -- Σ inputs = total + fee + change
//	-- a user: credited − paid − pending = balance
//	SELECT * FROM balances WHERE username = 'bc1q…';
//
// raw_tx can be decoded with any tool (bitcoin-cli decoderawtransaction,
// btcctl) and its txid checked against the chain. An operator abandons a
// payment whose transaction can never confirm (its inputs spent elsewhere)
// with UPDATE payments SET state = 'failed' WHERE id = …; its outputs then
// count as unpaid again and the next run pays them anew.
package payout
