package rpcsource

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/go-zeromq/zmq4"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/testutil"
)

// TestZMQLibzmq runs the ZMQ subscriber against a real libzmq publisher
// (Debian's libzmq5 through python3-zmq, testdata/zmqpub.py) that sends
// Core's exact hashblock frames, in front of the fake Core's RPC:
//
//   - the frames decode to the published hash and sequence (Core's byte
//     order, read by a plain zmq4 SUB beside the source);
//   - a hashblock in sequence gives NewTip; a malformed one is counted;
//   - a sequence gap on the same tip is counted, logged and answered with
//     a fresh template (MempoolChanged), and with NewTip when the tip moved;
//   - the publisher restarts on the same endpoint, numbering from 0 again:
//     the subscription comes back, the restart counts as a gap, and the
//     RPC node never goes down.
func TestZMQLibzmq(t *testing.T) {
	core := newFakeCore(t, "u", "p")
	pub := startLibzmqPub(t, "tcp://127.0.0.1:*")
	t.Logf("publisher: %s", pub.banner)

	// A plain SUB checks the bytes on the wire first: Core's three frames,
	// the hash reversed, the sequence little-endian.
	checkWireFrames(t, pub)

	s := startSource(t, fastConfig(NodeConfig{URL: core.srv.URL, User: "u", Pass: "p", ZMQBlock: pub.endpoint}))
	waitUpdate(t, s, "tip at genesis", tipIs(*chaincfg.RegressionNetParams.GenesisHash))

	// PUB drops what it sends before a subscription reaches it: repeat
	// until the source has seen one (the numbers it sees stay consecutive).
	core.set(func(f *fakeCore) { f.tip, f.height = hashOf(1), 1 })
	pub.blockUntil(t, s, hashOf(1), tipIs(hashOf(1)))

	// In sequence: NewTip, no gap. A malformed message is counted.
	pub.bad(t)
	core.set(func(f *fakeCore) { f.tip, f.height = hashOf(2), 2 })
	pub.block(t, hashOf(2))
	waitUpdate(t, s, "tip 2", tipIs(hashOf(2)))
	if st := s.Stats(); st.ZMQGaps != 0 || st.InvalidReplies != 1 {
		t.Fatalf("in sequence: stats %+v", st)
	}

	// A gap on an unchanged tip: counted, and a fresh template asked for.
	pub.skip(t, 3)
	pub.block(t, hashOf(2))
	u := waitUpdate(t, s, "fresh template after a gap", func(u chain.Update) bool { return true })
	if u.Kind != chain.MempoolChanged || u.Tip != hashOf(2) {
		t.Fatalf("after a gap: update %+v, want mempool-changed on tip 2", u)
	}
	if st := s.Stats(); st.ZMQGaps != 1 || st.Nodes[0].ZMQGaps != 1 {
		t.Fatalf("after a gap: stats %+v", st)
	}

	// A gap with a new tip: NewTip. The large skip keeps the restarted
	// publisher's numbers (from 0) far from last+1.
	core.set(func(f *fakeCore) { f.tip, f.height = hashOf(3), 3 })
	pub.skip(t, 1000)
	pub.block(t, hashOf(3))
	waitUpdate(t, s, "tip 3", tipIs(hashOf(3)))
	if st := s.Stats(); st.ZMQGaps != 2 {
		t.Fatalf("after a gap with a new tip: stats %+v", st)
	}

	// The publisher restarts on the same endpoint (Core restarted and has
	// a new block); its numbers start at 0 again.
	pub.stop(t)
	core.set(func(f *fakeCore) { f.tip, f.height = hashOf(4), 4 })
	pub = startLibzmqPub(t, pub.endpoint)
	pub.blockUntil(t, s, hashOf(4), tipIs(hashOf(4)))
	if st := s.Stats(); st.ZMQGaps != 3 || st.Outages != 0 || !st.Nodes[0].Healthy {
		t.Fatalf("after the publisher's restart: stats %+v", st)
	}
	// And in sequence again.
	core.set(func(f *fakeCore) { f.tip, f.height = hashOf(5), 5 })
	pub.block(t, hashOf(5))
	waitUpdate(t, s, "tip 5", tipIs(hashOf(5)))
	if st := s.Stats(); st.ZMQGaps != 3 {
		t.Fatalf("in sequence after the restart: stats %+v", st)
	}
}

// TestZMQSeq checks the sequence follower alone: consecutive numbers,
// wrap-around, gaps and a restart from 0.
func TestZMQSeq(t *testing.T) {
	var z zmqSeq
	steps := []struct {
		seq  uint32
		gap  bool
		prev uint32
	}{
		{7, false, 0}, // the first message may have any number
		{8, false, 7},
		{10, true, 8},
		{0xffffffff, true, 10},
		{0, false, 0xffffffff}, // wraps
		{0, true, 0},           // a restart right after a wrap
		{1, false, 0},
	}
	for i, st := range steps {
		gap, prev := z.next(st.seq)
		if gap != st.gap || (i > 0 && prev != st.prev) {
			t.Fatalf("step %d (seq %d): gap %v prev %d, want %v %d", i, st.seq, gap, prev, st.gap, st.prev)
		}
	}
}

