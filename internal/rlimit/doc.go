// Package rlimit raises the open-file limit, for the load and benchmark
// tools that open tens of thousands of connections.
package rlimit
