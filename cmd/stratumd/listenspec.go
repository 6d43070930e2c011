package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/stratumd/stratumd/internal/cliconf"
	"github.com/stratumd/stratumd/internal/stratum"
)

// This file holds the value of --listen and --tls-listen: an address and
// the listener's own options, "ADDR[,key[=value]...]", e.g.
//
//	--listen 0.0.0.0:3334,min-diff=0.0001,max-diff=0.01,start-diff=0.0005,pow2
//
// Keys (a key left out takes the global setting of the same name):
//
//	min-diff, max-diff, start-diff   share difficulty (a positive number)
//	vardiff-target                    time between a connection's shares (a duration, at least 1s)
//	pow2                              round every difficulty to a power of two (bare, or =true/=false)
//	solo                              every miner of the port mines solo (bare, or =true/=false; see README "Solo mining")
//
// A new key is one case in parseListenOption.

// listenSpec is one --listen or --tls-listen value.
type listenSpec struct {
	// Value is the value as given, for messages.
	Value string
	// Addr is the host:port to listen on.
	Addr string
	// Profile is the listener's difficulty profile; zero fields take the
	// global --min-diff, --max-diff, --start-diff, --vardiff-target.
	Profile stratum.Profile
	// Solo makes every miner of the listener mine solo.
	Solo bool
}

// listenerConfig is what the stratum server gets for this listener.
func (s listenSpec) listenerConfig() stratum.ListenerConfig {
	return stratum.ListenerConfig{Profile: s.Profile, Solo: s.Solo}
}

// parseListenSpec parses "ADDR[,key[=value]...]". Unknown keys, a key
// given twice, a missing or bad value are errors naming the key.
func parseListenSpec(v string) (listenSpec, error) {
	parts := strings.Split(v, ",")
	spec := listenSpec{Value: v, Addr: strings.TrimSpace(parts[0])}
	if spec.Addr == "" {
		return spec, fmt.Errorf("%q: no address before the options", v)
	}
	if !strings.Contains(spec.Addr, ":") {
		return spec, fmt.Errorf("%q: address %q is not host:port", v, spec.Addr)
	}
	seen := map[string]bool{}
	for _, opt := range parts[1:] {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			return spec, fmt.Errorf("%q: empty option", v)
		}
		key, val, hasVal := strings.Cut(opt, "=")
		key = strings.TrimSpace(key)
		if seen[key] {
			return spec, fmt.Errorf("%q: %s given twice", v, key)
		}
		seen[key] = true
		if err := parseListenOption(&spec, key, strings.TrimSpace(val), hasVal); err != nil {
			return spec, fmt.Errorf("%q: %w", v, err)
		}
	}
	return spec, nil
}

// listenOptionNames are the keys parseListenOption knows, for messages.
const listenOptionNames = "min-diff, max-diff, start-diff, vardiff-target, pow2, solo"

// parseListenOption applies one key (with its value, when hasVal) to spec.
func parseListenOption(spec *listenSpec, key, val string, hasVal bool) error {
	needValue := func() error {
		if !hasVal || val == "" {
			return fmt.Errorf("%s needs a value (%s=...)", key, key)
		}
		return nil
	}
	diff := func(dst *float64) error {
		if err := needValue(); err != nil {
			return err
		}
		d, err := strconv.ParseFloat(val, 64)
		if err != nil || !(d > 0) || math.IsInf(d, 0) {
			return fmt.Errorf("%s=%s: want a positive number", key, val)
		}
		*dst = d
		return nil
	}
	boolOpt := func(dst *bool) error {
		if !hasVal {
			*dst = true
			return nil
		}
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("%s=%s: want true or false (or %s alone)", key, val, key)
		}
		*dst = b
		return nil
	}
	p := &spec.Profile
	switch key {
	case "min-diff":
		return diff(&p.MinDiff)
	case "max-diff":
		return diff(&p.MaxDiff)
	case "start-diff":
		return diff(&p.StartDiff)
	case "vardiff-target":
		if err := needValue(); err != nil {
			return err
		}
		d, err := time.ParseDuration(val)
		if err != nil || d < time.Second {
			return fmt.Errorf("vardiff-target=%s: want a duration of at least 1s, e.g. 10s", val)
		}
		p.VardiffTarget = d
	case "pow2":
		return boolOpt(&p.Pow2)
	case "solo":
		return boolOpt(&spec.Solo)
	default:
		return fmt.Errorf("unknown option %q (known: %s)", key, listenOptionNames)
	}
	return nil
}

// listenList is a repeatable --listen or --tls-listen flag.
type listenList []listenSpec

// String joins the values as given with spaces.
func (l *listenList) String() string {
	vals := make([]string, len(*l))
	for i, s := range *l {
		vals[i] = s.Value
	}
	return strings.Join(vals, " ")
}

// Set parses one listener and appends it.
func (l *listenList) Set(v string) error {
	s, err := parseListenSpec(v)
	if err != nil {
		return err
	}
	*l = append(*l, s)
	return nil
}

// Repeatable marks listenList as repeatable.
func (l *listenList) Repeatable() bool { return true }

// SplitEnv splits STRATUMD_LISTEN at commas, as for other repeatable
// settings, but a part that is not an address (it has no ':' before any
// '=', as every option) belongs to the listener before it:
// "0.0.0.0:3333,0.0.0.0:3334,min-diff=0.0001,pow2" is two listeners.
func (l *listenList) SplitEnv(v string) []string {
	var out []string
	for _, p := range cliconf.SplitList(v) {
		key, _, _ := strings.Cut(p, "=")
		if len(out) > 0 && !strings.Contains(key, ":") {
			out[len(out)-1] += "," + p
			continue
		}
		out = append(out, p)
	}
	return out
}

// addrs returns the listeners' addresses.
func (l listenList) addrs() []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.Addr
	}
	return out
}

// checkProfiles checks every listener's profile against the global
// difficulty settings, which its unset keys take.
func (c *config) checkProfiles() error {
	global := c.limits()
	for _, set := range []struct {
		flag string
		list listenList
	}{{"listen", c.Listen}, {"tls-listen", c.TLSListen}} {
		for _, s := range set.list {
			if err := s.Profile.Check(global); err != nil {
				return fmt.Errorf("%w: --%s %q: %w (unset keys take --min-diff, --max-diff, --start-diff)",
					cliconf.ErrConfig, set.flag, s.Value, err)
			}
		}
	}
	return nil
}

// listenersChanged reports whether o's listeners (addresses or options)
// differ from c's: a reload does not reopen them.
func (c *config) listenersChanged(o *config) bool {
	return c.Listen.String() != o.Listen.String() || c.TLSListen.String() != o.TLSListen.String()
}
