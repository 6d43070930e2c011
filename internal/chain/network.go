package chain

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// ErrUnknownNetwork is returned by NetworkParams for a name it does not know
// or a network this build's btcd lacks.
var ErrUnknownNetwork = errors.New("chain: unknown network")

// NetworkParams returns btcd's parameters for a network name: mainnet,
// testnet3, signet, regtest or simnet. testnet4 is not in btcd v0.24.2 and
// fails with ErrUnknownNetwork, as does any other name.
func NetworkParams(name string) (*chaincfg.Params, error) {
	switch name {
	case "mainnet":
		return &chaincfg.MainNetParams, nil
	case "testnet3":
		return &chaincfg.TestNet3Params, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "simnet":
		return &chaincfg.SimNetParams, nil
	case "testnet4":
		return nil, fmt.Errorf("%w: testnet4 (BIP 94) is not supported: btcd v0.24.2, the version this build uses, "+
			"has no testnet4 parameters (chaincfg.TestNet4Params); use testnet3 or signet", ErrUnknownNetwork)
	}
	return nil, fmt.Errorf("%w: %q (one of mainnet, testnet3, signet, regtest, simnet)", ErrUnknownNetwork, name)
}

// IsSignet reports whether params are a signet's: the default signet or a
// custom one (chaincfg.CustomSignetParams names them all "signet").
func IsSignet(params *chaincfg.Params) bool {
	return params != nil && params.Name == chaincfg.SigNetParams.Name
}

// CheckSignetChallenge returns nil when stratumd can mine a signet with
// this block challenge, and an error wrapping ErrUnmineableSignet
// otherwise. A signet block must carry a solution to the challenge in its
// witness commitment (BIP 325); stratumd signs nothing, so only the empty
// solution is possible, and it satisfies the challenge OP_TRUE alone.
// (Core's CheckSignetBlockSolution: "no signet solution -- allow this to
// support OP_TRUE as trivial block challenge".)
func CheckSignetChallenge(challenge []byte) error {
	if bytes.Equal(challenge, []byte{txscript.OP_TRUE}) {
		return nil
	}
	what := fmt.Sprintf("challenge %x", challenge)
	if bytes.Equal(challenge, chaincfg.DefaultSignetChallenge) {
		what = "the default signet's challenge (its signers' 1-of-2 multisig)"
	}
	return fmt.Errorf("%w: %s", ErrUnmineableSignet, what)
}
