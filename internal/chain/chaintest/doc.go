// Package chaintest provides Source, a scripted in-memory chain.Source for
// unit tests: a fake chain starting at the network's genesis block, a fake
// mempool, and a SubmitBlock that checks blocks with btcd's context-free
// rules and, when a block extends the tip with valid proof of work, makes it
// the new tip. Templates use regtest's easiest bits (0x207fffff) by default,
// so a test can "mine" a chain by rolling a few nonces.
//
// It owns, in chaintest.go: New and Source (safe for concurrent use), whose
// knobs a test turns: the function fields TemplateFunc and SubmitFunc (or
// SetTemplateFunc, SetSubmitFunc), SetDown, SetBits, SetTip, Advance,
// AddTx and AddTxFee; what a test reads back: Tip, Submitted, Mempool; and
// BestChains, so that it is a chain.BestChainReader too.
//
// It imports internal/chain and no other package of this module, and must
// not import internal/stratum or internal/store: package stratum's internal
// tests use it, so importing stratum would be an import cycle, and a fake
// chain has no use for a database. It is for tests and for the benchmark
// pool (internal/tools/benchpool), never for a daemon that mines.
package chaintest
