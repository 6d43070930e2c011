package main

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/stratum"
)

func TestParseListenSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		p    stratum.Profile
		solo bool
	}{
		{"0.0.0.0:3333", "0.0.0.0:3333", stratum.Profile{}, false},
		{"[::]:3333", "[::]:3333", stratum.Profile{}, false},
		{"0.0.0.0:3334,min-diff=0.0001,max-diff=0.01,start-diff=0.0005,pow2", "0.0.0.0:3334",
			stratum.Profile{MinDiff: 1e-4, MaxDiff: 0.01, StartDiff: 5e-4, Pow2: true}, false},
		{"pool.example:3335, start-diff=500000 , min-diff=1e5, vardiff-target=5s, pow2=false", "pool.example:3335",
			stratum.Profile{MinDiff: 1e5, StartDiff: 500000, VardiffTarget: 5 * time.Second}, false},
		{":3336,pow2=true", ":3336", stratum.Profile{Pow2: true}, false},
		{"0.0.0.0:3334,solo", "0.0.0.0:3334", stratum.Profile{}, true},
		{"0.0.0.0:3334,solo=true,min-diff=0.001", "0.0.0.0:3334", stratum.Profile{MinDiff: 0.001}, true},
		{"[::1]:3334, solo=false", "[::1]:3334", stratum.Profile{}, false},
	} {
		s, err := parseListenSpec(tc.in)
		if err != nil || s.Addr != tc.addr || s.Profile != tc.p || s.Value != tc.in || s.Solo != tc.solo {
			t.Errorf("%q: %+v, %v; want %s %+v solo %v", tc.in, s, err, tc.addr, tc.p, tc.solo)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "no address"},
		{",pow2", "no address"},
		{"3333", "not host:port"},
		{"0.0.0.0:3334,solo-mode", `unknown option "solo-mode" (known: min-diff, max-diff, start-diff, vardiff-target, pow2, solo)`},
		{"0.0.0.0:3334,pow2,pow2", "pow2 given twice"},
		{"0.0.0.0:3334,min-diff", "min-diff needs a value"},
		{"0.0.0.0:3334,min-diff=", "min-diff needs a value"},
		{"0.0.0.0:3334,min-diff=0", "min-diff=0: want a positive number"},
		{"0.0.0.0:3334,max-diff=-1", "max-diff=-1: want a positive number"},
		{"0.0.0.0:3334,start-diff=NaN", "start-diff=NaN: want a positive number"},
		{"0.0.0.0:3334,start-diff=+Inf", "want a positive number"},
		{"0.0.0.0:3334,start-diff=lots", "want a positive number"},
		{"0.0.0.0:3334,vardiff-target=500ms", "vardiff-target=500ms: want a duration of at least 1s"},
		{"0.0.0.0:3334,vardiff-target=10", "want a duration"},
		{"0.0.0.0:3334,pow2=maybe", "pow2=maybe: want true or false"},
		{"0.0.0.0:3334,solo=maybe", "solo=maybe: want true or false"},
		{"0.0.0.0:3334,solo,solo", "solo given twice"},
		{"0.0.0.0:3334,,pow2", "empty option"},
	} {
		_, err := parseListenSpec(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestListenEnvSplit(t *testing.T) {
	var l listenList
	got := l.SplitEnv("0.0.0.0:3333, 0.0.0.0:3334,min-diff=0.0001,pow2,[::1]:3335,start-diff=2")
	want := []string{"0.0.0.0:3333", "0.0.0.0:3334,min-diff=0.0001,pow2", "[::1]:3335,start-diff=2"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("SplitEnv = %q, want %q", got, want)
	}
}

// Listener options come from flags, STRATUMD_LISTEN and the TOML file
// alike; unset keys take the global settings, and profiles that cannot
// work under them stop the start with one line naming the listener.
func TestListenProfilesConfig(t *testing.T) {
	db := map[string]string{"DATABASE_URL": "postgres://x"}
	base := []string{"--network", "regtest"}

	cfg, _, err := parseConfig(append(base, "--listen", "127.0.0.1:3333",
		"--listen", "127.0.0.1:3334,min-diff=0.0001,max-diff=0.01,start-diff=0.0005,pow2"), env(db), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listen) != 2 || cfg.Listen[0].Profile != (stratum.Profile{}) ||
		cfg.Listen[1].Profile != (stratum.Profile{MinDiff: 1e-4, MaxDiff: 0.01, StartDiff: 5e-4, Pow2: true}) {
		t.Errorf("flags: %+v", cfg.Listen)
	}

	envVars := map[string]string{"DATABASE_URL": "postgres://x",
		"STRATUMD_LISTEN": "127.0.0.1:3333,127.0.0.1:3334,min-diff=0.0001,pow2"}
	cfg, _, err = parseConfig(base, env(envVars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Listen.addrs(); len(got) != 2 || got[1] != "127.0.0.1:3334" ||
		cfg.Listen[1].Profile != (stratum.Profile{MinDiff: 1e-4, Pow2: true}) {
		t.Errorf("environment: %+v", cfg.Listen)
	}

	dir := t.TempDir()
	file := filepath.Join(dir, "stratumd.toml")
	os.WriteFile(file, []byte(`
min-diff = 0.5
listen = ["127.0.0.1:3333", "127.0.0.1:3334,min-diff=0.0001,max-diff=0.01,pow2"]
tls-listen = []
`), 0o600)
	cfg, _, err = parseConfig(append(base, "--config", file), env(db), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listen) != 2 || cfg.Listen[1].Profile != (stratum.Profile{MinDiff: 1e-4, MaxDiff: 0.01, Pow2: true}) || cfg.MinDiff != 0.5 {
		t.Errorf("file: %+v", cfg.Listen)
	}

	certFile, keyFile, _ := selfSigned(t, dir, "profile test")
	for _, tc := range []struct {
		args []string
		want string
	}{
		// The global --min-diff defaults to 1: a low start needs a low min.
		{[]string{"--listen", "127.0.0.1:3334,start-diff=0.0005"}, `--listen "127.0.0.1:3334,start-diff=0.0005": stratum: invalid server config: difficulty profile: start-diff 0.0005 is outside [min-diff 1 (the server's)`},
		{[]string{"--listen", "127.0.0.1:3334,max-diff=0.01"}, "min-diff 1 (the server's) is above max-diff 0.01"},
		{[]string{"--listen", "127.0.0.1:3334,min-diff=5,max-diff=7,pow2"}, "no power of two"},
		{[]string{"--listen", "127.0.0.1:3334,solo-mode"}, `unknown option "solo-mode"`},
		{[]string{"--min-diff", "100", "--listen", "127.0.0.1:3334,max-diff=0.01,min-diff=0.001",
			"--tls-listen", "127.0.0.1:3335,max-diff=50", "--tls-cert", certFile, "--tls-key", keyFile},
			`--tls-listen "127.0.0.1:3335,max-diff=50"`},
	} {
		_, _, err := parseConfig(append(base, tc.args...), env(db), io.Discard)
		if err == nil || !errors.Is(err, cliconf.ErrConfig) && !strings.Contains(err.Error(), "invalid value") ||
			!strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want an error containing %q", tc.args, err, tc.want)
		}
	}
}

// parseListenSpec never panics; what it accepts has an address with a
// port separator and only positive finite difficulties, and parses again
// from its Value to the same listener.
func FuzzParseListenSpec(f *testing.F) {
	for _, s := range []string{
		"0.0.0.0:3333", "0.0.0.0:3334,min-diff=0.0001,max-diff=0.01,start-diff=0.0005,pow2",
		"[::]:3335,vardiff-target=5s,pow2=false", ":1,min-diff=1e-300", "a:1,,", "a:1,pow2,pow2", "x,min-diff=NaN",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := parseListenSpec(v)
		if err != nil {
			return
		}
		if !strings.Contains(s.Addr, ":") {
			t.Fatalf("%q: accepted address %q", v, s.Addr)
		}
		for _, d := range []float64{s.Profile.MinDiff, s.Profile.MaxDiff, s.Profile.StartDiff} {
			if d != 0 && !(d > 0 && d < math.Inf(1)) {
				t.Fatalf("%q: accepted difficulty %v", v, d)
			}
		}
		if s.Profile.VardiffTarget != 0 && s.Profile.VardiffTarget < time.Second {
			t.Fatalf("%q: accepted vardiff-target %v", v, s.Profile.VardiffTarget)
		}
		again, err := parseListenSpec(s.Value)
		if err != nil || again != s {
			t.Fatalf("%q: parsed again as %+v, %v", v, again, err)
		}
	})
}

func TestSoloConfig(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	base := []string{"--db", "postgres://x", "--network", "regtest"}
	cfg, _, err := parseConfig(append(base, "--listen", "127.0.0.1:3334,solo", "--solo-fee-bps", "150"), noEnv, io.Discard)
	if err != nil || cfg.SoloFeeBPS != 150 || len(cfg.Listen) != 1 || !cfg.Listen[0].Solo {
		t.Fatalf("config %+v: %v", cfg, err)
	}
	for _, args := range [][]string{
		{"--solo-fee-bps", "10000"},
		{"--solo-fee-bps", "-1"},
		{"--listen", "127.0.0.1:3334,bogus"},
		{"--tls-listen", "127.0.0.1:3443,solo=2"}, // refused before the missing certificate is
	} {
		// Flag values are refused by the flag package, the range by the
		// check: both name what is wrong.
		if _, _, err := parseConfig(append(base, args...), noEnv, io.Discard); err == nil ||
			!strings.Contains(err.Error(), "solo") && !strings.Contains(err.Error(), "bogus") {
			t.Errorf("%v: %v, want an error naming the setting", args, err)
		}
	}
}
