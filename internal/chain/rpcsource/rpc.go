package rpcsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rpcClient makes JSON-RPC 1.0 calls over HTTP POST, the dialect both btcd
// and Bitcoin Core speak. It is safe for concurrent use.
type rpcClient struct {
	url    string
	name   string
	client *http.Client
	auth   *credentials
	nextID atomic.Uint64
}

// MaxConnsPerNode is the most HTTP connections kept to one node at once.
const MaxConnsPerNode = 16

// newRPCClient returns a client of ep. Connections are kept alive.
func newRPCClient(ep endpoint) *rpcClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     ep.tls,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 8,
		// At most this many connections to a node at once (further calls
		// wait for one): stratumd reserves descriptors for them, and miners
		// get the rest (cmd/stratumd/fdbudget.go).
		MaxConnsPerHost: MaxConnsPerNode,
		// Below Core's rpcservertimeout (30 s), after which it closes
		// idle connections.
		IdleConnTimeout:    20 * time.Second,
		DisableCompression: true,
	}
	return &rpcClient{
		url:    ep.rpcURL,
		name:   ep.name,
		client: &http.Client{Transport: tr},
		auth:   &credentials{user: ep.User, pass: ep.Pass, cookieFile: ep.CookieFile},
	}
}

// close drops the idle connections.
func (c *rpcClient) close() {
	c.client.CloseIdleConnections()
}

// request is a JSON-RPC 1.0 request.
type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// response is a JSON-RPC reply.
type response struct {
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

// call invokes method with params and decodes the result into out (unless
// out is nil). A node's JSON-RPC error is returned as *RPCError; a reply
// that does not parse wraps ErrBadReply; refused credentials wrap ErrAuth;
// anything else is a transport failure (the node is down or unreachable).
func (c *rpcClient) call(ctx context.Context, method string, params []any, out any) error {
	raw, err := c.callRaw(ctx, method, params)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: %s %s: result: %w", ErrBadReply, c.name, method, err)
	}
	return nil
}

// callRaw is call returning the raw result.
func (c *rpcClient) callRaw(ctx context.Context, method string, params []any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(request{JSONRPC: "1.0", ID: c.nextID.Add(1), Method: method, Params: params})
	if err != nil {
		return nil, fmt.Errorf("rpcsource: encode %s: %w", method, err)
	}
	for attempt := 0; ; attempt++ {
		user, pass, err := c.auth.get(attempt > 0)
		if err != nil {
			return nil, fmt.Errorf("rpcsource: %s %s: %w", c.name, method, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("rpcsource: %s %s: %w", c.name, method, err)
		}
		req.Header.Set("Content-Type", "application/json")
		// Every call we make is idempotent (reads, and submitblock, whose
		// repetition is a duplicate): let the transport retry it on a
		// kept-alive connection the node closed meanwhile. An empty key
		// is not sent.
		req.Header["Idempotency-Key"] = []string{}
		req.SetBasicAuth(user, pass)
		resp, err := c.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("rpcsource: %s %s: %w", c.name, method, err)
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if attempt == 0 && c.auth.cookieFile != "" {
				continue // Core may have restarted and written a new cookie
			}
			return nil, fmt.Errorf("%w: %s %s: HTTP %d", ErrAuth, c.name, method, resp.StatusCode)
		}
		return c.decode(resp, method)
	}
}

// decode reads and decodes a reply, bounded by MaxReplySize. Core answers
// RPC errors with HTTP 500 (404 for unknown methods) and a JSON body, so the
// body is parsed whatever the status.
func (c *rpcClient) decode(resp *http.Response, method string) (json.RawMessage, error) {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxReplySize+1))
	if err != nil {
		return nil, fmt.Errorf("rpcsource: %s %s: read reply: %w", c.name, method, err)
	}
	if len(data) > MaxReplySize {
		return nil, fmt.Errorf("%w: %s %s: reply exceeds %d bytes", ErrBadReply, c.name, method, MaxReplySize)
	}
	var r response
	if err := json.Unmarshal(data, &r); err != nil {
		if resp.StatusCode != http.StatusOK {
			// Not JSON-RPC at all (a proxy, "Work queue depth exceeded"):
			// the node is not serving.
			return nil, fmt.Errorf("rpcsource: %s %s: HTTP %d: %q", c.name, method, resp.StatusCode, snippet(data))
		}
		return nil, fmt.Errorf("%w: %s %s: %w", ErrBadReply, c.name, method, err)
	}
	if r.Error != nil {
		return nil, r.Error
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("rpcsource: %s %s: HTTP %d without an error object", c.name, method, resp.StatusCode)
	}
	return r.Result, nil
}

// snippet returns the start of b for an error message.
func snippet(b []byte) string {
	const n = 120
	if len(b) > n {
		b = b[:n]
	}
	return strings.TrimSpace(string(b))
}

// credentials are a node's user and password, or its cookie file, read
// lazily and re-read on demand.
type credentials struct {
	user, pass string
	cookieFile string

	mu                     sync.Mutex
	cookieUser, cookiePass string
	cookieRead             bool
}

// get returns the credentials to use; with reload the cookie file is read
// again.
func (a *credentials) get(reload bool) (user, pass string, err error) {
	if a.cookieFile == "" {
		return a.user, a.pass, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cookieRead && !reload {
		return a.cookieUser, a.cookiePass, nil
	}
	u, p, err := readCookie(a.cookieFile)
	if err != nil {
		return "", "", err
	}
	a.cookieUser, a.cookiePass, a.cookieRead = u, p, true
	return u, p, nil
}

// readCookie reads a Bitcoin Core cookie file: "user:password" on one line.
func readCookie(path string) (user, pass string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("%w: cookie file: %w", ErrAuth, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", "", fmt.Errorf("%w: cookie file: %w", ErrAuth, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	user, pass, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok || user == "" || pass == "" {
		return "", "", fmt.Errorf("%w: cookie file %s is not user:password", ErrAuth, path)
	}
	return user, pass, nil
}

// isTransport reports whether err means the node did not answer (down,
// unreachable, refusing our credentials) rather than answering badly.
func isTransport(err error) bool {
	var rerr *RPCError
	return err != nil && !errors.As(err, &rerr) && !errors.Is(err, ErrBadReply)
}