// checkWireFrames subscribes to pub with a plain zmq4 SUB, publishes
// hashblocks until one arrives, and checks its frames byte for byte.
func checkWireFrames(t *testing.T, pub *libzmqPub) {
	t.Helper()
	raw := zmq4.NewSub(context.Background())
	defer raw.Close()
	if err := raw.Dial(pub.endpoint); err != nil {
		t.Fatal(err)
	}
	if err := raw.SetOption(zmq4.OptionSubscribe, zmqTopicHashBlock); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan zmq4.Msg, 1)
	go func() {
		defer close(msgs)
		if m, err := raw.Recv(); err == nil {
			msgs <- m
		}
	}()
	h := hashOf(9)
	sent := map[uint32]bool{}
	deadline := time.After(waitTimeout)
	var m zmq4.Msg
	for m.Frames == nil {
		sent[pub.block(t, h)] = true
		select {
		case got, ok := <-msgs:
			if !ok {
				t.Fatal("raw subscriber: receive failed")
			}
			m = got
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("raw subscriber: nothing received")
		}
	}
	rev := h
	slices.Reverse(rev[:])
	if len(m.Frames) != 3 || string(m.Frames[0]) != "hashblock" || !bytes.Equal(m.Frames[1], rev[:]) ||
		len(m.Frames[2]) != 4 || !sent[binary.LittleEndian.Uint32(m.Frames[2])] {
		t.Fatalf("frames %x, want hashblock, %x, one of the sequence numbers sent %v", m.Frames, rev, sent)
	}
	if got, seq, err := parseHashBlock(m.Frames); err != nil || got != h || !sent[seq] {
		t.Fatalf("parseHashBlock: %s %d %v", got, seq, err)
	}
}

// libzmqPub is testdata/zmqpub.py, a libzmq PUB socket sending Core's
// hashblock messages, driven over its stdin.
type libzmqPub struct {
	cmd      *exec.Cmd
	in       io.WriteCloser
	lines    chan string
	endpoint string
	banner   string
	stderr   *testutil.SyncBuffer
}

// zmqPython returns a python3 that imports zmq: $STRATUMD_ZMQ_PYTHON (set
// by make test), or what scripts/zmq.sh finds or installs.
func zmqPython(t *testing.T) string {
	t.Helper()
	p, err := testutil.ScriptOutput("STRATUMD_ZMQ_PYTHON", "zmq.sh")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startLibzmqPub starts the publisher bound to endpoint and waits until it
// is bound; it is stopped at cleanup.
func startLibzmqPub(t *testing.T, endpoint string) *libzmqPub {
	t.Helper()
	p := &libzmqPub{lines: make(chan string, 16), stderr: &testutil.SyncBuffer{}}
	p.cmd = exec.Command(zmqPython(t), "testdata/zmqpub.py", endpoint)
	p.cmd.Stderr = p.stderr
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start publisher: %v", err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { p.stop(t) })
	line := p.answer(t)
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "bound" {
		t.Fatalf("publisher: %q", line)
	}
	p.endpoint, p.banner = f[1], line
	return p
}

// answer returns the publisher's next line.
func (p *libzmqPub) answer(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("publisher exited: %s", p.stderr)
		}
		return l
	case <-time.After(waitTimeout):
		t.Fatalf("publisher silent: %s", p.stderr)
	}
	return ""
}

// send writes one command and returns the answer.
func (p *libzmqPub) send(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, cmd); err != nil {
		t.Fatalf("publisher: %v (%s)", err, p.stderr)
	}
	return p.answer(t)
}

// block publishes a hashblock for h and returns its sequence number.
func (p *libzmqPub) block(t *testing.T, h chainhash.Hash) uint32 {
	t.Helper()
	a := p.send(t, "block "+hex.EncodeToString(h[:]))
	var seq uint32
	if _, err := fmt.Sscanf(a, "sent %d", &seq); err != nil {
		t.Fatalf("publisher: %q", a)
	}
	return seq
}

// blockUntil publishes hashblocks for h until s signals an update that ok
// accepts, and returns the last sequence number sent.
func (p *libzmqPub) blockUntil(t *testing.T, s *Source, h chainhash.Hash, ok func(chain.Update) bool) uint32 {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		seq := p.block(t, h)
		select {
		case u := <-s.Updates():
			if ok(u) {
				return seq
			}
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no update for hashblock %s (stats %+v)", h, s.Stats())
		}
	}
}

// skip loses n sequence numbers.
func (p *libzmqPub) skip(t *testing.T, n int) {
	t.Helper()
	if a := p.send(t, fmt.Sprintf("skip %d", n)); a != fmt.Sprintf("skipped %d", n) {
		t.Fatalf("publisher: %q", a)
	}
}

// bad publishes a malformed hashblock.
func (p *libzmqPub) bad(t *testing.T) {
	t.Helper()
	if a := p.send(t, "bad"); a != "sent bad" {
		t.Fatalf("publisher: %q", a)
	}
}

// stop closes the publisher's stdin and waits for it to exit (it closes
// its socket with linger 0, as Core does at shutdown). Idempotent.
func (p *libzmqPub) stop(t *testing.T) {
	t.Helper()
	if p.in == nil {
		return
	}
	p.in.Close()
	p.in = nil
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("publisher: %v: %s", err, p.stderr)
		}
	case <-time.After(waitTimeout):
		p.cmd.Process.Kill()
		<-done
		t.Errorf("publisher did not exit")
	}
}
