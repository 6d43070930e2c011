// Package daemontest runs the real stratumd binary as a child process for the
// fault suite (internal/e2e/chaos) and the hostile-client suite
// (internal/e2e/hostile): it builds the binary once, starts it with JSON logs
// on a chosen listen address, parses every log line it writes to stderr, and
// stops it with SIGTERM or kills it with SIGKILL and starts it again on the
// same data directory and spool.
//
// A Process keeps every log line (also written to a file under the test's
// temporary directory, named in failure messages) so that tests can wait for
// a line (WaitLog) or count lines (Count) instead of sleeping. ServerStats
// parses the stratum server's counters from the line stratumd logs when it
// stops ("stratumd stopped").
//
// All methods of Process are safe for concurrent use, except Start, Kill,
// Stop and Restart, which belong to the test goroutine.
//
// It owns, in daemontest.go: Main (a TestMain body), Build and BuildCommand,
// which compile ./cmd/stratumd or another command; Start, Options and
// Process; Line, one JSON log line; ParseServerStats and ServerStats;
// FreeAddr.
//
// It imports only the standard library and internal/testutil (for
// RepoRoot), and must not import any other package of this module: it knows
// stratumd as a binary, its flags and its JSON log lines, so that the suites
// built on it test what ships and not the packages inside.
package daemontest
