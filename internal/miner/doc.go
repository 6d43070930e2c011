// Package miner is the pool's own CPU Stratum v1 miner: the client that the
// end-to-end tests, the chaos and hostile suites and the load tool
// (cmd/stratum-load) mine with.
//
// Miner speaks the protocol as cpuminer and ESP-Miner (BitAxe) do:
// mining.configure with BIP 310 version-rolling first when asked (mask
// 1fffe000 by default), mining.subscribe with the miner's user agent,
// mining.suggest_difficulty right after it, mining.authorize for each
// worker, optionally mining.extranonce.subscribe; then it follows
// mining.notify (clean_jobs drops older work), mining.set_difficulty
// (fractional difficulties included), mining.set_version_mask,
// mining.set_extranonce and client.reconnect (exposed as an Event), and
// answers client.get_version.
//
// It builds each header itself from the notify fields, as a real miner
// does, so that it cross-checks the pool: the coinbase is
// coinb1 || extranonce1 || extranonce2 || coinb2, the merkle branch hashes
// are the hex of their 32 internal bytes, prevhash is un-word-swapped,
// version, nbits and ntime are big-endian hex, and the double SHA-256 is
// compared with the share target of the difficulty (difficulty 1 =
// 0x00000000FFFF0000...). With version rolling, the bits inside the
// negotiated mask are rolled and sent as the 6th mining.submit param (the
// rolled bits only, masked), as ESP-Miner does.
//
// Tests use Dial (or New and Handshake), Mine, FindShare, FindShareAt (a
// given job at a given difficulty: when a firmware takes a new difficulty,
// and work held in flight across a retarget), Submit (for
// crafted stale, duplicate, low-difficulty, bad-ntime, bad-version or
// wrong-extranonce2 shares), Call and SendRaw (for hand-made requests),
// and WaitEvent to wait for notifications without sleeping. A Miner owns
// one reader goroutine, which Close waits for; hashing runs in the
// goroutine calling FindShare or Mine. A pool line a real miner could not
// use (invalid JSON, a malformed notify, a reply to an unknown id) ends the
// connection with an error wrapping ErrProtocol, so pool bugs surface.
//
// # An independent codec, on purpose
//
// The package must not import internal/stratum, internal/stratum/wire (the
// server's codec) or internal/store (nor anything that imports them). It
// reads the pool's lines with its own bounded reader (linereader.go),
// decodes replies and notifications with encoding/json into its own types
// (reader.go, events.go, job.go), and writes requests in cpuminer's byte
// layout (request.go, submit.go). This duplicates the server's codec
// deliberately: the end-to-end tests put this client against the real server, and if both ends shared one codec a
// bug in it (a byte order, a word-swapped prevhash, the version-bits param,
// the shape of the error member) would be made and unmade on each side and
// pass every test, to fail with the first real miner. Two codecs written
// apart catch each other. What it shares with the pool is
// internal/chain's difficulty-to-target arithmetic (chain.DifficultyToTarget,
// chain.Target), which internal/chain tests on its own: against values
// computed independently with exact rationals, and on real mainnet blocks.
//
// # Files
//
// options.go holds Options and their defaults; miner.go the Miner, New,
// Dial, Close and the session state; handshake.go the session start;
// request.go requests, replies and writes; reader.go the reader goroutine
// and reply dispatch; events.go the notifications the pool sends unasked
// and the Events they become; job.go a mining.notify and the header built
// from it; search.go the hashing, findat.go FindShareAt; submit.go
// mining.submit and its Result.
// rxstamp_linux.go and txstamp_linux.go read the kernel's receive and
// transmit timestamps (Options.KernelTimestamps, KernelTxTimestamps) and
// have no-op twins elsewhere.
//
// # Tests
//
// Its tests mine against the real stratum.Server, started on loopback by
// internal/stratum/stratumtest, so that there is one set of share rules:
// the server's, which must accept each share and record the hash the miner
// computed. What the server never sends (mining.set_extranonce,
// mining.set_version_mask, a client.reconnect naming another host) comes
// from a scripted peer in the test files that writes the server's own
// encodings and checks submits with chain.Job.Hash; lines no pool should
// send (ErrProtocol) are written by hand. These imports of internal/stratum
// and internal/stratum/wire are the tests' alone.
package miner
