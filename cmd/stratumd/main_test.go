package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/migrations"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("min-diff = -1\n"), 0o600)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--network", "nonet"}, want: "--network"},
		{args: []string{"--network", "testnet4"}, want: "--network: chain: unknown network: testnet4 (BIP 94) is not supported: btcd v0.24.2"},
		{args: []string{"--network", "signet"}, env: map[string]string{"DATABASE_URL": "postgres://x"},
			want: "--network: signet with --node embedded: chain: signet challenge needs the signers' signature"},
		{args: []string{"--network", "regtest"}, want: "--db"},
		{args: []string{"--network", "mainnet"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--payout-address: required"},
		{args: []string{"--network", "regtest", "--payout-address", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--payout-address"},
		{args: []string{"--network", "regtest", "--auth", "none"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--auth"},
		{args: []string{"--network", "regtest", "--config", bad}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--min-diff"},
		{args: []string{"--network", "regtest"}, env: map[string]string{"DATABASE_URL": "postgres://x", "STRATUMD_MAX_DIFF": "0.5", "STRATUMD_MIN_DIFF": "2"}, want: "--max-diff"},
		{args: []string{"--network", "regtest", "--instance-id", "256"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--instance-id"},
		{args: []string{"--network", "mainnet", "--regtest-premine", "5", "--payout-address", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--regtest-premine"},
		{args: []string{"--network", "regtest", "--admin-password", "file:/nonexistent/pw"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--admin-password"},
		{args: []string{"--network", "regtest", "--password-nice", "20"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--password-nice"},
		{args: []string{"--network", "regtest", "--node", "rpc"}, env: map[string]string{"DATABASE_URL": "postgres://x"}, want: "--rpc-url"},
	} {
		var stderr bytes.Buffer
		_, _, err := parseConfig(tc.args, env(tc.env), &stderr)
		if !errors.Is(err, cliconf.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v; want a configuration error naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "stratumd.toml")
	pwFile := filepath.Join(dir, "admin.pw")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	os.WriteFile(file, []byte(fmt.Sprintf(`
network = "regtest"
listen = ["127.0.0.1:3333", "127.0.0.1:3334"]
min-diff = 0.001
vardiff-target = "15s"
admin-password = "file:%s"
coinbase-tag = "/from-file/"
`, pwFile)), 0o600)
	var stderr bytes.Buffer
	cfg, pos, err := parseConfig([]string{"--config", file, "--coinbase-tag", "/flag/"},
		env(map[string]string{"DATABASE_URL": "postgres://db", "STRATUMD_MIN_DIFF": "0.5", "STRATUMD_INSTANCE_ID": "7"}), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 0 || cfg.Network != "regtest" || cfg.MinDiff != 0.5 || cfg.InstanceID != 7 ||
		cfg.CoinbaseTag != "/flag/" || cfg.VardiffTarget != 15*time.Second || cfg.AdminPassword != "s3cret" ||
		len(cfg.Listen) != 2 || cfg.StartDiff != 0.5 || cfg.PayoutAddress != regtestDevAddress || cfg.DB != "postgres://db" {
		t.Fatalf("config %+v", cfg)
	}
}

func TestSubcommands(t *testing.T) {
	url := pgtest.NewEmptyDatabase(t)
	ctx := context.Background()
	runCmd := func(stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"--db", url}, args...), strings.NewReader(stdin), &out, &errb)
		return out.String() + errb.String(), err
	}
	if _, err := runCmd("pw\n", "adduser", "alice"); err == nil || !strings.Contains(err.Error(), "migrations pending") {
		t.Fatalf("adduser before migrate: %v", err)
	}
	out, err := runCmd("", "migrate", "up")
	if err != nil || !strings.Contains(out, "applied 00001") {
		t.Fatalf("migrate up: %q, %v", out, err)
	}
	out, err = runCmd("", "migrate", "status")
	if err != nil || !strings.Contains(out, "applied") || strings.Contains(out, "pending") {
		t.Fatalf("migrate status: %q, %v", out, err)
	}
	if out, err = runCmd("pw\n", "adduser", "alice"); err != nil || !strings.Contains(out, "created user alice") {
		t.Fatalf("adduser: %q, %v", out, err)
	}
	if _, err = runCmd("pw\n", "adduser", "alice"); err == nil {
		t.Fatal("adduser twice succeeded")
	}
	if _, err = runCmd("", "adduser", "bob"); err == nil {
		t.Fatal("adduser with no password succeeded")
	}
	a := sha256.Sum256([]byte("legacy"))
	b := sha256.Sum256(a[:])
	file := filepath.Join(t.TempDir(), "users.json")
	os.WriteFile(file, []byte(`{"username":"carol","password":"`+hex.EncodeToString(b[:])+`"}`+"\n"), 0o600)
	if out, err = runCmd("", "import-users", file); err != nil || !strings.Contains(out, "imported 1 users") {
		t.Fatalf("import-users: %q, %v", out, err)
	}
	if out, err = runCmd("", "version"); err != nil || !strings.HasPrefix(out, "stratumd ") {
		t.Fatalf("version: %q, %v", out, err)
	}
	if _, err = runCmd("", "frobnicate"); err == nil {
		t.Fatal("unknown command accepted")
	}
	entries, _ := fs.Glob(migrations.FS, "*.sql")
	latest := strings.SplitN(entries[len(entries)-1], "_", 2)[0]
	if out, err = runCmd("", "migrate", "down"); err != nil || !strings.Contains(out, "rolled back "+latest) {
		t.Fatalf("migrate down: %q, %v", out, err)
	}
}

// TestExampleConfig: deploy/stratumd.toml parses, and names every setting.
func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "stratumd.toml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cfg, _, err := parseConfig([]string{"--config", path}, env(map[string]string{"DATABASE_URL": "postgres://x"}), &stderr)
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if cfg.Network != "mainnet" || cfg.MinDiff != 1024 || cfg.MaxConnsPerIP != 256 {
		t.Fatalf("example config read as %+v", cfg)
	}
	if len(cfg.Listen) != 3 || cfg.Listen[1].Profile.MinDiff != 0.0001 || !cfg.Listen[1].Profile.Pow2 ||
		cfg.Listen[2].Profile.StartDiff != 500000 {
		t.Fatalf("example listeners read as %+v", cfg.Listen)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&stderr)
	parseConfigFlags(fs, &config{})
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "config" && !strings.Contains(string(raw), "\n"+f.Name+" = ") {
			t.Errorf("deploy/stratumd.toml lacks the setting %q", f.Name)
		}
	})
}
