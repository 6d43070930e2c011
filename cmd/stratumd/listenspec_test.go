package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/stratum"
)

func TestParseListenSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		addr string
		opts stratum.ListenOptions
	}{
		{"0.0.0.0:3333", "0.0.0.0:3333", stratum.ListenOptions{}},
		{"0.0.0.0:3334,solo", "0.0.0.0:3334", stratum.ListenOptions{Solo: true}},
		{"0.0.0.0:3334,solo=true", "0.0.0.0:3334", stratum.ListenOptions{Solo: true}},
		{"[::1]:3334, solo=false", "[::1]:3334", stratum.ListenOptions{}},
	} {
		addr, opts, err := parseListenSpec(tc.spec)
		if err != nil || addr != tc.addr || opts != tc.opts {
			t.Errorf("%q: %q %+v %v, want %q %+v", tc.spec, addr, opts, err, tc.addr, tc.opts)
		}
	}
	for _, bad := range []string{",solo", "0.0.0.0:3334,solo=maybe", "0.0.0.0:3334,sollo", "0.0.0.0:3334,"} {
		if _, _, err := parseListenSpec(bad); !errors.Is(err, cliconf.ErrConfig) {
			t.Errorf("%q: %v, want a config error", bad, err)
		}
	}
}

func TestSoloConfig(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	base := []string{"--db", "postgres://x", "--network", "regtest"}
	cfg, _, err := parseConfig(append(base, "--listen", "127.0.0.1:3334,solo", "--solo-fee-bps", "150"), noEnv, io.Discard)
	if err != nil || cfg.SoloFeeBPS != 150 {
		t.Fatalf("config %+v: %v", cfg, err)
	}
	for _, args := range [][]string{
		{"--solo-fee-bps", "10000"},
		{"--solo-fee-bps", "-1"},
		{"--listen", "127.0.0.1:3334,bogus"},
		{"--tls-listen", "127.0.0.1:3443,solo=2"}, // refused before the missing certificate is
	} {
		if _, _, err := parseConfig(append(base, args...), noEnv, io.Discard); !errors.Is(err, cliconf.ErrConfig) ||
			!strings.Contains(err.Error(), "solo") && !strings.Contains(err.Error(), "bogus") {
			t.Errorf("%v: %v, want a config error", args, err)
		}
	}
}
