// Package wire is the Stratum v1 protocol as the pool speaks it: message
// and parameter types, error codes, the line reader, request and params
// decoding, and server→client encoding. It does no other I/O.
package wire
