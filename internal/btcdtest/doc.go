// Package btcdtest runs real btcd and btcwallet processes for integration
// tests: the pinned binaries built by scripts/tools.sh (found through
// $STRATUMD_TOOLS_BIN, or built on demand), on free loopback ports, each in
// a temporary data directory removed at cleanup.
//
// By file:
//
//   - btcdtest.go: Start and Node, one btcd on regtest (or simnet, whose
//     chain survives a restart) with its RPC server (no TLS, loopback only)
//     and P2P listener; Generate, WaitHeight, Stop, Kill and Restart;
//     ToolsBin, FreePort, and MiningAddress, the anyone-can-spend address
//     (KeyOneHash160) that every test node's generate pays.
//   - wallet.go: StartWallet and Wallet, one btcwallet on a simnet Node,
//     created without a terminal (--createtemp), with its legacy RPC
//     server; NewAddress, WaitSynced, Stop, Kill and Restart; and
//     Node.GenerateTo, which mines blocks paying an address of the test's
//     choosing, as a pool would.
//
// Every Node and Wallet is stopped at the test's cleanup, and Log returns
// what the process printed, for failure messages.
//
// Tests talk to the processes as any client would, through btcd's rpcclient
// (Client, ConnConfig). The package is for tests only, and it must not import
// internal/chain, its sources, internal/payout or anything else whose tests
// use it: what those tests check against is btcd itself, not the module's
// reading of it. Of the module it imports internal/testutil alone (SyncBuffer,
// RepoRoot).
package btcdtest
