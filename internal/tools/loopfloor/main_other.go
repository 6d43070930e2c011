//go:build !unix

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "loopfloor: needs a unix system (SIGSTOP, RLIMIT_NOFILE)")
	os.Exit(2)
}
