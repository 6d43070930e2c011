package cliconf

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrConfig is wrapped by every error of this package.
var ErrConfig = errors.New("configuration")

// Repeatable is implemented by flag values that accept several values (each
// Set appends); their environment value is split at commas.
type Repeatable interface {
	flag.Value
	Repeatable() bool
}

// EnvSplitter is implemented by repeatable flag values whose environment
// value is not simply split at commas: SplitEnv returns the values to Set,
// in order.
type EnvSplitter interface {
	flag.Value
	SplitEnv(v string) []string
}

// Options says where settings come from.
type Options struct {
	// EnvPrefix, e.g. "STRATUMD"; empty disables the environment.
	EnvPrefix string
	// ConfigFlag names the flag holding the TOML file path (e.g. "config");
	// empty disables the file.
	ConfigFlag string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile reads the config file; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
	// CommandLineOnly names flags read from the command line alone, never
	// from the environment or the file (a file key naming one is an
	// error): a subcommand's own options, such as the address of the one
	// user it creates, which would apply to every later run if they were
	// left in a shared environment or file.
	CommandLineOnly []string
}

// EnvName returns the environment variable for flag name.
func EnvName(prefix, name string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs (flags may come after positional arguments,
// which are returned in order), then fills every flag not set on the command
// line from the environment, then from the TOML file.
func Parse(fs *flag.FlagSet, args []string, o Options) ([]string, error) {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			positional = append(positional, rest[1:]...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cmdOnly := map[string]bool{}
	for _, name := range o.CommandLineOnly {
		cmdOnly[name] = true
	}

	// Environment.
	if o.EnvPrefix != "" {
		var err error
		fs.VisitAll(func(f *flag.Flag) {
			if err != nil || set[f.Name] || cmdOnly[f.Name] {
				return
			}
			env := EnvName(o.EnvPrefix, f.Name)
			v, ok := o.LookupEnv(env)
			if !ok {
				return
			}
			vals := []string{v}
			if sp, ok := f.Value.(EnvSplitter); ok {
				vals = sp.SplitEnv(v)
			} else if r, ok := f.Value.(Repeatable); ok && r.Repeatable() {
				vals = splitList(v)
			}
			for _, x := range vals {
				if e := fs.Set(f.Name, x); e != nil {
					err = fmt.Errorf("%w: %s: %w", ErrConfig, env, e)
					return
				}
			}
			set[f.Name] = true
		})
		if err != nil {
			return nil, err
		}
	}

	// TOML file.
	if o.ConfigFlag == "" {
		return positional, nil
	}
	cf := fs.Lookup(o.ConfigFlag)
	if cf == nil || cf.Value.String() == "" {
		return positional, nil
	}
	path := cf.Value.String()
	data, err := o.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %w", ErrConfig, o.ConfigFlag, err)
	}
	var tbl map[string]any
	if err := toml.Unmarshal(data, &tbl); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	keys := make([]string, 0, len(tbl))
	for k := range tbl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil || k == o.ConfigFlag {
			return nil, fmt.Errorf("%w: %s: unknown setting %q", ErrConfig, path, k)
		}
		if cmdOnly[k] {
			return nil, fmt.Errorf("%w: %s: %q is a command-line flag only", ErrConfig, path, k)
		}
		if set[k] {
			continue
		}
		vals, err := tomlValues(tbl[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s: %w", ErrConfig, path, k, err)
		}
		if len(vals) > 1 {
			if r, ok := f.Value.(Repeatable); !ok || !r.Repeatable() {
				return nil, fmt.Errorf("%w: %s: %s takes one value, not a list", ErrConfig, path, k)
			}
		}
		for _, v := range vals {
			if err := fs.Set(k, v); err != nil {
				return nil, fmt.Errorf("%w: %s: %s: %w", ErrConfig, path, k, err)
			}
		}
	}
	return positional, nil
}

// SplitList splits a comma-separated environment value, trimming spaces
// and dropping empty parts, as Parse does for Repeatable flags.
func SplitList(v string) []string { return splitList(v) }

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// tomlValues turns a TOML value into the strings a flag.Value takes.
func tomlValues(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case bool, int64, float64:
		return []string{fmt.Sprint(x)}, nil
	case []any:
		var out []string
		for _, e := range x {
			s, err := tomlValues(e)
			if err != nil {
				return nil, err
			}
			if len(s) != 1 {
				return nil, errors.New("nested lists are not settings")
			}
			out = append(out, s...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("a %T is not a setting value", v)
	}
}

// StringList is a repeatable string flag.
type StringList []string

// String joins the values with commas.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set appends v.
func (l *StringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// Repeatable marks StringList as repeatable.
func (l *StringList) Repeatable() bool { return true }

// Secret reads a secret setting: the value itself, or, when the flag or
// environment value starts with "file:", the first line of that file. It
// never logs or prints the secret.
func Secret(v string, readFile func(string) ([]byte, error)) (string, error) {
	path, ok := strings.CutPrefix(v, "file:")
	if !ok {
		return v, nil
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	b, err := readFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: secret file: %w", ErrConfig, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}
