package chain

import (
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg"
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
		return nil, fmt.Errorf("%w: testnet4 is not supported by the btcd version this build uses", ErrUnknownNetwork)
	}
	return nil, fmt.Errorf("%w: %q (one of mainnet, testnet3, signet, regtest, simnet)", ErrUnknownNetwork, name)
}
