package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stratumd/stratumd/internal/password"
)

// TestMain lets the test binary be the daemon's password worker: a daemon
// run in-process by a test finds this binary with os.Executable and starts
// it as "password-worker NICE N". With asDaemonEnv set it is stratumd
// itself, for tests that need the daemon in a process of its own (its own
// descriptor limit).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "password-worker" || os.Getenv(asDaemonEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestPasswordWorkerCommand drives the subcommand over its stdin/stdout
// with the production argon2 costs and a legacy hash.
func TestPasswordWorkerCommand(t *testing.T) {
	def := password.Argon2id{Params: password.DefaultParams()}
	argon, err := def.Hash("right")
	if err != nil {
		t.Fatal(err)
	}
	first := sha256.Sum256([]byte("old"))
	second := sha256.Sum256(first[:])
	legacy, err := password.LegacyHash(hex.EncodeToString(second[:]))
	if err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for i, r := range []struct {
		stored, pw string
	}{{argon, "right"}, {argon, "wrong"}, {"nonsense", "x"}, {legacy, "old"}} {
		b, _ := json.Marshal(map[string]any{"id": i + 1, "op": "verify", "stored": []byte(r.stored), "password": []byte(r.pw)})
		in.Write(append(b, '\n'))
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"--network", "regtest", "password-worker", "0", "2"}, strings.NewReader(in.String()), &out, &errb); err != nil {
		t.Fatalf("password-worker: %v\n%s", err, &errb)
	}
	got := map[int]map[string]any{}
	for line := range strings.Lines(out.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("reply %q: %v", line, err)
		}
		got[int(r["id"].(float64))] = r
	}
	if got[1]["ok"] != true || got[2]["ok"] != nil || got[2]["err"] != nil || got[3]["kind"] != "invalid" ||
		got[4]["ok"] != true || got[4]["rehash"] != true {
		t.Fatalf("replies:\n%s", &out)
	}
	for _, args := range [][]string{{"password-worker"}, {"password-worker", "20", "1"}, {"password-worker", "15", "0"}} {
		if err := run(context.Background(), append([]string{"--network", "regtest"}, args...), strings.NewReader(""), &out, &errb); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
