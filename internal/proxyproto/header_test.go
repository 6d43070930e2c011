package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// v2 builds a version 2 header by hand (not with AppendV2), from the
// specification's layout.
func v2(verCmd, fam byte, body ...[]byte) []byte {
	var b []byte
	b = append(b, "\r\n\r\n\x00\r\nQUIT\n"...)
	b = append(b, verCmd, fam)
	var all []byte
	for _, x := range body {
		all = append(all, x...)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(all)))
	return append(b, all...)
}

func inet4(src, dst string, sp, dp uint16) []byte {
	var b []byte
	b = append(b, netip.MustParseAddr(src).AsSlice()...)
	b = append(b, netip.MustParseAddr(dst).AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, sp)
	return binary.BigEndian.AppendUint16(b, dp)
}

func tlv(typ byte, val []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	return append(b, val...)
}

// withCRC appends a CRC32C TLV computed as the specification says.
func withCRC(h []byte) []byte {
	h = append(h, tlv(tlvCRC32C, make([]byte, 4))...)
	binary.BigEndian.PutUint16(h[14:], uint16(len(h)-16))
	c := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(h[len(h)-4:], c)
	return h
}

func TestParseValid(t *testing.T) {
	ipv6 := append(append(netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()...), 0x0d, 0x05, 0x0d, 0x06)
	unix := make([]byte, unixAddrLen)
	copy(unix, "/run/src.sock")
	for _, tc := range []struct {
		name string
		in   []byte
		want Header
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.7 198.51.100.1 56324 3333\r\n"),
			Header{Version: 1, Command: CmdProxy, Protocol: ProtoTCP4, Source: ap("192.0.2.7:56324"), Destination: ap("198.51.100.1:3333")}},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n"),
			Header{Version: 1, Command: CmdProxy, Protocol: ProtoTCP6, Source: ap("[2001:db8::1]:65535"), Destination: ap("[2001:db8::2]:0")}},
		{"v1 tcp6 mapped", []byte("PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n"),
			Header{Version: 1, Command: CmdProxy, Protocol: ProtoTCP6, Source: ap("[::ffff:192.0.2.7]:1"), Destination: ap("[::1]:2")}},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), Header{Version: 1, Command: CmdProxy, Protocol: ProtoUnspec}},
		{"v1 unknown with junk", []byte("PROXY UNKNOWN ffff::1 whatever 1 2\r\n"), Header{Version: 1, Command: CmdProxy, Protocol: ProtoUnspec}},
		{"v2 tcp4", v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 56324, 3333)),
			Header{Version: 2, Command: CmdProxy, Protocol: ProtoTCP4, Source: ap("192.0.2.7:56324"), Destination: ap("198.51.100.1:3333")}},
		{"v2 tcp6 with TLVs", v2(0x21, 0x21, ipv6, tlv(0x05, []byte("uid-1")), tlv(0x04, nil)),
			Header{Version: 2, Command: CmdProxy, Protocol: ProtoTCP6, Source: ap("[2001:db8::1]:3333"), Destination: ap("[2001:db8::2]:3334"),
				Extra: append(tlv(0x05, []byte("uid-1")), tlv(0x04, nil)...)}},
		{"v2 local", v2(0x20, 0x00), Header{Version: 2, Command: CmdLocal, Protocol: ProtoUnspec}},
		{"v2 local with addresses", v2(0x20, 0x11, inet4("10.0.0.1", "10.0.0.2", 1, 2)),
			Header{Version: 2, Command: CmdLocal, Protocol: ProtoTCP4, Extra: inet4("10.0.0.1", "10.0.0.2", 1, 2)}},
		{"v2 proxy unspec", v2(0x21, 0x00, []byte{1, 2, 3}), Header{Version: 2, Command: CmdProxy, Protocol: ProtoUnspec, Extra: []byte{1, 2, 3}}},
		{"v2 unix", v2(0x21, 0x31, unix), Header{Version: 2, Command: CmdProxy, Protocol: ProtoUnixStream, Extra: unix}},
		{"v2 udp4", v2(0x21, 0x12, inet4("192.0.2.7", "198.51.100.1", 53, 53)),
			Header{Version: 2, Command: CmdProxy, Protocol: ProtoUDP4, Source: ap("192.0.2.7:53"), Destination: ap("198.51.100.1:53")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The header followed by stratum data: Parse stops at its end.
			in := append(append([]byte(nil), tc.in...), `{"id":1}`+"\n"...)
			h, n, err := Parse(in)
			if err != nil || n != len(tc.in) {
				t.Fatalf("Parse: n=%d err=%v, want n=%d", n, err, len(tc.in))
			}
			if h.Extra == nil && tc.want.Extra != nil || !reflect.DeepEqual(h, tc.want) {
				t.Fatalf("Parse:\n got %+v\nwant %+v", h, tc.want)
			}
			// Every proper prefix asks for more.
			for i := range len(tc.in) {
				if _, _, err := Parse(tc.in[:i]); !errors.Is(err, ErrIncomplete) {
					t.Fatalf("prefix of %d bytes: %v, want ErrIncomplete", i, err)
				}
			}
			// Re-encoding in the same version parses to the same header.
			var enc []byte
			if h.Version == 1 {
				enc, err = h.AppendV1(nil)
			} else {
				enc, err = h.AppendV2(nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			h2, n2, err := Parse(enc)
			if err != nil || n2 != len(enc) || !reflect.DeepEqual(h, h2) {
				t.Fatalf("round trip: %+v, %d, %v", h2, n2, err)
			}
			if a, ok := h.ClientAddr(); ok != (tc.want.Command == CmdProxy && tc.want.Source.IsValid()) || a != tc.want.Source {
				t.Fatalf("ClientAddr = %v, %v", a, ok)
			}
		})
	}
}

