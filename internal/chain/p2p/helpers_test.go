package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/embedded"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on an event; reaching it fails the test.
const waitTimeout = 60 * time.Second

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startNode builds a regtest node with cfg and runs it until the test
// ends; the cleanup checks Run's result.
func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	return startNodeWith(t, cfg, nil)
}

// startNodeWith is startNode with node, when not nil, changing the
// embedded node's Config.
func startNodeWith(t testing.TB, cfg Config, node func(*embedded.Config)) *Node {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	if cfg.DataDir == "" {
		cfg.DataDir = dir
	}
	cfg.Logger = logger
	cfg.DisableDNSSeed = true
	nodeCfg := embedded.Config{
		Network:             &chaincfg.RegressionNetParams,
		DataDir:             dir,
		Logger:              logger.With("test", "node"),
		UtxoCacheMaxSizeMiB: 2,
	}
	if node != nil {
		node(&nodeCfg)
	}
	n, err := NewNode(nodeCfg, cfg)
	if err != nil {
		t.Fatalf("NewNode: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

// waitTip reads updates until the node's tip is want (or fails).
func waitTip(t testing.TB, n *Node, want string) chain.Update {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		if n.BestHash().String() == want {
			return chain.Update{Kind: chain.NewTip, Tip: n.BestHash(), Height: n.BestHeight()}
		}
		select {
		case u, ok := <-n.Updates():
			if !ok {
				t.Fatal("updates closed")
			}
			if u.Tip.String() == want {
				return u
			}
		case <-timeout:
			t.Fatalf("tip %s not reached; at %d %s", want, n.BestHeight(), n.BestHash())
		}
	}
}

// waitFor waits for cond, re-checking it whenever the node sends an update
// or tick fires; tick is for conditions no update signals (peer counts).
func waitFor(t testing.TB, n *Node, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-n.Updates():
		case <-tick.C:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// rawPeer is a hand-driven bitcoin peer speaking wire messages over a TCP
// connection, for misbehaviour and announcement tests.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
	pver uint32
	msgs chan wire.Message
	err  chan error
}

// newRawPeer wraps conn and starts reading messages from it, at
// protocol version 70013 (no BIP 152).
func newRawPeer(t testing.TB, conn net.Conn) *rawPeer {
	t.Helper()
	return newRawPeerVersion(t, conn, wire.FeeFilterVersion)
}

// newRawPeerVersion wraps conn and starts reading messages from it at
// protocol version pver. BIP 152 messages are read too, through the same
// bip152Conn the node uses, and arrive in stream order.
func newRawPeerVersion(t testing.TB, conn net.Conn, pver uint32) *rawPeer {
	t.Helper()
	p := &rawPeer{t: t, conn: conn, pver: pver, msgs: make(chan wire.Message, 1024),
		err: make(chan error, 1)}
	r := &bip152Conn{Conn: conn, net: wire.TestNet, handle: func(m wire.Message, err error) error {
		if err != nil {
			return err
		}
		p.msgs <- m
		return nil
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, msg, _, err := wire.ReadMessageWithEncodingN(r, p.pver, wire.TestNet, wire.WitnessEncoding)
			if errors.Is(err, wire.ErrUnknownMessage) {
				continue
			}
			if err != nil {
				p.err <- err
				close(p.msgs)
				return
			}
			p.msgs <- msg
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return p
}

// send writes msg.
func (p *rawPeer) send(msg wire.Message) {
	p.t.Helper()
	if _, err := wire.WriteMessageWithEncodingN(p.conn, msg, p.pver, wire.TestNet, wire.WitnessEncoding); err != nil {
		p.t.Fatalf("raw peer send %s: %v", msg.Command(), err)
	}
}

// sendRaw writes a message of command cmd with payload as it is.
func (p *rawPeer) sendRaw(cmd string, payload []byte) {
	p.t.Helper()
	var hdr [msgHeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[:4], uint32(wire.TestNet))
	copy(hdr[4:16], cmd)
	binary.LittleEndian.PutUint32(hdr[16:20], uint32(len(payload)))
	copy(hdr[20:], chainhash.DoubleHashB(payload)[:4])
	if _, err := p.conn.Write(append(hdr[:], payload...)); err != nil {
		p.t.Fatalf("raw peer send %s: %v", cmd, err)
	}
}

// next returns the next message matching keep, skipping others; nil when
// the connection closed.
func (p *rawPeer) next(keep func(wire.Message) bool) wire.Message {
	p.t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				return nil
			}
			if keep(m) {
				return m
			}
		case <-timeout:
			p.t.Fatal("raw peer: no message")
			return nil
		}
	}
}

// until returns the messages received up to and including the first one
// matching keep.
func (p *rawPeer) until(keep func(wire.Message) bool) []wire.Message {
	p.t.Helper()
	var got []wire.Message
	for {
		m := p.next(func(wire.Message) bool { return true })
		if m == nil {
			p.t.Fatal("raw peer: connection closed")
		}
		got = append(got, m)
		if keep(m) {
			return got
		}
	}
}

// barrier sends a ping and returns every message received before its
// pong: the node answers a ping after everything it queued before reading
// it.
func (p *rawPeer) barrier() []wire.Message {
	p.t.Helper()
	nonce := uint64(time.Now().UnixNano())
	p.send(wire.NewMsgPing(nonce))
	var got []wire.Message
	for {
		m := p.next(func(wire.Message) bool { return true })
		if m == nil {
			p.t.Fatal("raw peer: connection closed before pong")
		}
		if pong, ok := m.(*wire.MsgPong); ok && pong.Nonce == nonce {
			return got
		}
		got = append(got, m)
	}
}

// waitClosed waits until the node closes the connection.
func (p *rawPeer) waitClosed() {
	p.t.Helper()
	if m := p.next(func(wire.Message) bool { return false }); m != nil {
		p.t.Fatalf("unexpected %s", m.Command())
	}
	if err := <-p.err; !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		p.t.Logf("connection ended with %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// version returns our raw peer's version message claiming height and user
// agent ua.
func (p *rawPeer) version(height int32, ua string) *wire.MsgVersion {
	me := wire.NewNetAddressIPPort(net.ParseIP("127.0.0.1"), 0, wire.SFNodeNetwork|wire.SFNodeWitness)
	you := wire.NewNetAddressIPPort(net.ParseIP("127.0.0.1"), 0, 0)
	v := wire.NewMsgVersion(me, you, uint64(time.Now().UnixNano()), height)
	v.ProtocolVersion = int32(p.pver)
	v.Services = wire.SFNodeNetwork | wire.SFNodeWitness
	v.UserAgent = ua
	return v
}

// handshake completes the version handshake (we speak first when
// inbound to the node).
func (p *rawPeer) handshake(height int32, ua string, weDial bool) {
	p.t.Helper()
	isVersion := func(m wire.Message) bool { _, ok := m.(*wire.MsgVersion); return ok }
	isVerAck := func(m wire.Message) bool { _, ok := m.(*wire.MsgVerAck); return ok }
	if weDial {
		p.send(p.version(height, ua))
		if p.next(isVersion) == nil {
			p.t.Fatal("no version from node")
		}
	} else {
		if p.next(isVersion) == nil {
			p.t.Fatal("no version from node")
		}
		p.send(p.version(height, ua))
	}
	p.send(wire.NewMsgVerAck())
	if p.next(isVerAck) == nil {
		p.t.Fatal("no verack from node")
	}
}

// dialRaw connects a raw peer speaking protocol 70013 to addr.
func dialRaw(t testing.TB, addr string) *rawPeer {
	t.Helper()
	return dialRawVersion(t, addr, wire.FeeFilterVersion)
}

// dialRawVersion connects a raw peer speaking protocol pver to addr.
func dialRawVersion(t testing.TB, addr string, pver uint32) *rawPeer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return newRawPeerVersion(t, conn, pver)
}

// netListen listens on a free loopback port.
func netListen() (net.Listener, error) {
	return net.Listen("tcp", "127.0.0.1:0")
}

// drainUpdates discards the updates pending on n.
func drainUpdates(n *Node) {
	for {
		select {
		case <-n.Updates():
		default:
			return
		}
	}
}
