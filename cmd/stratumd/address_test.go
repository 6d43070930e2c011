package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

// Addresses for the payout address tests.
const (
	regP2WPKH = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	regP2PKH  = "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r"
	mainP2PKH = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
)

// addressDB returns a migrated database, a command runner on it for
// --network regtest, and a function reading a user's payout address.
func addressDB(t *testing.T) (runCmd func(stdin string, args ...string) (string, error), addrOf func(name string) string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	runCmd = func(stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--db", url, "--network", "regtest"}, args...), strings.NewReader(stdin), &out, &errb)
		return out.String() + errb.String(), err
	}
	st, err := store.Open(ctx, store.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	addrOf = func(name string) string {
		t.Helper()
		u, err := st.UserByName(ctx, name)
		if err != nil {
			t.Fatalf("user %s: %v", name, err)
		}
		return u.PayoutAddress
	}
	return runCmd, addrOf
}

func TestAddUserAddress(t *testing.T) {
	runCmd, addrOf := addressDB(t)
	// The flag after the name, before it, and with '='.
	for name, args := range map[string][]string{
		"after":  {"adduser", "after", "--address", regP2WPKH},
		"before": {"adduser", "--address", strings.ToUpper(regP2WPKH), "before"},
		"equals": {"--address=" + regP2PKH, "adduser", "equals"},
	} {
		out, err := runCmd("pw\n", args...)
		if err != nil || !strings.Contains(out, "created user "+name) {
			t.Fatalf("%q: %q, %v", args, out, err)
		}
	}
	for name, want := range map[string]string{"after": regP2WPKH, "before": regP2WPKH, "equals": regP2PKH} {
		if got := addrOf(name); got != want {
			t.Errorf("%s: payout address %q, want %q", name, got, want)
		}
	}
	if out, err := runCmd("pw\n", "adduser", "plain"); err != nil || !strings.Contains(out, "no payout address") || addrOf("plain") != "" {
		t.Fatalf("adduser without --address: %q, %v", out, err)
	}

	// Bad addresses create nothing, and say why.
	for _, tc := range []struct{ addr, want string }{
		{mainP2PKH, "it is a mainnet address"},
		{"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "not a regtest payout address"},
		{"garbage", "not a regtest payout address"},
		{"bcrt1q" + strings.Repeat("q", 120), "longer than"},
		{"", "empty address"},
	} {
		out, err := runCmd("pw\n", "adduser", "bad", "--address", tc.addr)
		if !errors.Is(err, chain.ErrBadAddress) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--address") {
			t.Errorf("adduser --address %.20q: %q, %v; want an error saying %q", tc.addr, out, err, tc.want)
		}
	}
	if _, err := runCmd("pw\n", "adduser", "bad"); err != nil {
		t.Fatalf("the name of the refused adduser was taken: %v", err)
	}
}

func TestSetAddress(t *testing.T) {
	runCmd, addrOf := addressDB(t)
	tr, err := btcutil.NewAddressTaproot(bytes.Repeat([]byte{7}, 32), &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	regP2TR := tr.EncodeAddress()
	if _, err := runCmd("pw\n", "adduser", "alice"); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd("", "set-address", "alice", regP2TR)
	if err != nil || !strings.Contains(out, "payout address of alice: "+regP2TR) || addrOf("alice") != regP2TR {
		t.Fatalf("set-address: %q, %v", out, err)
	}
	// Upper-case bech32 is stored in its canonical lower case.
	if _, err := runCmd("", "set-address", "alice", strings.ToUpper(regP2WPKH)); err != nil || addrOf("alice") != regP2WPKH {
		t.Fatalf("set-address upper case: %v, stored %q", err, addrOf("alice"))
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set-address", "alice", mainP2PKH}, "it is a mainnet address"},
		{[]string{"set-address", "alice", "garbage"}, "not a regtest payout address"},
		{[]string{"set-address", "alice", "bcrt1q" + strings.Repeat("q", 120)}, "longer than"},
		{[]string{"set-address", "alice", ""}, "set-address --clear alice"},
		{[]string{"set-address", "alice"}, "usage"},
		{[]string{"set-address", "alice", regP2PKH, "extra"}, "usage"},
		{[]string{"set-address", "--clear", "alice", regP2PKH}, "usage"},
		{[]string{"set-address", "nobody", regP2PKH}, "not found"},
		{[]string{"set-address", "--clear", "nobody"}, "not found"},
	} {
		if out, err := runCmd("", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60q: %q, %v; want an error saying %q", tc.args, out, err, tc.want)
		}
	}
	if got := addrOf("alice"); got != regP2WPKH {
		t.Fatalf("refused set-address calls changed the address to %q", got)
	}

	// --clear before or after the name.
	if out, err := runCmd("", "set-address", "alice", "--clear"); err != nil || !strings.Contains(out, "removed") || addrOf("alice") != "" {
		t.Fatalf("set-address --clear: %q, %v", out, err)
	}
	if _, err := runCmd("", "set-address", "--clear", "alice"); err != nil {
		t.Fatalf("clearing twice: %v", err)
	}
}

func TestImportUsersAddress(t *testing.T) {
	runCmd, addrOf := addressDB(t)
	dir := t.TempDir()
	hash := strings.Repeat("ab", 32)
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"username":"dan","password":"`+hash+`","address":"`+regP2WPKH+`"}
{"username":"eve","password":"`+hash+`"}
`), 0o600)
	if out, err := runCmd("", "import-users", good); err != nil || !strings.Contains(out, "imported 2 users") {
		t.Fatalf("import-users: %q, %v", out, err)
	}
	if addrOf("dan") != regP2WPKH || addrOf("eve") != "" {
		t.Fatalf("imported addresses %q, %q", addrOf("dan"), addrOf("eve"))
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"username":"fay","password":"`+hash+`"}
{"username":"gus","password":"`+hash+`","address":"`+mainP2PKH+`"}
`), 0o600)
	out, err := runCmd("", "import-users", bad)
	if !errors.Is(err, chain.ErrBadAddress) || !strings.Contains(err.Error(), `line 2: "gus"`) ||
		!strings.Contains(err.Error(), "nothing imported") || strings.Contains(out, "imported") {
		t.Fatalf("import-users with a mainnet address: %q, %v", out, err)
	}
	if _, err := runCmd("pw\n", "adduser", "fay"); err != nil {
		t.Fatalf("a line of the refused file was imported: %v", err)
	}
}

