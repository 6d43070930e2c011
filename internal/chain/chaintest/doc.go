// Package chaintest provides Source, a scripted in-memory chain.Source for
// unit tests: a fake chain starting at the network's genesis block, a fake
// mempool, and a SubmitBlock that checks blocks with btcd's context-free
// rules and, when a block extends the tip with valid proof of work, makes it
// the new tip. Templates use regtest's easiest bits (0x207fffff) by default,
// so a test can "mine" a chain by rolling a few nonces.
package chaintest
