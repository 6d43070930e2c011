// Package wire is the Stratum v1 protocol as the pool speaks it, and
// nothing else: it turns lines into typed values and typed values into
// lines. Package stratum, the server, imports it the way tailscale's
// derpserver imports derp: every byte a session reads or writes is framed
// here, and the server holds no framing of its own.
//
// By file:
//
//   - messages.go: the vocabulary. Method names (client→server and
//     server→client), the customary error codes (20–25) and CodeMessage,
//     the BIP 310 extension names, the decoders' limits (MaxUserLen,
//     MaxExtranonce2Size, ...), Request and the typed params and result
//     structs.
//   - errors.go: the sentinel errors. Every DecodeRequest error wraps
//     ErrMalformed (and a more specific one); every params decoder's wraps
//     ErrInvalidParams; ErrLineTooLong and ErrInvalidDifficulty.
//   - linereader.go: LineReader, which reads '\n'-terminated lines with the
//     maximum length enforced while reading (never more than the maximum
//     buffered) and a 512-byte buffer that grows only for the line that
//     needs it. It is the package's only I/O: it reads from an io.Reader.
//   - request.go: DecodeRequest, one line into a Request; the method's
//     params stay raw JSON for the method's decoder.
//   - fast.go: the submit fast path. The plain request and mining.submit
//     shapes every miner sends are decoded without encoding/json; anything
//     else falls through to the general decoders, so both always agree
//     (FuzzFastDecode).
//   - params.go: DecodeSubscribe, DecodeAuthorize, DecodeConfigure,
//     DecodeSuggestDifficulty, DecodeSubmit, DecodeAuthorizeAdmin and
//     DecodeAddUser, each checking every field's type, hex, length and
//     range.
//   - maintenance.go: the methods beyond the core set (mining.ping,
//     client.get_version, client.show_message) and the admin call
//     mining.reconnect_miners: DecodeReconnectMiners, DecodeResponse (a
//     miner's reply to the pool's request: DecodeRequest reports such a
//     line with ErrResponse), EncodeShowMessage, EncodeGetVersion and
//     EncodeAdminRequest, the one client→server encoder outside the tests,
//     for the daemon's reconnect command.
//   - encode.go: server→client lines, each complete and '\n'-terminated:
//     EncodeResult, EncodeError, EncodeSubscribeResult,
//     EncodeConfigureResult, EncodeNotify (built once per job) and
//     NotifyAlias (the same job under another id), EncodeSetDifficulty
//     (AppendDifficulty), EncodeReconnect, and EncodeSetVersionMask and
//     EncodeSetExtranonce, which the server does not send (a session's
//     extranonce1 never changes; the test miner's scripted pool sends
//     them).
//
// Client→server encoders of miners' requests live in the tests only
// (client_test.go), for the decode→encode→decode round trips: the pool
// sends no miner's requests (only its admin client's, EncodeAdminRequest), and the
// test miner (internal/miner) keeps a codec of its own on purpose, so that
// a bug in one is caught by the other instead of being shared.
//
// Decoding is total: any input yields a value or an error wrapping one of
// the sentinels, never a panic, so each decoder is fuzzed alone
// (FuzzDecodeRequest, FuzzDecodeSubmit, FuzzFastDecode, FuzzLineReader;
// corpora under testdata/fuzz). Error texts keep the "stratum:" prefix they
// had before the package was cut out: miners read them in error replies and
// the server's golden transcripts pin them.
//
// The package imports only the standard library. It must not import
// internal/stratum (which imports it), internal/store, internal/chain or
// any other package of this module: submit params are decoded into plain
// integers and bytes, and the server turns them into chain types. Its
// functions are safe for concurrent use; a LineReader belongs to one
// connection's reader.
package wire
