// Package stratum implements the pool's Stratum v1 protocol: the line-JSON
// codec, the bounded per-connection line reader, variable difficulty, and
// (in files added alongside) sessions, jobs and share validation.
//
// The codec (codec.go, messages.go) does no I/O: DecodeRequest turns one line
// into a Request, the DecodeXxx functions turn a method's params into typed
// structs with every field's type, hex encoding, length and range checked, and
// the EncodeXxx functions build complete '\n'-terminated lines. Decoding is
// total: any input yields a value or an error wrapping one of the package's
// sentinel errors, never a panic, so the codec can be fuzzed on its own.
//
// LineReader reads one miner connection line by line with the maximum line
// length enforced while reading and a small buffer that grows only for the
// lines that need it.
//
// Vardiff retargets one connection's share difficulty toward a target time
// per share on an injected clock.
package stratum
