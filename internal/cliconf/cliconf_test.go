package cliconf

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

type fixture struct {
	fs      *flag.FlagSet
	config  *string
	db      *string
	minDiff *float64
	tick    *time.Duration
	open    *bool
	listen  StringList
}

func newFixture() *fixture {
	f := &fixture{fs: flag.NewFlagSet("t", flag.ContinueOnError)}
	f.fs.SetOutput(io.Discard)
	f.config = f.fs.String("config", "", "")
	f.db = f.fs.String("db", "default-db", "")
	f.minDiff = f.fs.Float64("min-diff", 1, "")
	f.tick = f.fs.Duration("job-interval", 30*time.Second, "")
	f.open = f.fs.Bool("open", false, "")
	f.fs.Var(&f.listen, "listen", "")
	return f
}

func opts(env map[string]string, file string) Options {
	return Options{
		EnvPrefix:  "APP",
		ConfigFlag: "config",
		LookupEnv:  func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		ReadFile:   func(string) ([]byte, error) { return []byte(file), nil },
	}
}

func TestPrecedence(t *testing.T) {
	f := newFixture()
	file := `
db = "from-file"
min-diff = 0.25
job-interval = "10s"
open = true
listen = ["a:1", "b:2"]
`
	env := map[string]string{"APP_DB": "from-env", "APP_CONFIG": "/etc/app.toml"}
	pos, err := Parse(f.fs, []string{"migrate", "--min-diff", "4", "up"}, opts(env, file))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pos, []string{"migrate", "up"}) {
		t.Fatalf("positional %v", pos)
	}
	if *f.db != "from-env" || *f.minDiff != 4 || *f.tick != 10*time.Second || !*f.open {
		t.Fatalf("db=%q min-diff=%v tick=%v open=%v", *f.db, *f.minDiff, *f.tick, *f.open)
	}
	if !reflect.DeepEqual([]string(f.listen), []string{"a:1", "b:2"}) {
		t.Fatalf("listen %v", f.listen)
	}
}

func TestEnvList(t *testing.T) {
	f := newFixture()
	if _, err := Parse(f.fs, nil, opts(map[string]string{"APP_LISTEN": "x:1, y:2"}, "")); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]string(f.listen), []string{"x:1", "y:2"}) {
		t.Fatalf("listen %v", f.listen)
	}
}

// semicolonList splits its environment value at ';' (an EnvSplitter).
type semicolonList struct{ StringList }

func (l *semicolonList) SplitEnv(v string) []string { return strings.Split(v, ";") }

// A flag value that is an EnvSplitter splits its own environment value.
func TestEnvSplitter(t *testing.T) {
	f := newFixture()
	var pools semicolonList
	f.fs.Var(&pools, "pools", "")
	if _, err := Parse(f.fs, nil, opts(map[string]string{"APP_POOLS": "x:1,a=b;y:2"}, "")); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]string(pools.StringList), []string{"x:1,a=b", "y:2"}) {
		t.Fatalf("pools %v", pools.StringList)
	}
}

func TestCommandLineOnly(t *testing.T) {
	f := newFixture()
	addr := f.fs.String("address", "", "")
	o := opts(map[string]string{"APP_ADDRESS": "from-env", "APP_DB": "from-env"}, "")
	o.CommandLineOnly = []string{"address"}
	// Not read from the environment; after the first positional argument
	// and before it alike on the command line.
	if _, err := Parse(f.fs, nil, o); err != nil || *addr != "" || *f.db != "from-env" {
		t.Fatalf("environment: address %q, db %q, %v", *addr, *f.db, err)
	}
	for _, args := range [][]string{{"adduser", "bob", "--address", "x"}, {"adduser", "--address", "x", "bob"}, {"--address=x", "adduser", "bob"}} {
		f := newFixture()
		addr := f.fs.String("address", "", "")
		pos, err := Parse(f.fs, args, o)
		if err != nil || *addr != "x" || !reflect.DeepEqual(pos, []string{"adduser", "bob"}) {
			t.Errorf("%q: address %q, positional %q, %v", args, *addr, pos, err)
		}
	}
	// A file key naming it is an error.
	f = newFixture()
	f.fs.String("address", "", "")
	o = opts(nil, `address = "x"`)
	o.CommandLineOnly = []string{"address"}
	if _, err := Parse(f.fs, []string{"--config", "f.toml"}, o); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `"address" is a command-line flag only`) {
		t.Errorf("file key: %v", err)
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		file string
		want string
	}{
		{env: map[string]string{"APP_MIN_DIFF": "lots"}, want: "APP_MIN_DIFF"},
		{args: []string{"--config", "x"}, file: "colour = 1", want: `unknown setting "colour"`},
		{args: []string{"--config", "x"}, file: "min-diff = \"high\"", want: "min-diff"},
		{args: []string{"--config", "x"}, file: "db = [\"a\", \"b\"]", want: "db takes one value"},
		{args: []string{"--config", "x"}, file: "db = ", want: "x:"},
		{args: []string{"--config", "x"}, file: "db = {a = 1}", want: "db"},
	} {
		f := newFixture()
		_, err := Parse(f.fs, tc.args, opts(tc.env, tc.file))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v %q: err = %v, want ErrConfig naming %q", tc.args, tc.env, tc.file, err, tc.want)
		}
	}
}

func TestSecret(t *testing.T) {
	read := func(p string) ([]byte, error) {
		if p == "/run/secrets/pw" {
			return []byte("hunter2\nignored\n"), nil
		}
		return nil, errors.New("no such file")
	}
	if s, err := Secret("plain", read); err != nil || s != "plain" {
		t.Fatalf("%q %v", s, err)
	}
	if s, err := Secret("file:/run/secrets/pw", read); err != nil || s != "hunter2" {
		t.Fatalf("%q %v", s, err)
	}
	if _, err := Secret("file:/missing", read); !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("missing file: %v", err)
	}
}
