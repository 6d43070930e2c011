package wire

import "encoding/json"

// Method names, client to server.
const (
	MethodSubscribe           = "mining.subscribe"
	MethodAuthorize           = "mining.authorize"
	MethodConfigure           = "mining.configure"
	MethodSuggestDifficulty   = "mining.suggest_difficulty"
	MethodExtranonceSubscribe = "mining.extranonce.subscribe"
	MethodSubmit              = "mining.submit"
	MethodAuthorizeAdmin      = "mining.authorize_admin"
	MethodAddUser             = "mining.add_user"

	// MethodGetTransactions and MethodMultiVersion are sent by some miners
	// but not supported: the session answers them with an error.
	MethodGetTransactions = "mining.get_transactions"
	MethodMultiVersion    = "mining.multi_version"
)

// Method names, server to client.
const (
	MethodNotify         = "mining.notify"
	MethodSetDifficulty  = "mining.set_difficulty"
	MethodSetVersionMask = "mining.set_version_mask"
	MethodSetExtranonce  = "mining.set_extranonce"
	MethodReconnect      = "client.reconnect"
)

// Stratum error codes, customary across pools and understood by miners.
const (
	CodeOther         = 20 // other or unknown error
	CodeJobNotFound   = 21 // job not found (stale share)
	CodeDuplicate     = 22 // duplicate share
	CodeLowDifficulty = 23 // share above the target
	CodeUnauthorized  = 24 // worker not authorized
	CodeNotSubscribed = 25 // mining.subscribe not done
)

// CodeMessage returns the customary message for a Stratum error code, or
// "Other/Unknown" for codes it does not know.
func CodeMessage(code int) string {
	switch code {
	case CodeJobNotFound:
		return "Job not found"
	case CodeDuplicate:
		return "Duplicate share"
	case CodeLowDifficulty:
		return "Low difficulty share"
	case CodeUnauthorized:
		return "Unauthorized worker"
	case CodeNotSubscribed:
		return "Not subscribed"
	default:
		return "Other/Unknown"
	}
}

// Limits enforced by the decoders.
const (
	// MaxDepth is the deepest JSON nesting DecodeRequest accepts; the request
	// object itself is level 1, its params array level 2.
	MaxDepth = 8
	// MaxUserLen is the longest user name ("address.worker") accepted.
	MaxUserLen = 256
	// MaxPasswordLen is the longest password accepted.
	MaxPasswordLen = 256
	// MaxAddressLen is the longest payout address mining.add_user accepts
	// (the users table's bound); the session checks it for the network.
	MaxAddressLen = 100
	// MaxUserAgentLen is the longest user agent kept; longer ones are truncated.
	MaxUserAgentLen = 128
	// MaxSessionIDLen is the longest subscribe session ID kept; longer ones are ignored.
	MaxSessionIDLen = 64
	// MaxJobIDLen is the longest job ID accepted in mining.submit.
	MaxJobIDLen = 64
	// MaxExtranonce2Size is the largest extranonce2, in bytes, accepted by
	// DecodeSubmit; the session checks the exact size it assigned.
	MaxExtranonce2Size = 16
	// MaxExtensions is the largest number of mining.configure extensions accepted.
	MaxExtensions = 16
	// MaxExtensionLen is the longest mining.configure extension name accepted.
	MaxExtensionLen = 64
)

// Request is one client request line. ID is kept verbatim (a JSON number,
// string or null) to be echoed in the reply; Params is the raw JSON array of
// parameters ("[]" when the client sent null or none), for the method's
// DecodeXxx function. Both are copies that do not alias the decoded line.
type Request struct {
	ID     json.RawMessage
	Method string
	Params json.RawMessage
}

// SubscribeParams are the optional parameters of mining.subscribe.
type SubscribeParams struct {
	// UserAgent is the miner's software name and version, truncated to
	// MaxUserAgentLen bytes; empty when not sent.
	UserAgent string
	// SessionID is the subscription ID the miner asks to resume; empty when
	// not sent or longer than MaxSessionIDLen.
	SessionID string
}

// AuthorizeParams are the parameters of mining.authorize.
type AuthorizeParams struct {
	User     string // non-empty, at most MaxUserLen bytes, no control characters
	Password string // optional, at most MaxPasswordLen bytes
}

// ConfigureParams are the BIP 310 mining.configure parameters the pool
// understands. Unknown extensions are listed in Extensions and otherwise
// ignored.
type ConfigureParams struct {
	Extensions []string
	// HasVersionRolling is true when "version-rolling" is requested.
	HasVersionRolling bool
	// VersionRollingMask is the miner's mask, 0xffffffff when not sent.
	VersionRollingMask uint32
	// VersionRollingMinBitCount is the miner's minimum bit count, 0..32.
	VersionRollingMinBitCount int
	// HasMinimumDifficulty is true when "minimum-difficulty" is requested
	// with a value.
	HasMinimumDifficulty bool
	// MinimumDifficulty is the miner's minimum difficulty, finite and >= 0.
	MinimumDifficulty float64
}

// SubmitParams are the parameters of mining.submit.
type SubmitParams struct {
	Worker      string // as sent, at most MaxUserLen bytes; the session checks it is authorized
	JobID       string // non-empty, at most MaxJobIDLen bytes
	Extranonce2 []byte // at most MaxExtranonce2Size bytes; the session checks the exact size
	NTime       uint32
	Nonce       uint32
	// VersionBits are the rolled version bits (BIP 310), valid when
	// HasVersionBits is set.
	VersionBits    uint32
	HasVersionBits bool
}

// AddUserParams are the parameters of mining.add_user.
type AddUserParams struct {
	Username string // non-empty, at most MaxUserLen bytes, no control characters
	Password string // non-empty, at most MaxPasswordLen bytes
	// Address is the optional payout address, at most MaxAddressLen bytes;
	// empty when absent, null or "".
	Address string
}

// ConfigureResult is the pool's answer to mining.configure. Only the
// extensions marked as answered appear in the reply.
type ConfigureResult struct {
	// AnswerVersionRolling includes "version-rolling" in the reply.
	AnswerVersionRolling bool
	// VersionRolling accepts version rolling with VersionRollingMask.
	VersionRolling     bool
	VersionRollingMask uint32
	// AnswerMinimumDifficulty includes "minimum-difficulty" in the reply.
	AnswerMinimumDifficulty bool
	// MinimumDifficulty accepts the miner's minimum difficulty.
	MinimumDifficulty bool
}
