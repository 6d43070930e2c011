// Package rlimit raises the open-file limit: for stratumd, which raises its
// soft limit to the hard limit at start and then budgets its descriptors
// (cmd/stratumd/fdbudget.go), and for the load and benchmark tools that
// open tens of thousands of connections.
//
// RaiseNoFile is in rlimit_unix.go; rlimit_other.go, for systems without
// RLIMIT_NOFILE, returns an error instead.
//
// The package imports only the standard library and must not import any
// package of this module: stratumd and the tools (cmd/stratum-load,
// internal/tools/benchpool, internal/tools/loopfloor) share it without
// sharing anything else. The hard limit of a daemon is its service
// manager's (LimitNOFILE=).
package rlimit
