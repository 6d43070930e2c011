package chain

import (
	"errors"
	"testing"
)

func TestNetworkParams(t *testing.T) {
	for _, name := range []string{"mainnet", "testnet3", "signet", "regtest", "simnet"} {
		p, err := NetworkParams(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// btcd names regtest "regtest" and mainnet "mainnet", testnet3 "testnet3".
		if p.Name != name {
			t.Errorf("%s: params named %q", name, p.Name)
		}
	}
	for _, bad := range []string{"testnet4", "", "Mainnet", "litecoin"} {
		if _, err := NetworkParams(bad); !errors.Is(err, ErrUnknownNetwork) {
			t.Errorf("%q: %v, want ErrUnknownNetwork", bad, err)
		}
	}
}
