package main

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/testutil"
)

// envOf is a lookupEnv over a map.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPauseStepRejectsBadValues(t *testing.T) {
	for _, e := range []map[string]string{
		{pauseStepEnv: "0"}, {pauseStepEnv: "-1"}, {pauseStepEnv: "x"},
		{pauseStepEnv: "built:0"}, {pauseStepEnv: ":1"}, {pauseStepEnv: "built:"},
		{stepLogEnv: "yes please"},
	} {
		if _, err := pauseStepHook(envOf(e), nil, io.Discard, nil); !errors.Is(err, cliconf.ErrConfig) {
			t.Errorf("%v: %v, want a configuration error", e, err)
		}
	}
	next := func(string) error { return errors.New("next") }
	h, err := pauseStepHook(noEnv, nil, io.Discard, next)
	if err != nil || h == nil || h("x") == nil || h("x").Error() != "next" {
		t.Fatalf("unset: the hook is not next (%v)", err)
	}
	if h, err := pauseStepHook(noEnv, nil, io.Discard, nil); h != nil || err != nil {
		t.Fatalf("unset with no next: hook %v, %v; want none", h != nil, err)
	}
}

// TestPauseStepWaitsForStdin: the hook holds the run at step 2 until a line
// arrives on its stdin, and only there; then the next hook sees the step.
func TestPauseStepWaitsForStdin(t *testing.T) {
	r, w := io.Pipe()
	var stderr testutil.SyncBuffer
	var passed []string
	h, err := pauseStepHook(envOf(map[string]string{pauseStepEnv: "2"}), r, &stderr,
		func(s string) error { passed = append(passed, s); return nil })
	if err != nil {
		t.Fatal(err)
	}
	h("first")
	if stderr.String() != "" {
		t.Fatalf("paused at step 1: %q", stderr.String())
	}
	done := make(chan struct{})
	go func() { h("second"); close(done) }()
	// The pause line is written before the hook reads stdin: once it is
	// there, the hook must still be waiting.
	for !strings.Contains(stderr.String(), "payout: test pause at step 2 second") {
		runtime.Gosched()
	}
	select {
	case <-done:
		t.Fatal("the hook went on without a line on stdin")
	default:
	}
	w.Write([]byte("\n"))
	<-done
	h("third")
	if n := strings.Count(stderr.String(), "pause"); n != 1 || strings.Join(passed, " ") != "first second third" {
		t.Fatalf("%d pauses (%q); next saw %v", n, stderr.String(), passed)
	}
}

// TestPauseStepByNameAndLog: NAME:N pauses at the N-th boundary of that
// name, and the step log names every boundary with its number.
func TestPauseStepByNameAndLog(t *testing.T) {
	var stderr bytes.Buffer
	h, err := pauseStepHook(envOf(map[string]string{pauseStepEnv: "built:2", stepLogEnv: "1"}), strings.NewReader("\n"), &stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"planned", "built", "signed-stored", "built", "signed-stored"} {
		h(s)
	}
	want := "payout: test step 1 planned\npayout: test step 2 built\npayout: test step 3 signed-stored\n" +
		"payout: test step 4 built\npayout: test pause at step 4 built\npayout: test step 5 signed-stored\n"
	if got := stderr.String(); got != want {
		t.Fatalf("stderr\n%s\nwant\n%s", got, want)
	}
}
