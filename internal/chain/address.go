package chain

import (
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

// ErrBadAddress is wrapped by PayoutAddress's errors: the text is not an
// address of the network, or not one a payment can pay to.
var ErrBadAddress = errors.New("chain: bad address")

// MaxAddressLen is the longest address text PayoutAddress decodes: the
// length bech32 allows (base58 addresses are shorter). The users table's
// CHECK allows 100.
const MaxAddressLen = 90

// PayoutAddress decodes s as an address of the network params that a
// payment can pay to: P2PKH, P2SH, P2WPKH, P2WSH or P2TR (a bare public key
// in hex, which btcutil also decodes, and unknown witness versions are
// refused). It returns the address in its canonical encoding, which differs
// from s at most in case (an upper-case bech32 address is returned in lower
// case). Errors wrap ErrBadAddress and name s and the network.
func PayoutAddress(s string, params *chaincfg.Params) (btcutil.Address, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %q is not a %s payout address: %s", ErrBadAddress, s, params.Name, fmt.Sprintf(format, a...))
	}
	switch {
	case s == "":
		return nil, fmt.Errorf("%w: empty address", ErrBadAddress)
	case len(s) > MaxAddressLen:
		// Checked first: base58 decoding costs time quadratic in the length.
		return nil, fmt.Errorf("%w: address of %d characters, longer than %d", ErrBadAddress, len(s), MaxAddressLen)
	}
	addr, err := btcutil.DecodeAddress(s, params)
	if err == nil && !addr.IsForNet(params) {
		err = errors.New("it belongs to another network")
	}
	if err != nil {
		if nets := networksOf(s, params); nets != "" {
			return nil, bad("it is a %s address", nets)
		}
		return nil, bad("%v", err)
	}
	switch addr.(type) {
	case *btcutil.AddressPubKeyHash, *btcutil.AddressScriptHash,
		*btcutil.AddressWitnessPubKeyHash, *btcutil.AddressWitnessScriptHash, *btcutil.AddressTaproot:
	case *btcutil.AddressPubKey:
		return nil, bad("a bare public key; want a P2PKH, P2SH, P2WPKH, P2WSH or P2TR address")
	default:
		return nil, bad("a %T is not a P2PKH, P2SH, P2WPKH, P2WSH or P2TR address", addr)
	}
	// btcutil decodes some encodings it cannot produce (a 20-byte witness
	// version 1 program becomes a version 0 P2WPKH); only an address that
	// re-encodes to what was given is the one meant.
	if !strings.EqualFold(addr.EncodeAddress(), s) {
		return nil, bad("not in its standard encoding")
	}
	return addr, nil
}

// knownNetworks are the networks NetworkParams knows, in its order.
var knownNetworks = [...]*chaincfg.Params{
	&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.SigNetParams,
	&chaincfg.RegressionNetParams, &chaincfg.SimNetParams,
}

// networksOf names the networks other than except that s is an address of
// ("testnet3/signet/regtest": their base58 addresses look alike), or "".
func networksOf(s string, except *chaincfg.Params) string {
	var names []string
	for _, p := range knownNetworks {
		if p == except {
			continue
		}
		if a, err := btcutil.DecodeAddress(s, p); err == nil && a.IsForNet(p) {
			names = append(names, p.Name)
		}
	}
	return strings.Join(names, "/")
}