// TestAddressFlagsCommandLineOnly: --address and --clear come from the
// command line alone and only with their command.
func TestAddressFlagsCommandLineOnly(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "stratumd.toml")
	os.WriteFile(file, []byte(`address = "`+regP2WPKH+"\"\n"), 0o600)
	db := map[string]string{"DATABASE_URL": "postgres://x"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--network", "regtest", "--address", regP2WPKH}, "--address: only for adduser"},
		{[]string{"--network", "regtest", "set-address", "bob", regP2WPKH, "--address", regP2WPKH}, "--address: only for adduser"},
		{[]string{"--network", "regtest", "import-users", "f", "--address="}, "--address: only for adduser"},
		{[]string{"--network", "regtest", "adduser", "bob", "--clear"}, "--clear: only for set-address"},
		{[]string{"--network", "regtest", "--config", file, "adduser", "bob"}, `"address" is a command-line flag only`},
	} {
		var stderr bytes.Buffer
		_, _, err := parseConfig(tc.args, env(db), &stderr)
		if !errors.Is(err, cliconf.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want a configuration error saying %q", tc.args, err, tc.want)
		}
	}
	var stderr bytes.Buffer
	cfg, _, err := parseConfig([]string{"--network", "regtest", "adduser", "bob"},
		env(map[string]string{"DATABASE_URL": "postgres://x", "STRATUMD_ADDRESS": regP2WPKH, "STRATUMD_CLEAR": "true"}), &stderr)
	if err != nil || cfg.Address != "" || cfg.addressSet || cfg.ClearAddress {
		t.Fatalf("STRATUMD_ADDRESS and STRATUMD_CLEAR were read: %+v, %v", cfg, err)
	}
}
