//go:build unix

package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestMain lets the test binary be loopfloor's child process.
func TestMain(m *testing.M) {
	if addr := os.Getenv(childEnv); addr != "" {
		if err := child(addr, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "loopfloor child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestRun(t *testing.T) {
	for _, reader := range []string{"stopped", "read"} {
		t.Run(reader, func(t *testing.T) {
			var out bytes.Buffer
			if err := run([]string{"-conns", "40", "-size", "100", "-workers", "3", "-rounds", "2", "-pause", "10ms", "-reader", reader}, &out); err != nil {
				t.Fatal(err)
			}
			rounds := regexp.MustCompile(`(?m)^round \d: 40 writes of 100 bytes in ([0-9.]+) ms`).FindAllStringSubmatch(out.String(), -1)
			if len(rounds) != 2 {
				t.Fatalf("want 2 rounds of 40 writes:\n%s", &out)
			}
			for _, r := range rounds {
				if v, err := strconv.ParseFloat(r[1], 64); err != nil || v <= 0 {
					t.Fatalf("round time %q", r[1])
				}
			}
			if !regexp.MustCompile(`reader ` + reader + `, 3 workers: fan-out min [0-9.]+ ms, median`).MatchString(out.String()) {
				t.Fatalf("no summary:\n%s", &out)
			}
		})
	}
	var out bytes.Buffer
	if err := run([]string{"-reader", "sleepy"}, &out); err == nil {
		t.Fatal("-reader sleepy accepted")
	}
}
