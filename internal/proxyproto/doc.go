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
//
// By file:
//
//   - header.go: the codec: Header, Command, Protocol, Parse, AppendV1 and
//     AppendV2. No I/O, fuzzed alone.
//   - listener.go: Config, ParseTrusted, NewListener and Listener, and
//     Conn, the connection Accept returns. NewListener starts one accepting
//     goroutine, each trusted connection's header is read in a goroutine of
//     its own, and Close stops and waits for them all; a Listener is safe
//     for concurrent use.
//   - errors.go: the sentinel errors.
//
// The package imports only the standard library and must not import
// internal/stratum (which uses it) or any other package of this module: it
// knows connections and addresses, not miners, and can be tested and
// fuzzed without the server.
package proxyproto
