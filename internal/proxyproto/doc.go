// Package proxyproto implements the receiving side of HAProxy's PROXY
// protocol, versions 1 (text) and 2 (binary), for the stratum listener
// behind a TCP load balancer (https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt).
//
// The codec (Parse, Header.AppendV1, Header.AppendV2) does no I/O, so that it
// can be fuzzed alone. Listener wraps a net.Listener: connections from the
// trusted sources must start with a header, which is read in a goroutine of
// the connection's own (bounded in size and time) before Accept returns the
// connection, so a slow or silent proxy connection never stalls Accept; the
// returned Conn's RemoteAddr is the client address the header names.
// Connections from any other source are passed through untouched, except
// that one starting with a PROXY header is closed at its first Read (a
// receiver must never take a header from an untrusted party).
//
// Per the specification, a LOCAL command (health checks), a v1 UNKNOWN
// protocol and a v2 header of an unspecified or AF_UNIX family keep the real
// peer address.
package proxyproto
