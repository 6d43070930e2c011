// Package bip152 encodes and decodes the four compact block messages of
// BIP 152 (sendcmpct, cmpctblock, getblocktxn, blocktxn) as btcd
// wire.Message values, computes version 2 short transaction IDs, and
// rebuilds a block from a compact block and a pool of transactions. It does
// no I/O, so every decoder can be fuzzed alone.
//
// # Why hand-written
//
// btcd's wire package (v0.24.2) has no BIP 152 messages and btcd's peer
// drops them as unknown; no maintained Go library implements them. The
// encoding follows Bitcoin Core's src/blockencodings.h and
// src/blockencodings.cpp: the short ID is SipHash-2-4 (github.com/aead/siphash,
// already a dependency of btcd) of the wtxid, keyed with the first 16 bytes of
// single SHA-256(header || nonce), truncated to its low 48 bits and written as
// 6 little-endian bytes; indexes of prefilled transactions and of
// getblocktxn requests are differentially encoded compact sizes, each
// absolute index below 2^16; transactions are serialized with witness data
// (version 2). The tests check every encoder against byte captures of real
// messages (see testdata/README.md).
//
// # Limits
//
// Every count is checked against the bytes left in the payload before
// anything is allocated: a short ID takes 6 bytes, an index at least 1, a
// transaction at least 10. A compact block announces at most 65535
// transactions (Core: "indexes overflowed 16 bits"); every payload is at
// most 4,000,000 bytes (Core's MAX_PROTOCOL_MESSAGE_LENGTH). Non-canonical
// compact sizes are refused (btcd's wire.ReadVarInt), as Core does.
//
// # What is not here
//
// Version 1 (txid-based) compact blocks are decoded by the same code (the
// layout is the same) but never built: Core dropped them in 0.21 and only
// accepts sendcmpct version 2. Reconstruct rebuilds a block the way Core's
// PartiallyDownloadedBlock does (prefilled first, a short ID matched by two
// pool transactions is treated as missing), without Core's extra pool of
// recently evicted transactions.
package bip152
