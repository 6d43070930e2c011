package p2p

import (
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

func TestConfigValidation(t *testing.T) {
	for name, c := range map[string]Config{
		"no datadir":         {},
		"bad connect":        {Connect: []string{"nohostport"}},
		"bad listen":         {DataDir: "x", Listen: []string{"1.2.3.4"}},
		"negative":           {DataDir: "x", MaxPeers: -1},
		"outbound over max":  {DataDir: "x", MaxPeers: 4, TargetOutbound: 5},
		"negative ban dur":   {DataDir: "x", BanDuration: -time.Second},
		"negative msg burst": {DataDir: "x", MessageBurst: -1},
	} {
		if _, err := c.withDefaults(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err %v, want ErrInvalidConfig", name, err)
		}
	}
	c, err := Config{Connect: []string{"127.0.0.1:18444"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxPeers != DefaultMaxPeers || c.BanThreshold != DefaultBanThreshold ||
		c.WriteTimeout != DefaultWriteTimeout || c.Logger == nil || c.Now == nil || c.Dial == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestAnnouncedBlocksBoundAndTTL(t *testing.T) {
	a := newAnnouncedBlocks(time.Minute)
	now := time.Unix(1_700_000_000, 0)
	var hashes []chainhash.Hash
	for i := range maxAnnounced + 3 {
		b := btcutil.NewBlock(&wire.MsgBlock{Header: wire.BlockHeader{Nonce: uint32(i)}})
		a.add(b, now)
		hashes = append(hashes, *b.Hash())
	}
	for i, h := range hashes {
		_, ok := a.get(&h, now)
		if want := i >= 3; ok != want {
			t.Errorf("block %d kept = %v, want %v", i, ok, want)
		}
	}
	last := hashes[len(hashes)-1]
	if _, ok := a.get(&last, now.Add(2*time.Minute)); ok {
		t.Error("expired block served")
	}
	if !a.has(&last) {
		t.Error("expired block forgotten before eviction")
	}
}

func TestAnnounces(t *testing.T) {
	blk := &wire.MsgBlock{Header: wire.BlockHeader{Nonce: 42}}
	h := blk.BlockHash()
	other := chainhash.Hash{9}
	inv := wire.NewMsgInv()
	_ = inv.AddInvVect(wire.NewInvVect(wire.InvTypeBlock, &h))
	hdrs := wire.NewMsgHeaders()
	_ = hdrs.AddBlockHeader(&blk.Header)
	for _, m := range []wire.Message{inv, hdrs, blk} {
		if !announces(m, &h) {
			t.Errorf("%s does not announce its block", m.Command())
		}
		if announces(m, &other) {
			t.Errorf("%s announces another block", m.Command())
		}
	}
	if announces(wire.NewMsgInv(), &h) || announces(wire.NewMsgPing(1), &h) {
		t.Error("empty inv or ping announces")
	}
}
