package proxyproto

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultHeaderTimeout = 5 * time.Second
	DefaultMaxHeaderSize = 4096
	DefaultMaxPending    = 1024
	// minMaxHeaderSize leaves room for the longest addresses (AF_UNIX).
	minMaxHeaderSize = V2HeaderLength + unixAddrLen
)

// Config configures a Listener.
type Config struct {
	// Trusted are the sources (load balancers) whose connections must start
	// with a PROXY header. Connections from other sources carry none.
	Trusted []netip.Prefix
	// HeaderTimeout bounds the time a trusted connection has to send its
	// whole header; DefaultHeaderTimeout when zero.
	HeaderTimeout time.Duration
	// MaxHeaderSize bounds a version 2 header (TLVs included);
	// DefaultMaxHeaderSize when zero, at least 232.
	MaxHeaderSize int
	// MaxPending bounds the trusted connections whose header is being read
	// at once; further connections wait in the kernel's backlog.
	// DefaultMaxPending when zero.
	MaxPending int
	// Logger receives refused connections (debug level for a connection
	// that closed before sending anything: a TCP health check); none when
	// nil.
	Logger *slog.Logger
	// Now is the clock for header deadlines; time.Now when nil.
	Now func() time.Time
}

// ParseTrusted reads trusted sources: CIDR prefixes ("10.0.0.0/8") or single
// addresses ("127.0.0.1", "::1"), each entry possibly a comma-separated list.
// IPv4-mapped IPv6 forms are unmapped.
func ParseTrusted(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, entry := range list {
		for s := range strings.SplitSeq(entry, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				a := p.Addr()
				bits := p.Bits()
				if a.Is4In6() {
					if bits < 96 {
						return nil, fmt.Errorf("%w: trusted source %q: an IPv4-mapped prefix shorter than /96", ErrConfig, s)
					}
					a, bits = a.Unmap(), bits-96
				}
				out = append(out, netip.PrefixFrom(a, bits).Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%w: trusted source %q is neither an address nor a CIDR prefix", ErrConfig, s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

// Stats counts what a Listener did.
type Stats struct {
	// Proxied: trusted connections accepted with a header naming a client.
	Proxied uint64
	// Local: trusted connections accepted with a LOCAL, UNKNOWN or
	// non-IP header (the real peer address kept).
	Local uint64
	// Direct: connections from untrusted sources passed through.
	Direct uint64
	// Refused: trusted connections closed for a missing, malformed, too
	// long or late header.
	Refused uint64
	// UntrustedHeaders: untrusted connections closed for sending a header.
	UntrustedHeaders uint64
}

type stats struct {
	proxied, local, direct, refused, untrusted atomic.Uint64
}

// Listener wraps a net.Listener for the PROXY protocol. NewListener starts
// one goroutine that accepts from the wrapped listener, and each trusted
// connection's header is read in a goroutine of its own; Close stops them
// and waits for them. Accept returns *Conn values. It is safe for
// concurrent use.
type Listener struct {
	inner net.Listener
	cfg   Config
	log   *slog.Logger

	results  chan accepted
	sem      chan struct{}
	done     chan struct{} // closed by Close
	loopDone chan struct{} // closed when the accept loop ended
	loopErr  error         // why; set before loopDone is closed

	mu      sync.Mutex
	pending map[net.Conn]struct{} // trusted connections whose header is being read
	closed  bool                  // Close has closed the pending connections

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	st        stats
}

// NewListener wraps inner. With no trusted sources every connection passes
// through as from an untrusted one.
func NewListener(inner net.Listener, cfg Config) (*Listener, error) {
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.MaxHeaderSize == 0 {
		cfg.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	switch {
	case cfg.HeaderTimeout < 0:
		return nil, fmt.Errorf("%w: HeaderTimeout %v", ErrConfig, cfg.HeaderTimeout)
	case cfg.MaxHeaderSize < minMaxHeaderSize || cfg.MaxHeaderSize > MaxV2Length:
		return nil, fmt.Errorf("%w: MaxHeaderSize %d outside [%d, %d]", ErrConfig, cfg.MaxHeaderSize, minMaxHeaderSize, MaxV2Length)
	case cfg.MaxPending < 0:
		return nil, fmt.Errorf("%w: MaxPending %d", ErrConfig, cfg.MaxPending)
	}
	for _, p := range cfg.Trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("%w: trusted prefix %v", ErrConfig, p)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Listener{
		inner:    inner,
		cfg:      cfg,
		log:      cfg.Logger,
		results:  make(chan accepted),
		sem:      make(chan struct{}, cfg.MaxPending),
		done:     make(chan struct{}),
		loopDone: make(chan struct{}),
		pending:  make(map[net.Conn]struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr returns the wrapped listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Stats returns the counters so far.
func (l *Listener) Stats() Stats {
	return Stats{
		Proxied: l.st.proxied.Load(), Local: l.st.local.Load(), Direct: l.st.direct.Load(),
		Refused: l.st.refused.Load(), UntrustedHeaders: l.st.untrusted.Load(),
	}
}

// Accept returns the next connection: an untrusted one as soon as it is
// accepted, a trusted one once its header is read. It returns the wrapped
// listener's errors (temporary ones included, for the caller to back off),
// and net.ErrClosed after Close.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case r := <-l.results:
		return r.conn, r.err
	case <-l.done:
		return nil, fmt.Errorf("proxyproto: accept: %w", net.ErrClosed)
	case <-l.loopDone:
		// A connection whose header was read just before may still wait.
		select {
		case r := <-l.results:
			return r.conn, r.err
		default:
		}
		return nil, l.loopErr
	}
}

// Close closes the wrapped listener and every connection whose header is
// still being read, and waits for the Listener's goroutines.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.closeErr = l.inner.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return l.closeErr
}

// accepted is what Accept returns next.
type accepted struct {
	conn net.Conn
	err  error
}

// deliver hands c to Accept, or closes it when the Listener closes first.
func (l *Listener) deliver(c net.Conn) {
	select {
	case l.results <- accepted{conn: c}:
	case <-l.done:
		c.Close()
	}
}

// deliverErr hands a temporary accept error to Accept; false when the
// Listener closed first.
func (l *Listener) deliverErr(err error) bool {
	select {
	case l.results <- accepted{err: err}:
		return true
	case <-l.done:
		return false
	}
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Hand it to the caller, whose back-off paces this loop.
				if !l.deliverErr(err) {
					return
				}
				continue
			}
			l.loopErr = err
			close(l.loopDone)
			return
		}
		if !l.isTrusted(c.RemoteAddr()) {
			l.st.direct.Add(1)
			l.deliver(&Conn{Conn: c, check: true, st: &l.st})
			continue
		}
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			c.Close()
			return
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.pending[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			pc, err := l.readHeader(c)
			l.mu.Lock()
			delete(l.pending, c)
			l.mu.Unlock()
			<-l.sem
			if err != nil {
				l.st.refused.Add(1)
				lvl := slog.LevelWarn
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
					lvl = slog.LevelDebug // a TCP health check, or Close
				}
				l.log.Log(context.Background(), lvl, "proxyproto: connection refused", "peer", c.RemoteAddr().String(), "err", err)
				c.Close()
				return
			}
			l.deliver(pc)
		}()
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// isTrusted reports whether the peer addr is a trusted source.
func (l *Listener) isTrusted(addr net.Addr) bool {
	if len(l.cfg.Trusted) == 0 || addr == nil {
		return false
	}
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range l.cfg.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// readHeader reads c's header within the deadline and size bound.
func (l *Listener) readHeader(c net.Conn) (*Conn, error) {
	if err := c.SetReadDeadline(l.cfg.Now().Add(l.cfg.HeaderTimeout)); err != nil {
		return nil, fmt.Errorf("proxyproto: set header deadline: %w", err)
	}
	buf := make([]byte, 0, 256)
	for {
		h, n, perr := Parse(buf)
		if perr == nil {
			if err := c.SetReadDeadline(time.Time{}); err != nil {
				return nil, fmt.Errorf("proxyproto: clear header deadline: %w", err)
			}
			pc := &Conn{Conn: c, header: &h}
			if rest := buf[n:]; len(rest) > 0 {
				pc.rest = append([]byte(nil), rest...)
			}
			if ap, ok := h.ClientAddr(); ok {
				pc.remote = net.TCPAddrFromAddrPort(ap)
				l.st.proxied.Add(1)
			} else {
				l.st.local.Add(1)
			}
			return pc, nil
		}
		if !errors.Is(perr, ErrIncomplete) {
			return nil, perr
		}
		if len(buf) >= V2HeaderLength && buf[0] == v2Sig[0] {
			need := v2Length(buf)
			if need > l.cfg.MaxHeaderSize {
				return nil, fmt.Errorf("%w: v2 header of %d bytes, at most %d", ErrTooLong, need, l.cfg.MaxHeaderSize)
			}
			if need > cap(buf) {
				buf = append(make([]byte, 0, need), buf...)
			}
		}
		if len(buf) == cap(buf) {
			return nil, fmt.Errorf("%w: no header within %d bytes", ErrMalformed, len(buf))
		}
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil && k == 0 {
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("proxyproto: reading header (%d bytes): %w", len(buf), err)
		}
	}
}

// Conn is a connection accepted by a Listener.
type Conn struct {
	net.Conn
	header *Header
	remote net.Addr // the client, when the header names one
	rest   []byte   // bytes read past the header (or peeked), not yet returned

	// check: an untrusted connection, refused at the first Read when it
	// starts with a header.
	check   bool
	readErr error // an error met while peeking, returned once rest is drained
	st      *stats
}

// Header returns the header the connection started with, or nil for a
// connection from an untrusted source.
func (c *Conn) Header() *Header { return c.header }

// RemoteAddr returns the client address from the header, or the real peer
// address (untrusted source, LOCAL, UNKNOWN, non-IP families).
func (c *Conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// NetConn returns the wrapped connection.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Read reads the connection's data after the header. For an untrusted
// connection the first Read fails with ErrUntrustedHeader when the data
// starts with a PROXY header signature. Read is not safe for concurrent use
// (one reader per connection, as for any stream).
func (c *Conn) Read(p []byte) (int, error) {
	if c.check {
		c.check = false
		if err := c.peek(); err != nil {
			return 0, err
		}
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		if len(c.rest) == 0 {
			c.rest = nil
		}
		return n, nil
	}
	if c.readErr != nil {
		return 0, c.readErr
	}
	return c.Conn.Read(p)
}

// peek reads just enough of an untrusted connection to tell whether it
// starts with a header signature (one byte for any stratum client).
func (c *Conn) peek() error {
	var b [len(v2Sig)]byte
	n := 0
	for {
		yes, undecided := startsLikeHeader(b[:n])
		if yes {
			if c.st != nil {
				c.st.untrusted.Add(1)
			}
			return fmt.Errorf("%w: peer %v", ErrUntrustedHeader, c.Conn.RemoteAddr())
		}
		if n > 0 && !undecided {
			break
		}
		k, err := c.Conn.Read(b[n:])
		n += k
		if err != nil {
			c.readErr = err
			break
		}
	}
	if n > 0 {
		c.rest = append([]byte(nil), b[:n]...)
	}
	return nil
}
