// Package testutil holds small helpers shared by the project's tests, in
// testutil.go: SyncBuffer, a bytes.Buffer safe for concurrent use, for a
// process's or a daemon's log written by one goroutine and read by the test
// in another; Clock, an injected clock tests move by hand; RepoRoot, the
// module root, for tests that run the project's
// scripts or build its commands; ScriptOutput, what an install script
// (or the variable make test sets in its place) says is the tool's path;
// and, in proc.go, Proc, a child process (a node, a wallet) with its log,
// a readiness wait and a halt that kills after a grace period.
//
// It imports only the standard library and must not import any other
// package of this module: the tests of every layer use it, leaf packages'
// too (internal/proxyproto, internal/pwworker, internal/stratum/admission),
// and none of them may meet an import cycle, or the rest of the module,
// through it. A helper that needs a package of the module is a package of
// its own (internal/pgtest, internal/chain/chaintest,
// internal/stratum/stratumtest).
package testutil
