package p2p

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain/p2p/bip152"
)

// msgHeaderSize is the size of a bitcoin message header: magic, command,
// length, checksum.
const msgHeaderSize = 24

// bip152Conn is the connection btcd's peer reads from. btcd's wire
// package does not know the BIP 152 messages and its peer discards them,
// so this reader takes them out of the stream, decodes them and hands them
// to handle (or, when one is malformed, its *wire.MessageError), in the reading goroutine and so in order with the peer's
// other messages; every other message is passed through untouched, its
// payload without copying. A BIP 152 message that is oversized, fails its
// checksum or does not decode ends the connection (the read fails) after
// handle's caller has scored it. Writes go to Conn unchanged (btcd's peer
// writes our bip152 messages itself, as wire.Message values).
type bip152Conn struct {
	net.Conn
	net    wire.BitcoinNet
	handle func(wire.Message, error) error

	hdr     [msgHeaderSize]byte
	pending []byte // header bytes of a passed-through message not yet read
	remain  uint32 // its payload bytes not yet read
}

// Read implements io.Reader for btcd's peer.
func (c *bip152Conn) Read(p []byte) (int, error) {
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		if c.remain > 0 {
			if uint32(len(p)) > c.remain {
				p = p[:c.remain]
			}
			n, err := c.Conn.Read(p)
			c.remain -= uint32(n)
			return n, err
		}
		if _, err := io.ReadFull(c.Conn, c.hdr[:]); err != nil {
			return 0, err
		}
		length := binary.LittleEndian.Uint32(c.hdr[16:20])
		msg := newBIP152Message(command(c.hdr[4:16]))
		if msg == nil || wire.BitcoinNet(binary.LittleEndian.Uint32(c.hdr[:4])) != c.net {
			// btcd's peer reads and judges it.
			c.pending = c.hdr[:]
			c.remain = length
			continue
		}
		if err := c.readBIP152(msg, length); err != nil {
			return 0, err
		}
	}
}

// readBIP152 reads the payload of a BIP 152 message of length bytes into
// msg and hands it on.
func (c *bip152Conn) readBIP152(msg wire.Message, length uint32) error {
	if length > msg.MaxPayloadLength(wire.ProtocolVersion) {
		return c.handle(nil, &wire.MessageError{Func: "bip152Conn.Read",
			Description: fmt.Sprintf("%s payload of %d bytes", msg.Command(), length)})
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(c.Conn, payload); err != nil {
		return err
	}
	if sum := chainhash.DoubleHashB(payload); !bytes.Equal(sum[:4], c.hdr[20:24]) {
		return c.handle(nil, &wire.MessageError{Func: "bip152Conn.Read",
			Description: msg.Command() + " checksum mismatch"})
	}
	if err := msg.BtcDecode(bytes.NewReader(payload), wire.ProtocolVersion, wire.WitnessEncoding); err != nil {
		return c.handle(nil, &wire.MessageError{Func: "bip152Conn.Read", Description: err.Error()})
	}
	return c.handle(msg, nil)
}

// command returns the command of a message header (NUL padded).
func command(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// newBIP152Message returns an empty message for a BIP 152 command, nil
// for any other.
func newBIP152Message(cmd string) wire.Message {
	switch cmd {
	case bip152.CmdSendCmpct:
		return new(bip152.MsgSendCmpct)
	case bip152.CmdCmpctBlock:
		return new(bip152.MsgCmpctBlock)
	case bip152.CmdGetBlockTxn:
		return new(bip152.MsgGetBlockTxn)
	case bip152.CmdBlockTxn:
		return new(bip152.MsgBlockTxn)
	}
	return nil
}
