package proxyproto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strconv"
	"strings"
)

// Command is what a header asks of the receiver.
type Command uint8

// The commands of a header. Version 1 headers are always CmdProxy.
const (
	// CmdLocal: the proxy opened the connection itself (a health check);
	// the receiver uses the real peer address.
	CmdLocal Command = 0x0
	// CmdProxy: the connection is relayed for the client the header names.
	CmdProxy Command = 0x1
)

// Protocol is the address family and transport of a header, encoded as the
// version 2 family byte (family in the high nibble, transport in the low).
type Protocol uint8

// The protocols of the specification. Version 1 knows ProtoTCP4, ProtoTCP6
// and ProtoUnspec (its "UNKNOWN").
const (
	ProtoUnspec     Protocol = 0x00
	ProtoTCP4       Protocol = 0x11
	ProtoUDP4       Protocol = 0x12
	ProtoTCP6       Protocol = 0x21
	ProtoUDP6       Protocol = 0x22
	ProtoUnixStream Protocol = 0x31
	ProtoUnixDgram  Protocol = 0x32
)

// inet reports whether p carries IPv4 or IPv6 addresses and ports.
func (p Protocol) inet() bool {
	switch p {
	case ProtoTCP4, ProtoUDP4, ProtoTCP6, ProtoUDP6:
		return true
	}
	return false
}

// String names p as version 1 does (and "UDP4", "UNIX", ... beyond it).
func (p Protocol) String() string {
	switch p {
	case ProtoUnspec:
		return "UNKNOWN"
	case ProtoTCP4:
		return "TCP4"
	case ProtoUDP4:
		return "UDP4"
	case ProtoTCP6:
		return "TCP6"
	case ProtoUDP6:
		return "UDP6"
	case ProtoUnixStream:
		return "UNIX"
	case ProtoUnixDgram:
		return "UNIXDGRAM"
	}
	return fmt.Sprintf("0x%02x", uint8(p))
}

// Limits of the specification.
const (
	// MaxV1Length is the longest version 1 header, CRLF included.
	MaxV1Length = 107
	// V2HeaderLength is the fixed part of a version 2 header.
	V2HeaderLength = 16
	// MaxV2Length is the longest version 2 header the length field allows.
	MaxV2Length = V2HeaderLength + 0xffff
)

const (
	v1Prefix = "PROXY "
	v2Sig    = "\r\n\r\n\x00\r\nQUIT\n"

	inet4AddrLen = 12
	inet6AddrLen = 36
	unixAddrLen  = 216

	tlvCRC32C = 0x03
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a decoded PROXY protocol header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Command is CmdLocal or CmdProxy.
	Command Command
	// Protocol is the family and transport of the addresses.
	Protocol Protocol
	// Source and Destination are the client's and the proxy's addresses,
	// set when Command is CmdProxy and Protocol is an IPv4 or IPv6 one.
	Source, Destination netip.AddrPort
	// Extra holds what follows the addresses in a version 2 header: the TLV
	// vectors when Source is set (their framing checked, and their CRC32C
	// when present); otherwise (CmdLocal, an unspecified or AF_UNIX family)
	// every byte after the fixed 16, unparsed, as the specification says to
	// skip them.
	Extra []byte
}

// ClientAddr returns the address the header names for the client, and
// false when the receiver must use the real peer address instead (LOCAL,
// UNKNOWN, AF_UNSPEC, AF_UNIX).
func (h *Header) ClientAddr() (netip.AddrPort, bool) {
	if h.Command != CmdProxy || !h.Protocol.inet() {
		return netip.AddrPort{}, false
	}
	return h.Source, true
}

// Parse decodes the header at the start of b and returns it with the number
// of bytes it took. It returns ErrIncomplete when b is a proper prefix of a
// header (read more and call again), ErrNoHeader when b does not start like
// a header at all, and an error wrapping ErrMalformed otherwise. Parse never
// reads past the header and keeps no reference to b.
func Parse(b []byte) (Header, int, error) {
	if len(b) == 0 {
		return Header{}, 0, ErrIncomplete
	}
	switch b[0] {
	case v1Prefix[0]:
		return parseV1(b)
	case v2Sig[0]:
		return parseV2(b)
	}
	return Header{}, 0, ErrNoHeader
}

// prefixState compares b with prefix: a mismatch, a proper prefix of it, or
// the whole prefix.
func prefixState(b []byte, prefix string) (match, partial bool) {
	n := min(len(b), len(prefix))
	if string(b[:n]) != prefix[:n] {
		return false, false
	}
	return n == len(prefix), n < len(prefix)
}

