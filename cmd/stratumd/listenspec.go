package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/stratum"
)

// A --listen or --tls-listen value is an address optionally followed by
// options, comma-separated, each "key" or "key=value":
//
//	0.0.0.0:3333
//	0.0.0.0:3334,solo          every miner of this port mines solo
//	0.0.0.0:3334,solo=true     the same
//
// Unknown keys and bad values are configuration errors.

// stratumListener is an open stratum listener and its options.
type stratumListener struct {
	net.Listener
	opts stratum.ListenOptions
}

// parseListenSpec splits a --listen/--tls-listen value into its address
// and its options.
func parseListenSpec(spec string) (string, stratum.ListenOptions, error) {
	var opts stratum.ListenOptions
	addr, rest, hasOpts := strings.Cut(spec, ",")
	if addr == "" {
		return "", opts, fmt.Errorf("%w: listen %q: no address", cliconf.ErrConfig, spec)
	}
	if !hasOpts {
		return addr, opts, nil
	}
	for opt := range strings.SplitSeq(rest, ",") {
		key, value, hasValue := strings.Cut(strings.TrimSpace(opt), "=")
		switch key {
		case "solo":
			on := true
			if hasValue {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return "", opts, fmt.Errorf("%w: listen %q: solo=%q: want true or false", cliconf.ErrConfig, spec, value)
				}
				on = b
			}
			opts.Solo = on
		default:
			return "", opts, fmt.Errorf("%w: listen %q: unknown option %q (known: solo)", cliconf.ErrConfig, spec, key)
		}
	}
	return addr, opts, nil
}
