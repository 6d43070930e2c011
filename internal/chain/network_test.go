package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
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

// TestTestnet4Refused: btcd v0.24.2 has no testnet4 parameters; the error
// says so instead of calling the name unknown.
func TestTestnet4Refused(t *testing.T) {
	_, err := NetworkParams("testnet4")
	if !errors.Is(err, ErrUnknownNetwork) || !strings.Contains(err.Error(), "btcd v0.24.2") ||
		!strings.Contains(err.Error(), "TestNet4Params") {
		t.Fatalf("testnet4: %v", err)
	}
}

// TestCheckSignetChallenge: only OP_TRUE is mineable without the signers'
// keys; the default signet's 1-of-2 multisig and any other script are
// refused with ErrUnmineableSignet, naming the default signet.
func TestCheckSignetChallenge(t *testing.T) {
	if err := CheckSignetChallenge([]byte{0x51}); err != nil {
		t.Fatalf("OP_TRUE: %v", err)
	}
	err := CheckSignetChallenge(chaincfg.DefaultSignetChallenge)
	if !errors.Is(err, ErrUnmineableSignet) || !strings.Contains(err.Error(), "default signet") {
		t.Fatalf("default signet: %v", err)
	}
	for _, c := range [][]byte{nil, {}, {0x00}, {0x52}, {0x51, 0x51}, {0x01, 0x51}} {
		if err := CheckSignetChallenge(c); !errors.Is(err, ErrUnmineableSignet) {
			t.Errorf("challenge %x: %v", c, err)
		}
	}
	custom := chaincfg.CustomSignetParams([]byte{0x51}, nil)
	if !IsSignet(&chaincfg.SigNetParams) || !IsSignet(&custom) ||
		IsSignet(&chaincfg.RegressionNetParams) || IsSignet(nil) {
		t.Fatal("IsSignet")
	}
}
