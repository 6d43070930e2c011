package main

import (
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/pgtest"
)

// TestReloadOnSIGHUP: SIGHUP re-reads the configuration file and applies the
// difficulty and ban settings at run time; a bad file is refused and the
// running settings kept.
func TestReloadOnSIGHUP(t *testing.T) {
	// Keep SIGHUP from ending the test process before the daemon listens.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)

	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "stratumd.toml")
	write := func(s string) {
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("min-diff = 0.001\nmax-diff = 1000.0\nban-duration = \"10m\"\n")
	r := startDaemon(t, db, "--config", conf, "--network", "regtest", "--auth", "open",
		"--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"))
	if got := r.d.server.CurrentLimits().MinDiff; got != 0.001 {
		t.Fatalf("min-diff at start %v", got)
	}
	hupUntil := func(ok func() bool) bool {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
			syscall.Kill(os.Getpid(), syscall.SIGHUP)
			time.Sleep(100 * time.Millisecond)
			if ok() {
				return true
			}
		}
		return false
	}
	write("min-diff = 0.002\nmax-diff = 500.0\nban-duration = \"20m\"\n")
	if !hupUntil(func() bool {
		l := r.d.server.CurrentLimits()
		return l.MinDiff == 0.002 && l.MaxDiff == 500 && l.BanDuration == 20*time.Minute
	}) {
		t.Fatalf("limits after SIGHUP: %+v", r.d.server.CurrentLimits())
	}
	write("min-diff = -5.0\n")
	if !hupUntil(func() bool { return strings.Contains(r.logs.String(), "reload refused") }) {
		t.Fatal("a bad configuration was not reported on SIGHUP")
	}
	if l := r.d.server.CurrentLimits(); l.MinDiff != 0.002 || l.MaxDiff != 500 {
		t.Fatalf("a refused reload changed the limits: %+v", l)
	}
}