func parseV1(b []byte) (Header, int, error) {
	full, partial := prefixState(b, v1Prefix)
	if partial {
		return Header{}, 0, ErrIncomplete
	}
	if !full {
		return Header{}, 0, ErrNoHeader
	}
	window := b[:min(len(b), MaxV1Length)]
	end := bytes.Index(window, []byte("\r\n"))
	if end < 0 {
		if len(b) < MaxV1Length && bytes.IndexByte(window, '\n') < 0 {
			return Header{}, 0, ErrIncomplete
		}
		return Header{}, 0, fmt.Errorf("%w: v1 line without CRLF within %d bytes", ErrMalformed, MaxV1Length)
	}
	line := string(b[len(v1Prefix):end])
	n := end + 2
	h := Header{Version: 1, Command: CmdProxy}
	proto, rest, _ := strings.Cut(line, " ")
	switch proto {
	case "UNKNOWN":
		// Whatever follows is to be ignored; the line must still be text.
		if strings.ContainsAny(rest, "\r\n\x00") {
			return Header{}, 0, fmt.Errorf("%w: v1 UNKNOWN line with control bytes", ErrMalformed)
		}
		h.Protocol = ProtoUnspec
		return h, n, nil
	case "TCP4":
		h.Protocol = ProtoTCP4
	case "TCP6":
		h.Protocol = ProtoTCP6
	default:
		return Header{}, 0, fmt.Errorf("%w: v1 protocol %q", ErrMalformed, proto)
	}
	f := strings.Split(rest, " ")
	if len(f) != 4 {
		return Header{}, 0, fmt.Errorf("%w: v1 %s line needs 4 fields after the protocol, has %d", ErrMalformed, proto, len(f))
	}
	src, err1 := parseV1Addr(f[0], h.Protocol)
	dst, err2 := parseV1Addr(f[1], h.Protocol)
	sport, err3 := parseV1Port(f[2])
	dport, err4 := parseV1Port(f[3])
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return Header{}, 0, err
		}
	}
	h.Source = netip.AddrPortFrom(src, sport)
	h.Destination = netip.AddrPortFrom(dst, dport)
	return h, n, nil
}

func parseV1Addr(s string, p Protocol) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || (p == ProtoTCP4) != a.Is4() {
		return netip.Addr{}, fmt.Errorf("%w: v1 %s address %q", ErrMalformed, p, s)
	}
	return a, nil
}

// parseV1Port takes a decimal port without sign or leading zero.
func parseV1Port(s string) (uint16, error) {
	if len(s) == 0 || len(s) > 5 || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: v1 port %q", ErrMalformed, s)
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%w: v1 port %q", ErrMalformed, s)
	}
	return uint16(v), nil
}

// v2Length returns the whole length of the version 2 header whose fixed
// part starts b (at least V2HeaderLength bytes, signature checked).
func v2Length(b []byte) int {
	return V2HeaderLength + int(binary.BigEndian.Uint16(b[14:16]))
}

func parseV2(b []byte) (Header, int, error) {
	full, partial := prefixState(b, v2Sig)
	if partial {
		return Header{}, 0, ErrIncomplete
	}
	if !full {
		return Header{}, 0, ErrNoHeader
	}
	if len(b) < V2HeaderLength {
		return Header{}, 0, ErrIncomplete
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return Header{}, 0, fmt.Errorf("%w: v2 version %d", ErrMalformed, verCmd>>4)
	}
	h := Header{Version: 2, Command: Command(verCmd & 0xf), Protocol: Protocol(fam)}
	if h.Command != CmdLocal && h.Command != CmdProxy {
		return Header{}, 0, fmt.Errorf("%w: v2 command 0x%x", ErrMalformed, uint8(h.Command))
	}
	if fam>>4 > 3 || fam&0xf > 2 {
		return Header{}, 0, fmt.Errorf("%w: v2 family 0x%02x", ErrMalformed, fam)
	}
	n := v2Length(b)
	if len(b) < n {
		return Header{}, 0, ErrIncomplete
	}
	body := b[V2HeaderLength:n]
	if h.Command == CmdLocal || !h.Protocol.inet() {
		if h.Command == CmdProxy && fam>>4 == 3 && len(body) < unixAddrLen {
			return Header{}, 0, fmt.Errorf("%w: v2 AF_UNIX addresses need %d bytes, have %d", ErrMalformed, unixAddrLen, len(body))
		}
		if len(body) > 0 {
			h.Extra = bytes.Clone(body)
		}
		return h, n, nil
	}
	alen := inet4AddrLen
	if fam>>4 == 2 {
		alen = inet6AddrLen
	}
	if len(body) < alen {
		return Header{}, 0, fmt.Errorf("%w: v2 %s addresses need %d bytes, have %d", ErrMalformed, h.Protocol, alen, len(body))
	}
	ipLen := (alen - 4) / 2
	src, _ := netip.AddrFromSlice(body[:ipLen])
	dst, _ := netip.AddrFromSlice(body[ipLen : 2*ipLen])
	h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(body[2*ipLen:]))
	h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(body[2*ipLen+2:]))
	if err := checkTLVs(b[:n], V2HeaderLength+alen); err != nil {
		return Header{}, 0, err
	}
	if len(body) > alen {
		h.Extra = bytes.Clone(body[alen:])
	}
	return h, n, nil
}

