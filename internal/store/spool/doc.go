// Package spool is the durable local share spool: a single-process,
// single-directory write-ahead log with group commit.
//
// The stratum server appends each accepted share's encoded bytes with
// [Spool.Append] and replies true to the miner only once Append has returned,
// that is once the record is fsync'ed. A drainer reads records in order with
// [Spool.Read], stores them in PostgreSQL together with the highest sequence
// number stored, and then calls [Spool.Trim]. While PostgreSQL is down the
// spool grows; after a crash (SIGKILL, power loss) [Open] recovers every
// acknowledged record.
//
// # On-disk format
//
// The directory holds segment files named by the sequence number of their
// first record, zero-padded to 20 digits (00000000000000000001.seg), and a
// file spool.id holding a random 128-bit identity as 32 hex digits. The
// identity is created once, atomically, and lets a drainer tell a new, empty
// spool from an old one: sequence numbers restart at 1 only with a new
// identity. The directory is locked with flock(2) while a Spool is open.
//
// Each record is framed as
//
//	[4-byte LE payload length][4-byte LE CRC-32C][8-byte LE seq][payload]
//
// where the CRC-32C (Castagnoli) covers the length, the sequence number and
// the payload. Sequence numbers are contiguous (1, 2, 3, ...) across segment
// boundaries. A segment is closed when the next batch would take it past
// Config.SegmentSize; only a single append larger than that makes a segment
// bigger.
//
// # Recovery
//
// Open verifies every record of every segment. An incomplete or corrupt tail
// of the last segment is the trace of a batch that was being written when the
// process died; it was never acknowledged, so it is cut off (and logged).
// Anything else (a bad record in an earlier segment, a gap in sequence
// numbers, a file whose name does not match its first record, a valid record
// larger than Config.MaxPayload) is reported as [ErrCorrupt] and nothing is
// dropped.
//
// # Group commit
//
// [Spool.Run] is the committer. Appenders queue their payloads; the committer
// takes everything queued, encodes it into one buffer, writes it with one
// write and makes it durable with one fsync, then releases every waiter with
// its sequence number. An append arriving while nothing is being committed
// is written at once; under load batches form while the previous fsync runs,
// and the committer waits at most Config.CommitInterval for the appenders
// released by the last commit to come back. If the write or the fsync fails
// (ENOSPC, EIO, EFBIG), the segment is truncated back to its size before the
// batch, every waiter of the batch gets an error matching [ErrWrite], no
// sequence number is used up, and later appends try again. A record is never
// acknowledged before it is durable.
//
// # Why not an existing WAL library
//
// We write this ourselves rather than use tidwall/wal because the pool needs
// group commit across many concurrent appenders (tidwall/wal has none: each
// Write is its own fsync or none at all), explicit torn-tail repair after a
// crash (a partially written last record must be detected by its checksum
// and cut off, since it was never acknowledged), rollback on write errors
// such as ENOSPC (a failed batch must leave no garbage and be reported to
// every waiting appender), and no extra dependency. The format is small
// enough to be obviously correct.
//
// # Concurrency
//
// All methods of [Spool] are safe for concurrent use. Run is meant to be
// called once, in its own goroutine; Append and AppendBatch block until Run
// has committed their records.
//
// # Files
//
//   - spool.go: Config, Spool and its methods (Append, AppendBatch, Read,
//     Trim, Notify, ID, First, Durable, Close) and the sentinel errors.
//   - commit.go: Run, the committer: a batch written with one write and one
//     fsync, rolled back on failure; segment rolling.
//   - open.go: Open, the recovery, the identity file and segment names.
//   - record.go: the record framing and Record, a record read back.
//   - lock_flock.go, lock_other.go: the directory lock (flock(2), and
//     nothing where there is none).
//
// # Imports
//
// The package imports only the standard library and must not import
// internal/store (which uses it) or any other package of this module: it
// stores opaque payloads, and what a share is and how it is encoded are
// the store's (store.AppendShare, store.DecodeShare). That is also what lets
// its crash tests run without PostgreSQL.
package spool
