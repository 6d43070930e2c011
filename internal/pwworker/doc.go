// Package pwworker checks argon2id passwords in a child process that runs
// at a low CPU priority (a high nice value), so that a flood of password
// checks — each about 30 ms of CPU and 19 MiB — never takes the CPU from
// the daemon's own threads. Goroutines have no priority; an OS process does:
// on a two-core machine an in-process argon2 check holds a Go processor
// until the scheduler's 10 ms preemption, which is what miners' submits
// would wait for.
//
// The child side is Serve: it reads newline-delimited JSON requests (an id,
// an op "hash" or "verify", the stored hash and the password, the byte
// strings base64-encoded) from its stdin, runs at most a given number at
// once with password.Argon2id, and writes one JSON reply per request
// with the same id. Renice lowers the priority of every thread of the
// process. stratumd runs both as its "password-worker" subcommand.
//
// The parent side is Client, started by Start. It is a password.Hasher: Hash
// and Verify send a request over the child's stdin and wait for its reply;
// many calls share the one pipe. When the child dies, the calls waiting on
// it are answered in-process instead (never a spurious "wrong password"),
// and the child is restarted with a backoff; while no child runs, calls are
// hashed in-process (logged once per outage, counted in Stats). A password
// never appears in a log line or an error. Client runs one supervising
// goroutine and, per child, one reading goroutine, all ended by Close; the
// restart waits follow package backoff (100 ms doubling to 30 s, starting
// over once a child lived 10 s).
//
// The package hashes with package password and must not import the store
// or the database driver: hashing needs neither.
package pwworker