// checkTLVs checks the framing of the TLV vectors of header from off on,
// and the CRC32C vector when there is one.
func checkTLVs(header []byte, off int) error {
	for off < len(header) {
		if len(header)-off < 3 {
			return fmt.Errorf("%w: v2 TLV truncated", ErrMalformed)
		}
		typ, l := header[off], int(binary.BigEndian.Uint16(header[off+1:]))
		val := off + 3
		if l > len(header)-val {
			return fmt.Errorf("%w: v2 TLV 0x%02x of %d bytes overruns the header", ErrMalformed, typ, l)
		}
		if typ == tlvCRC32C {
			if l != 4 {
				return fmt.Errorf("%w: v2 CRC32C TLV of %d bytes", ErrMalformed, l)
			}
			want := binary.BigEndian.Uint32(header[val:])
			c := crc32.Update(0, castagnoli, header[:val])
			c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
			c = crc32.Update(c, castagnoli, header[val+4:])
			if c != want {
				return fmt.Errorf("%w: v2 CRC32C mismatch", ErrMalformed)
			}
		}
		off = val + l
	}
	return nil
}

// AppendV1 appends h as a version 1 header to b. A header without IPv4 or
// IPv6 TCP addresses (CmdLocal, UNKNOWN, UDP, AF_UNIX) becomes
// "PROXY UNKNOWN\r\n".
func (h *Header) AppendV1(b []byte) ([]byte, error) {
	if h.Command != CmdProxy || (h.Protocol != ProtoTCP4 && h.Protocol != ProtoTCP6) {
		return append(b, "PROXY UNKNOWN\r\n"...), nil
	}
	if err := h.checkAddrs(); err != nil {
		return b, err
	}
	return fmt.Appendf(b, "PROXY %s %s %s %d %d\r\n", h.Protocol, h.Source.Addr(), h.Destination.Addr(),
		h.Source.Port(), h.Destination.Port()), nil
}

// AppendV2 appends h as a version 2 header to b: the addresses of an IPv4
// or IPv6 CmdProxy header followed by Extra, or Extra alone otherwise. A CRC32C
// vector in Extra is not recomputed.
func (h *Header) AppendV2(b []byte) ([]byte, error) {
	var addrs []byte
	if h.Command == CmdProxy && h.Protocol.inet() {
		if err := h.checkAddrs(); err != nil {
			return b, err
		}
		addrs = append(addrs, h.Source.Addr().AsSlice()...)
		addrs = append(addrs, h.Destination.Addr().AsSlice()...)
		addrs = binary.BigEndian.AppendUint16(addrs, h.Source.Port())
		addrs = binary.BigEndian.AppendUint16(addrs, h.Destination.Port())
	}
	l := len(addrs) + len(h.Extra)
	if l > 0xffff {
		return b, fmt.Errorf("%w: v2 body of %d bytes", ErrTooLong, l)
	}
	if h.Command != CmdLocal && h.Command != CmdProxy {
		return b, fmt.Errorf("%w: command 0x%x", ErrMalformed, uint8(h.Command))
	}
	b = append(b, v2Sig...)
	b = append(b, 0x20|byte(h.Command), byte(h.Protocol))
	b = binary.BigEndian.AppendUint16(b, uint16(l))
	b = append(b, addrs...)
	return append(b, h.Extra...), nil
}

// checkAddrs checks that Source and Destination fit Protocol.
func (h *Header) checkAddrs() error {
	want4 := h.Protocol == ProtoTCP4 || h.Protocol == ProtoUDP4
	for _, a := range []netip.Addr{h.Source.Addr(), h.Destination.Addr()} {
		if !a.IsValid() || a.Zone() != "" || a.Is4() != want4 {
			return fmt.Errorf("%w: address %v for %s", ErrMalformed, a, h.Protocol)
		}
	}
	return nil
}

// startsLikeHeader reports whether b begins with a PROXY header signature
// (v1's "PROXY " or v2's 12 bytes), or may still (b is a proper prefix of
// one of them).
func startsLikeHeader(b []byte) (yes, undecided bool) {
	f1, p1 := prefixState(b, v1Prefix)
	f2, p2 := prefixState(b, v2Sig)
	return f1 || f2, !f1 && !f2 && (p1 || p2)
}
