package main

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/e2e/daemontest"
	"github.com/stratumd/stratumd/internal/miner"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/testutil"
)

// TestReusePortInstances (issue 19, point 4): two daemons with --reuse-port
// and instance ids 1 and 2 listen on one port and both serve miners, whose
// extranonce1 starts with the id of the process that took them; without
// --reuse-port the port is refused; a third process on an id already
// running on the database refuses to start.
func TestReusePortInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	addr := daemontest.FreeAddr(t)
	args := func(id string, extra ...string) []string {
		dir := t.TempDir()
		return append([]string{"--network", "regtest", "--node", "embedded", "--auth", "open", "--listen", addr,
			"--instance-id", id, "--datadir", filepath.Join(dir, "node"), "--share-dir", filepath.Join(dir, "shares"),
			"--conn-rate-per-ip", "0", "--password-nice", "0"}, extra...)
	}
	startDaemonAll(t, db, 1, args("1", "--reuse-port")...)
	startDaemonAll(t, db, 1, args("2", "--reuse-port")...)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefixes := map[byte]int{}
	for range 40 {
		m, err := miner.Dial(ctx, addr, miner.Options{User: regtestDevAddress})
		if err != nil {
			t.Fatal(err)
		}
		en1, _ := m.Extranonce1()
		prefixes[en1[0]]++
		m.Close()
	}
	if len(prefixes) != 2 || prefixes[1] == 0 || prefixes[2] == 0 {
		t.Fatalf("extranonce1 prefixes of 40 miners on the shared port: %v; want both 1 and 2", prefixes)
	}

	// The same port without --reuse-port, and a running instance id.
	for _, c := range []struct {
		args []string
		want string
	}{
		{args("3"), "address already in use"},
		{args("1", "--reuse-port"), "--instance-id 1"},
	} {
		err := runOnce(t, db, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v; want an error naming %q", c.args, err, c.want)
		}
	}
}

// runOnce runs the daemon on args and returns its error; it must fail at
// start.
func runOnce(t *testing.T, db string, args []string) error {
	t.Helper()
	args = append([]string{"--db", db}, args...)
	cfg, _, err := parseConfig(args, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cfg: cfg, args: args, lockWait: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logs := &testutil.SyncBuffer{}
	err = d.run(ctx, logs)
	if ctx.Err() != nil {
		t.Fatalf("%v: still running after a minute\n%s", args, logs)
	}
	return err
}
