package proxyproto

import (
	"bufio"
	"context"
	"errors"
	"github.com/stratumd/stratumd/internal/testutil"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen starts a Listener on loopback trusting 127.0.0.1 only; clients
// dial from 127.0.0.1 (trusted, the proxy) or 127.0.0.2 (untrusted).
func listen(t *testing.T, cfg Config) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Trusted == nil {
		cfg.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	l, err := NewListener(inner, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func dialFrom(t *testing.T, l *Listener, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type acceptResult struct {
	c   net.Conn
	err error
}

// acceptAsync runs Accept in a goroutine; the result arrives on the channel.
func acceptAsync(l *Listener) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		c, err := l.Accept()
		ch <- acceptResult{c, err}
	}()
	return ch
}

func mustAccept(t *testing.T, ch <-chan acceptResult) *Conn {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c.(*Conn)
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return")
	}
	return nil
}

// readLine reads one line from c.
func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, s)
	}
	return s
}

// waitClosed waits until the peer closes c (a read returns EOF or a reset).
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [64]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection not closed by the listener")
		}
		return
	}
}

func TestTrustedV1(t *testing.T) {
	l := listen(t, Config{})
	ch := acceptAsync(l)
	c := dialFrom(t, l, "127.0.0.1")
	// Header and first stratum line in one write, as HAProxy may send them.
	if _, err := io.WriteString(c, "PROXY TCP4 203.0.113.9 127.0.0.1 40000 3333\r\n"+`{"id":1}`+"\n"); err != nil {
		t.Fatal(err)
	}
	pc := mustAccept(t, ch)
	if got := pc.RemoteAddr().String(); got != "203.0.113.9:40000" {
		t.Fatalf("RemoteAddr = %s", got)
	}
	if h := pc.Header(); h == nil || h.Version != 1 || h.Destination != ap("127.0.0.1:3333") {
		t.Fatalf("Header = %+v", h)
	}
	if line := readLine(t, pc); line != `{"id":1}`+"\n" {
		t.Fatalf("data after the header: %q", line)
	}
	// Replies go back on the same connection.
	io.WriteString(pc, "ok\n")
	if line := readLine(t, c); line != "ok\n" {
		t.Fatalf("reply %q", line)
	}
	if st := l.Stats(); st.Proxied != 1 || st.Refused != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTrustedV2ByteByByte(t *testing.T) {
	l := listen(t, Config{})
	ch := acceptAsync(l)
	c := dialFrom(t, l, "127.0.0.1")
	h := Header{Command: CmdProxy, Protocol: ProtoTCP6, Source: ap("[2001:db8::7]:5555"), Destination: ap("[2001:db8::1]:3333"),
		Extra: tlv(0x05, []byte("id"))}
	b, err := h.AppendV2(nil)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "hello\n"...)
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	pc := mustAccept(t, ch)
	if got := pc.RemoteAddr().String(); got != "[2001:db8::7]:5555" {
		t.Fatalf("RemoteAddr = %s", got)
	}
	if line := readLine(t, pc); line != "hello\n" {
		t.Fatalf("data after the header: %q", line)
	}
}

