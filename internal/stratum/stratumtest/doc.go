// Package stratumtest runs the real stratum.Server for the tests of its
// clients. Start serves it on a loopback listener with a chaintest.Source
// for templates and blocks, open authorization on regtest (any user whose
// name is a regtest address: see Address) and in-memory users, shares and
// blocks, and returns the address, the server, the source and the shares
// and blocks it recorded. The miner's tests (internal/miner) and the load
// tool's (cmd/stratum-load) mine against it, so that there is one set of
// share rules: the server's.
//
// By file: pool.go holds Config, Start, Pool (Stop, Shares, Blocks),
// Address and the test defaults; sinks.go the in-memory users, share sink
// and block sink described below.
//
// It imports internal/stratum, internal/store (for its types and
// AppendShare, never a database), internal/chain/chaintest and
// internal/username. It is for tests only and must not be imported by
// other code. It must not import internal/miner, whose own tests import it
// (its tests may). Package
// stratum's own tests cannot use it (it imports stratum; an internal test
// importing it would be a cycle): they keep their harness in
// server_test.go, which also reaches into the server's unexported hooks.
//
// # What the in-memory parts model, and what they do not
//
// The share sink stands for store.ShareWriter writing to the spool. Like
// it, Write validates and encodes each share with store.AppendShare, so
// that a share the database would refuse is never acknowledged, and returns
// only once the share is recorded, with sequence numbers increasing from 1;
// the server replies true only after Write has returned, as in production.
// Unlike it, nothing reaches a disk and a write never fails. A found
// block travels with its share, as in production; Pool.Blocks gives each
// block-solving share's row as the drainer stores it
// (store.Share.BlockRow). The block sink, which the server uses only when
// the share sink refuses a block's share, numbers its rows and refuses a
// hash it has with store.ErrExists. No Recorder or Resubmitter runs: share
// dumps and resubmission are tested with the real store (see below). The
// users accept any name username.Valid accepts (refusing others with
// store.ErrInvalid, as the store does); passwords (for a test
// that switches to password authorization) are compared as plain text, not
// through argon2.
//
// Durability, COPY into PostgreSQL, replay after an outage and the SQL
// behind blocks and rounds are covered with the real parts by
// internal/stratum's TestEndToEndRealStore (server, spool, ShareWriter,
// Drainer, PostgreSQL), internal/store's TestDrainerStoresEverythingOnce,
// TestSharesSurvivePostgresOutage, TestSharesSurviveSIGKILL,
// TestDrainerStoresBlocks and TestRoundSummary, internal/stratum's
// TestRecorderOneDumpPerBlock and TestResubmit*, cmd/stratumd's
// TestMineRegtestBlocks, and the chaos suite's TestPostgresOutage,
// TestKillRestart and TestSpoolDiskFull.
//
// # Test defaults
//
// The server runs as in production but for three defaults a test can
// override: with zero Config.Limits the share difficulty is pinned at
// DefaultDifficulty, so that vardiff never retargets under a test; a
// mempool change (Source.AddTx) makes a job after DefaultJobInterval rather
// than 30 s; and the server and the source share one clock, Config.Now.
package stratumtest
