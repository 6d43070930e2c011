package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/bech32"
	"github.com/btcsuite/btcd/chaincfg"
)

func TestPayoutAddress(t *testing.T) {
	main, reg := &chaincfg.MainNetParams, &chaincfg.RegressionNetParams
	h20, h32 := make([]byte, 20), make([]byte, 32)
	for i := range h32 {
		h32[i] = byte(i + 1)
	}
	copy(h20, h32)
	mustEnc := func(a btcutil.Address, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a.EncodeAddress()
	}
	// A witness version 1 program of 20 bytes, which btcutil decodes as a
	// version 0 P2WPKH.
	conv, _ := bech32.ConvertBits(h20, 8, 5, true)
	v1short, err := bech32.EncodeM("bcrt", append([]byte{1}, conv...))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s      string
		params *chaincfg.Params
		want   string // canonical form; empty: refused
	}{
		// BIP 173 / BIP 350 vectors and well-known mainnet addresses.
		{"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", main, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"},
		{"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", main, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"},
		{"BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", main, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"},
		{"bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", main, "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3"},
		{"bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", main, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"},
		// Every type on regtest.
		{"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", reg, "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"},
		{mustEnc(btcutil.NewAddressPubKeyHash(h20, reg)), reg, mustEnc(btcutil.NewAddressPubKeyHash(h20, reg))},
		{mustEnc(btcutil.NewAddressScriptHashFromHash(h20, reg)), reg, mustEnc(btcutil.NewAddressScriptHashFromHash(h20, reg))},
		{mustEnc(btcutil.NewAddressWitnessScriptHash(h32, reg)), reg, mustEnc(btcutil.NewAddressWitnessScriptHash(h32, reg))},
		{mustEnc(btcutil.NewAddressTaproot(h32, reg)), reg, mustEnc(btcutil.NewAddressTaproot(h32, reg))},
		// Wrong network.
		{"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", reg, ""},
		{"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", reg, ""},
		{"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", main, ""},
		{"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", reg, ""},
		// Garbage, bad checksums, mixed case, spaces, too long.
		{"", reg, ""},
		{"not an address", reg, ""},
		{"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081", reg, ""},
		{"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", main, ""},
		{"bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", main, ""},
		{" bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", main, ""},
		{"1" + strings.Repeat("z", MaxAddressLen), main, ""},
		{strings.Repeat("1", 10_000), main, ""},
		// Decodable but not a payout address: a bare public key, witness
		// version 2, a 40-byte version 1 program, a 20-byte version 1
		// program, version 0 with bech32m.
		{"0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798", main, ""},
		{"bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", main, ""},
		{"bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", main, ""},
		{v1short, reg, ""},
		{"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", main, ""},
	} {
		a, err := PayoutAddress(tc.s, tc.params)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s %.50q: accepted as %v", tc.params.Name, tc.s, a)
		case tc.want == "" && !errors.Is(err, ErrBadAddress):
			t.Errorf("%s %.50q: %v, want ErrBadAddress", tc.params.Name, tc.s, err)
		case tc.want != "" && err != nil:
			t.Errorf("%s %.50q: %v", tc.params.Name, tc.s, err)
		case tc.want != "" && a.EncodeAddress() != tc.want:
			t.Errorf("%s %.50q: canonical %q, want %q", tc.params.Name, tc.s, a.EncodeAddress(), tc.want)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Errorf("%s: error of %d bytes", tc.params.Name, len(err.Error()))
		}
	}
	// The error names the network wanted and, when it is one, the network
	// the address is for.
	for _, tc := range []struct {
		s          string
		params     *chaincfg.Params
		want, from string
	}{
		{"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", reg, "not a regtest payout address", "it is a mainnet address"},
		{"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", main, "not a mainnet payout address", "it is a regtest address"},
		{"mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r", main, "not a mainnet payout address", "it is a testnet3/signet/regtest address"},
		{"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", reg, "not a regtest payout address", "it is a testnet3/signet address"},
		{"not an address", main, "not a mainnet payout address", "unknown format"},
	} {
		_, err := PayoutAddress(tc.s, tc.params)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.from) {
			t.Errorf("%s on %s: error %v; want %q and %q", tc.s, tc.params.Name, err, tc.want, tc.from)
		}
	}
}
