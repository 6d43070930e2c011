// Package bcointest runs a real bcoin full node for integration tests: the
// pinned bcoin from the npm registry that scripts/bcoin.sh installs into
// .bcoin/ (found through $STRATUMD_BCOIN, the path of its bin/node, or
// installed on demand), on regtest with an in-memory chain, its HTTP
// JSON-RPC server on a free loopback port, no P2P listener, no wallet and
// no outbound peers; stopped at the test's cleanup.
//
// Tests talk to bcoin as any client would, over HTTP POST JSON-RPC (Call,
// BestBlockHash, Height, Generate). bcoin authenticates with
// HTTP basic auth whose password is its API key (APIKey); the user name is
// ignored. Generate mines with bcoin's own miner (generatetoaddress) to the
// anyone-can-spend key of btcdtest.KeyOneHash160, in bcoin's regtest
// address format (bcoin 1.0.2's regtest prefixes, P2PKH 0x3c and bech32
// "rb", differ from Core's and btcd's; the scripts are the same).
//
// The package is for tests only and, like btcdtest, must not import
// internal/chain or its sources: what their tests check against is bcoin
// itself. Of the module it imports internal/testutil and
// internal/btcdtest (FreePort, KeyOneHash160).
package bcointest