func TestParseCRC32C(t *testing.T) {
	good := withCRC(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2)))
	h, n, err := Parse(good)
	if err != nil || n != len(good) || h.Source != ap("192.0.2.7:1") {
		t.Fatalf("valid CRC32C: %+v %d %v", h, n, err)
	}
	for i := 16; i < len(good); i++ {
		if i == len(good)-7 {
			continue // the TLV's type: flipped, it is no CRC32C vector any more
		}
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		if _, _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("byte %d flipped: %v, want ErrMalformed", i, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	long := "PROXY TCP6 " + strings.Repeat("1", 100) + "\r\n"
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"stratum json", []byte(`{"id":1,"method":"mining.subscribe"}`), ErrNoHeader},
		{"GET", []byte("GET / HTTP/1.1\r\n"), ErrNoHeader},
		{"lowercase proxy", []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNoHeader},
		{"PROXYTCP4", []byte("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNoHeader},
		{"v2 bad signature", []byte("\r\n\r\n\x00\r\nQUIT\r\x21\x11\x00\x00"), ErrNoHeader},
		{"v1 bad protocol", []byte("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 udp", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 double space", []byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 missing port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), ErrMalformed},
		{"v1 extra field", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), ErrMalformed},
		{"v1 port too big", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), ErrMalformed},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), ErrMalformed},
		{"v1 port sign", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), ErrMalformed},
		{"v1 v6 address in TCP4", []byte("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 v4 address in TCP6", []byte("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), ErrMalformed},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), ErrMalformed},
		{"v1 octal-looking v4", []byte("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), ErrMalformed},
		{"v1 LF only", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), ErrMalformed},
		{"v1 no CRLF within 107", []byte(long), ErrMalformed},
		{"v1 unknown with NUL", []byte("PROXY UNKNOWN \x00\r\n"), ErrMalformed},
		{"v2 version 1", v2(0x11, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2)), ErrMalformed},
		{"v2 version 3", v2(0x31, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2)), ErrMalformed},
		{"v2 command 2", v2(0x22, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2)), ErrMalformed},
		{"v2 family 4", v2(0x21, 0x41, inet4("1.2.3.4", "5.6.7.8", 1, 2)), ErrMalformed},
		{"v2 transport 3", v2(0x21, 0x13, inet4("1.2.3.4", "5.6.7.8", 1, 2)), ErrMalformed},
		{"v2 inet short", v2(0x21, 0x11, []byte{1, 2, 3, 4, 5, 6, 7, 8}), ErrMalformed},
		{"v2 inet6 short", v2(0x21, 0x21, inet4("1.2.3.4", "5.6.7.8", 1, 2)), ErrMalformed},
		{"v2 unix short", v2(0x21, 0x31, make([]byte, 100)), ErrMalformed},
		{"v2 TLV overrun", v2(0x21, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x05, 0x00, 0x09, 'a'}), ErrMalformed},
		{"v2 TLV truncated", v2(0x21, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x05, 0x00}), ErrMalformed},
		{"v2 CRC of 3 bytes", v2(0x21, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2), tlv(tlvCRC32C, []byte{1, 2, 3})), ErrMalformed},
	} {
		if _, n, err := Parse(tc.in); !errors.Is(err, tc.want) || n != 0 {
			t.Errorf("%s: n=%d err=%v, want %v", tc.name, n, err, tc.want)
		}
	}
}

