package p2p

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/p2p/bip152"
)

// readerConn is a net.Conn whose reads come from a reader.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// FuzzBIP152Conn: whatever the stream, reading it through bip152Conn as
// btcd's peer does ends (no hang, no panic), and every message handed on
// re-encodes.
func FuzzBIP152Conn(f *testing.F) {
	var seed bytes.Buffer
	for _, m := range []wire.Message{wire.NewMsgPing(1), &bip152.MsgSendCmpct{Version: 2},
		&bip152.MsgGetBlockTxn{Indexes: []uint16{0, 3}}, wire.NewMsgSendHeaders()} {
		if _, err := wire.WriteMessageWithEncodingN(&seed, m, wire.ProtocolVersion, wire.TestNet,
			wire.WitnessEncoding); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(seed.Bytes())
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := &bip152Conn{Conn: readerConn{r: bytes.NewReader(stream)}, net: wire.TestNet,
			handle: func(m wire.Message, err error) error {
				if err != nil {
					return err
				}
				var buf bytes.Buffer
				if err := m.BtcEncode(&buf, wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
					t.Fatalf("decoded %s does not encode: %v", m.Command(), err)
				}
				return nil
			}}
		for range len(stream) + 1 {
			_, _, _, err := wire.ReadMessageWithEncodingN(c, wire.ProtocolVersion, wire.TestNet,
				wire.WitnessEncoding)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
		}
	})
}

// TestBIP152ConnPassesThrough: the reader hands btcd every message but
// the BIP 152 ones untouched and in order, takes those out decoded, and
// fails on a corrupt one.
func TestBIP152ConnPassesThrough(t *testing.T) {
	var stream bytes.Buffer
	write := func(m wire.Message) {
		if _, err := wire.WriteMessageWithEncodingN(&stream, m, wire.ProtocolVersion, wire.TestNet,
			wire.WitnessEncoding); err != nil {
			t.Fatal(err)
		}
	}
	cb := wire.NewMsgTx(1)
	cb.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: wire.MaxPrevOutIndex}, []byte{1, 2}, nil))
	cb.AddTxOut(wire.NewTxOut(1, []byte{0x51}))
	blk := &wire.MsgBlock{Transactions: []*wire.MsgTx{cb}}
	write(wire.NewMsgPing(1))
	write(&bip152.MsgSendCmpct{HighBandwidth: true, Version: 2})
	write(blk)
	write(&bip152.MsgGetBlockTxn{Indexes: []uint16{1, 2}})
	write(wire.NewMsgPong(2))
	// A BIP 152 message of another network goes to btcd (which refuses it).
	var other bytes.Buffer
	if _, err := wire.WriteMessageWithEncodingN(&other, &bip152.MsgSendCmpct{Version: 2}, wire.ProtocolVersion,
		wire.MainNet, wire.WitnessEncoding); err != nil {
		t.Fatal(err)
	}
	stream.Write(other.Bytes())
	// A corrupt sendcmpct: its checksum is wrong.
	var bad bytes.Buffer
	if _, err := wire.WriteMessageWithEncodingN(&bad, &bip152.MsgSendCmpct{Version: 2}, wire.ProtocolVersion,
		wire.TestNet, wire.WitnessEncoding); err != nil {
		t.Fatal(err)
	}
	corrupt := bad.Bytes()
	corrupt[len(corrupt)-1] ^= 1
	stream.Write(corrupt)

	a, b := net.Pipe()
	go func() {
		_, _ = b.Write(stream.Bytes())
		b.Close()
	}()
	var taken []string
	var failed error
	c := &bip152Conn{Conn: a, net: wire.TestNet, handle: func(m wire.Message, err error) error {
		if err != nil {
			failed = err
			return err
		}
		taken = append(taken, m.Command())
		return nil
	}}
	var passed []string
	for {
		_, m, _, err := wire.ReadMessageWithEncodingN(c, wire.ProtocolVersion, wire.TestNet, wire.WitnessEncoding)
		var merr *wire.MessageError
		if errors.As(err, &merr) && strings.Contains(merr.Description, "other network") {
			passed = append(passed, "other network")
			continue
		}
		if err != nil {
			t.Logf("read: %v", err)
			break
		}
		passed = append(passed, m.Command())
	}
	a.Close()
	if want := []string{"ping", "block", "pong", "other network"}; !slices.Equal(passed, want) {
		t.Fatalf("btcd read %v, want %v", passed, want)
	}
	if want := []string{"sendcmpct", "getblocktxn"}; !slices.Equal(taken, want) {
		t.Fatalf("taken out %v, want %v", taken, want)
	}
	if failed == nil || !strings.Contains(failed.Error(), "checksum") {
		t.Fatalf("corrupt sendcmpct: %v", failed)
	}
}