func TestLocalKeepsPeerAddress(t *testing.T) {
	for name, hdr := range map[string][]byte{
		"v2 LOCAL":   v2(0x20, 0x00),
		"v1 UNKNOWN": []byte("PROXY UNKNOWN\r\n"),
		"v2 UNIX":    v2(0x21, 0x31, make([]byte, unixAddrLen)),
	} {
		t.Run(name, func(t *testing.T) {
			l := listen(t, Config{})
			ch := acceptAsync(l)
			c := dialFrom(t, l, "127.0.0.1")
			c.Write(append(hdr, "x\n"...))
			pc := mustAccept(t, ch)
			if pc.RemoteAddr().String() != c.LocalAddr().String() {
				t.Fatalf("RemoteAddr = %s, want the peer %s", pc.RemoteAddr(), c.LocalAddr())
			}
			if line := readLine(t, pc); line != "x\n" {
				t.Fatalf("data %q", line)
			}
			if st := l.Stats(); st.Local != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestTrustedRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		send []byte
		want error
	}{
		{"no header", []byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n"), ErrNoHeader},
		{"malformed v1", []byte("PROXY TCP4 1.2.3.4 ::1 1 2\r\n"), ErrMalformed},
		{"v1 without end", []byte("PROXY TCP4 " + string(make([]byte, 200))), ErrMalformed},
		{"v2 too long", v2(0x21, 0x11, inet4("1.2.3.4", "5.6.7.8", 1, 2), tlv(0xe0, make([]byte, 600))), ErrTooLong},
		{"eof inside header", []byte("PROXY TCP4 1.2.3.4"), io.ErrUnexpectedEOF},
		{"eof before header", nil, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testutil.SyncBuffer
			l := listen(t, Config{MaxHeaderSize: 512, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			c := dialFrom(t, l, "127.0.0.1")
			c.Write(tc.send)
			if errors.Is(tc.want, io.EOF) || errors.Is(tc.want, io.ErrUnexpectedEOF) {
				c.(*net.TCPConn).CloseWrite()
			}
			// Nobody calls Accept: the connection is closed by the
			// listener itself, after counting and logging the refusal.
			waitClosed(t, c)
			if st := l.Stats(); st.Refused != 1 || st.Proxied+st.Local != 0 {
				t.Fatalf("stats %+v", st)
			}
			if !strings.Contains(logs.String(), tc.want.Error()) {
				t.Fatalf("log %q does not name %v", logs.String(), tc.want)
			}
		})
	}
}

func TestHeaderTimeout(t *testing.T) {
	l := listen(t, Config{HeaderTimeout: 200 * time.Millisecond})
	c := dialFrom(t, l, "127.0.0.1")
	c.Write([]byte("PROXY TCP4 ")) // and then nothing
	waitClosed(t, c)
}

// TestSlowHeaderDoesNotStallAccept: a trusted connection that never sends
// its header does not keep a later one from being accepted.
func TestSlowHeaderDoesNotStallAccept(t *testing.T) {
	l := listen(t, Config{HeaderTimeout: time.Hour})
	slow := dialFrom(t, l, "127.0.0.1")
	slow.Write([]byte("PROXY TCP4 1.2.3.4")) // stalls mid-header
	ch := acceptAsync(l)
	fast := dialFrom(t, l, "127.0.0.1")
	fast.Write([]byte("PROXY TCP4 198.51.100.4 127.0.0.1 1000 3333\r\n"))
	pc := mustAccept(t, ch)
	if pc.RemoteAddr().String() != "198.51.100.4:1000" {
		t.Fatalf("accepted %s", pc.RemoteAddr())
	}
	// An untrusted connection is not held up either.
	ch = acceptAsync(l)
	dialFrom(t, l, "127.0.0.2")
	if pc := mustAccept(t, ch); pc.Header() != nil {
		t.Fatal("untrusted connection has a header")
	}
	// Close releases the stalled header read at once.
	start := time.Now()
	l.Close()
	waitClosed(t, slow)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestUntrusted(t *testing.T) {
	l := listen(t, Config{})
	for _, tc := range []struct {
		name, send string
		refuse     bool
	}{
		{"stratum", `{"id":1,"method":"mining.subscribe","params":[]}` + "\n", false},
		{"starts like PROXY", "PROBABLY NOT\n", false},
		{"v2 signature prefix", "\r\n\r\nhello\n", false},
		{"v1 header", "PROXY TCP4 10.9.8.7 127.0.0.1 1 3333\r\nx\n", true},
		{"v2 header", string(v2(0x21, 0x11, inet4("10.9.8.7", "127.0.0.1", 1, 2))) + "x\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := acceptAsync(l)
			c := dialFrom(t, l, "127.0.0.2")
			pc := mustAccept(t, ch)
			if pc.RemoteAddr().String() != c.LocalAddr().String() {
				t.Fatalf("RemoteAddr = %s, want the peer %s", pc.RemoteAddr(), c.LocalAddr())
			}
			// One byte at a time: the check must cope with short reads.
			for i := range len(tc.send) {
				c.Write([]byte{tc.send[i]})
			}
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, len(tc.send))
			n, err := io.ReadFull(pc, buf)
			got := string(buf[:n])
			if tc.refuse {
				if !errors.Is(err, ErrUntrustedHeader) {
					t.Fatalf("read %q, %v; want ErrUntrustedHeader", got, err)
				}
				return
			}
			if err != nil || got != tc.send {
				t.Fatalf("read %q, %v; want %q", got, err, tc.send)
			}
		})
	}
	if st := l.Stats(); st.UntrustedHeaders != 2 || st.Direct != 5 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUntrustedEarlyEOF: a peer that sends part of a signature and closes
// gets its bytes and then EOF, like any stream.
func TestUntrustedEarlyEOF(t *testing.T) {
	l := listen(t, Config{})
	ch := acceptAsync(l)
	c := dialFrom(t, l, "127.0.0.2")
	c.Write([]byte("PRO"))
	c.(*net.TCPConn).CloseWrite()
	pc := mustAccept(t, ch)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(pc)
	if err != nil || string(b) != "PRO" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
}

func TestNoTrustedPassesEverything(t *testing.T) {
	l := listen(t, Config{Trusted: []netip.Prefix{}})
	ch := acceptAsync(l)
	c := dialFrom(t, l, "127.0.0.1")
	pc := mustAccept(t, ch)
	if pc.Header() != nil || pc.RemoteAddr().String() != c.LocalAddr().String() {
		t.Fatalf("conn %v %+v", pc.RemoteAddr(), pc.Header())
	}
}

func TestConfigChecked(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	for _, cfg := range []Config{
		{HeaderTimeout: -1},
		{MaxHeaderSize: 100},
		{MaxHeaderSize: MaxV2Length + 1},
		{MaxPending: -1},
		{Trusted: []netip.Prefix{{}}},
	} {
		if _, err := NewListener(inner, cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("NewListener(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}

// TestServeStyleShutdown: a caller blocked in Accept gets net.ErrClosed when
// another goroutine closes the listener, as stratum.Server.Serve does.
func TestServeStyleShutdown(t *testing.T) {
	l := listen(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	ch := acceptAsync(l)
	cancel()
	select {
	case r := <-ch:
		if !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("Accept: %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