func TestAppendErrors(t *testing.T) {
	h := Header{Command: CmdProxy, Protocol: ProtoTCP4, Source: ap("[::1]:1"), Destination: ap("1.2.3.4:2")}
	if _, err := h.AppendV1(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("v1 with a v6 source in TCP4: %v", err)
	}
	if _, err := h.AppendV2(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("v2 with a v6 source in TCP4: %v", err)
	}
	big := Header{Command: CmdLocal, Extra: make([]byte, 0x10000)}
	if _, err := big.AppendV2(nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("v2 of 64 KiB: %v", err)
	}
}

func TestParseTrusted(t *testing.T) {
	got, err := ParseTrusted([]string{"127.0.0.1", "10.0.0.0/8, ::1", "::ffff:192.0.2.0/120", "192.0.2.77/24"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.0/24"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseTrusted = %v, want %v", got, want)
	}
	for _, bad := range []string{"example.com", "10.0.0.0/33", "fe80::1%eth0", "::ffff:0:0/90"} {
		if _, err := ParseTrusted([]string{bad}); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseTrusted(%q): %v, want ErrConfig", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 56324 3333\r\n{}"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 56324, 3333), tlv(0x05, []byte("x"))))
	f.Add(withCRC(v2(0x21, 0x11, inet4("192.0.2.7", "198.51.100.1", 1, 2))))
	f.Add(v2(0x20, 0x00))
	f.Add([]byte(`{"id":1,"method":"mining.subscribe","params":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("n=%d of %d bytes", n, len(b))
		}
		if h.Version == 1 && n > MaxV1Length {
			t.Fatalf("v1 header of %d bytes", n)
		}
		var enc []byte
		if h.Version == 1 {
			enc, err = h.AppendV1(nil)
		} else {
			enc, err = h.AppendV2(nil)
		}
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", h, err)
		}
		h2, n2, err := Parse(enc)
		if err != nil || n2 != len(enc) || !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip of %q:\n%+v\n%+v (%d, %v)", b[:n], h, h2, n2, err)
		}
	})
}

// TestParseRealHAProxy: headers captured from Debian's HAProxy 2.6
// (send-proxy-v2 and send-proxy), each followed by the client's first
// stratum line. The client connected from 127.0.0.5.
func TestParseRealHAProxy(t *testing.T) {
	for _, tc := range []struct {
		file    string
		version int
		src     string
	}{
		{"haproxy-2.6-send-proxy-v2.bin", 2, "127.0.0.5:60619"},
		{"haproxy-2.6-send-proxy.bin", 1, "127.0.0.5:46293"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		h, n, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if h.Version != tc.version || h.Command != CmdProxy || h.Protocol != ProtoTCP4 || h.Source.String() != tc.src {
			t.Fatalf("%s: %+v", tc.file, h)
		}
		if rest := string(b[n:]); !strings.HasPrefix(rest, `{"id":1,"method":"mining.subscribe"`) {
			t.Fatalf("%s: after the header: %q", tc.file, rest)
		}
	}
}
