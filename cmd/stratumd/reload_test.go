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
	ignoreHUP(t)
	db := pgtest.NewDatabase(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "stratumd.toml")
	write := fileWriter(t, conf)
	write("min-diff = 0.001\nmax-diff = 1000.0\nban-duration = \"10m\"\n")
	r := startDaemon(t, db, "--config", conf, "--network", "regtest", "--auth", "open",
		"--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"))
	if got := r.d.server.CurrentLimits().MinDiff; got != 0.001 {
		t.Fatalf("min-diff at start %v", got)
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

// ignoreHUP keeps SIGHUP from ending the test process (before the daemon
// listens for it) until the test ends.
func ignoreHUP(t *testing.T) {
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(guard) })
}

// fileWriter returns a function that writes its argument to path.
func fileWriter(t *testing.T, path string) func(string) {
	return func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// hupUntil sends this process SIGHUP every 100 ms until ok returns true
// (true) or 20 s have passed (false).
func hupUntil(ok func() bool) bool {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(100 * time.Millisecond)
		if ok() {
			return true
		}
	}
	return false
}
