// Package cliconf layers a command's configuration: command-line flags over
// environment variables over a TOML file. Every flag NAME of a flag.FlagSet
// may also be given as the environment variable PREFIX_NAME (upper case,
// '-' as '_') and as the key NAME in the TOML file named by the config flag.
// Repeatable flags take a TOML array, or a comma-separated environment value
// (a flag value that implements EnvSplitter splits its own).
// Flags named in Options.CommandLineOnly are read from the command line alone.
//
// Unknown TOML keys and values a flag refuses are errors that name the
// setting and where it came from, so that a daemon can stop at start with
// one clear line.
//
// It owns, in cliconf.go: Parse and Options, the layering; EnvName, the
// environment name of a flag; Secret, a setting read from its value or,
// with "file:", from a file, never logged; Repeatable, EnvSplitter,
// SplitList and StringList, for flags given several times; ErrConfig,
// which every error wraps.
//
// The package knows where settings come from, not what they mean: the
// commands (cmd/stratumd, cmd/payout) define their flags and check their
// values. It imports only the standard library and the TOML decoder
// (BurntSushi/toml), and must not import any package of this module: it
// serves both commands and knows none of the parts they configure.
package cliconf
