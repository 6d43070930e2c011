package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/username"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "soloaddrs:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("soloaddrs", flag.ContinueOnError)
	n := fs.Int("n", 1000, "number of distinct solo miners")
	network := fs.String("network", "regtest", "mainnet, testnet3, testnet4, signet, regtest or simnet")
	if err := fs.Parse(args); err != nil {
		return err
	}
	params, err := chain.NetworkParams(*network)
	if err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("-n %d: want at least 1", *n)
	}
	w := bufio.NewWriter(out)
	var h [20]byte
	for i := range *n {
		binary.BigEndian.PutUint64(h[12:], uint64(i)+1)
		a, err := btcutil.NewAddressWitnessPubKeyHash(h[:], params)
		if err != nil {
			return fmt.Errorf("address %d: %w", i, err)
		}
		fmt.Fprintln(w, username.SoloPrefix+a.EncodeAddress())
	}
	return w.Flush()
}
