//go:build chaos

package hostile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/stratumd/stratumd/internal/miner"
)

// ipFor returns the loopback address of attack n: 127.0.<1+n/250>.<1+n%250>.
// 127.0.0.1 is the honest miners'.
func ipFor(n int) string { return fmt.Sprintf("127.0.%d.%d", 1+n/250, 1+n%250) }

// dialFrom connects to addr from the loopback address ip.
func dialFrom(ctx context.Context, ip, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return d.DialContext(ctx, "tcp", addr)
}

// minerFrom runs a miner handshake on a connection from ip.
func minerFrom(ctx context.Context, ip, addr string, opts miner.Options) (*miner.Miner, error) {
	c, err := dialFrom(ctx, ip, addr)
	if err != nil {
		return nil, err
	}
	m := miner.New(c, opts)
	if err := m.Handshake(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// outcome is how the server answered one hostile request.
type outcome string

const (
	outResult  outcome = "result"                 // a reply without error (accepted as valid)
	outClosed  outcome = "closed"                 // the server closed the connection
	outRefused outcome = "closed without a reply" // e.g. refused at accept once banned; the server log says which
	outHang    outcome = "hang"                   // nothing within the wait: a failure
)

// errorOutcome is a reply with a Stratum error code.
func errorOutcome(code int) outcome { return outcome(fmt.Sprintf("error %d", code)) }

// raw is a hand-driven connection.
type raw struct {
	c   net.Conn
	r   *bufio.Reader
	any bool // read anything yet
}

func rawFrom(ctx context.Context, ip, addr string) (*raw, error) {
	c, err := dialFrom(ctx, ip, addr)
	if err != nil {
		return nil, err
	}
	return &raw{c: c, r: bufio.NewReader(c)}, nil
}

func (r *raw) close() { r.c.Close() }

func (r *raw) send(b []byte) error {
	_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := r.c.Write(b)
	return err
}

// reply reads lines until a reply (a line with a non-null id, or with an
// error, or with a result) and classifies it; notifications are skipped. A
// closed connection is outClosed (outRefused if nothing was ever read).
func (r *raw) reply(wait time.Duration) outcome {
	_ = r.c.SetReadDeadline(time.Now().Add(wait))
	for {
		line, err := r.r.ReadBytes('\n')
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return outHang
			case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.EPIPE):
				if !r.any {
					return outRefused
				}
				return outClosed
			default:
				if !r.any {
					return outRefused
				}
				return outClosed
			}
		}
		r.any = true
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if json.Unmarshal(line, &m) != nil {
			return outcome("bad reply " + string(line))
		}
		if m.Method != "" {
			continue // a notification
		}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			return errorOutcome(errCode(m.Error))
		}
		return outResult
	}
}

// closedWithin waits for the server to close the connection (reading and
// dropping anything it sends). It reports whether it did within wait.
func (r *raw) closedWithin(wait time.Duration) bool {
	_ = r.c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, r.r)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// errCode reads the code of an error member: [code, msg, tb] or {"code":..}.
func errCode(v json.RawMessage) int {
	var arr []json.RawMessage
	if json.Unmarshal(v, &arr) == nil && len(arr) > 0 {
		var c int
		if json.Unmarshal(arr[0], &c) == nil {
			return c
		}
	}
	var obj struct {
		Code int `json:"code"`
	}
	if json.Unmarshal(v, &obj) == nil {
		return obj.Code
	}
	return -1
}

// isTimeout reports a deadline error.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
