package rpcsource

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the returned
// errors wrap them with the detail of what was wrong. Template and
// SubmitBlock also return errors wrapping chain.ErrNotSynced and
// chain.ErrClosed.
var (
	// ErrInvalidConfig reports a Config that cannot run.
	ErrInvalidConfig = errors.New("rpcsource: invalid config")

	// ErrNoHealthyNode is returned by Template while no configured node is
	// reachable; the stratum server keeps serving its last job and retries.
	ErrNoHealthyNode = errors.New("rpcsource: no healthy node")

	// ErrBadReply reports a reply that is not what the method returns:
	// malformed JSON, a missing or out-of-range field, bad hex, an
	// inconsistent template. Node replies are untrusted input.
	ErrBadReply = errors.New("rpcsource: bad reply from node")

	// ErrAuth reports that the node refused the credentials (HTTP 401 or
	// 403, also after re-reading the cookie file).
	ErrAuth = errors.New("rpcsource: node refused credentials")

	// ErrWrongNetwork reports a node whose genesis block is not the
	// configured network's.
	ErrWrongNetwork = errors.New("rpcsource: node is on another network")

	// ErrAlreadyRunning is returned by a second call of Run.
	ErrAlreadyRunning = errors.New("rpcsource: Run called twice")

	// ErrInvalidBlock reports a block SubmitBlock cannot serialize (nil).
	ErrInvalidBlock = errors.New("rpcsource: invalid block")
)

// RPCError is a JSON-RPC error object returned by a node: the node is up
// and answered, but refused the call.
type RPCError struct {
	// Code is the node's error code (e.g. -10: in initial block download).
	Code int `json:"code"`
	// Message is the node's error message.
	Message string `json:"message"`
}

// Error implements error.
func (e *RPCError) Error() string {
	return fmt.Sprintf("rpc error %d: %s", e.Code, e.Message)
}

// JSON-RPC error codes of btcd and Bitcoin Core that this package branches
// on.
const (
	codeInWarmup        = -28 // Core is starting: loading the block index, verifying blocks
	codeNotConnected    = -9  // the node has no peers
	codeInitialDownload = -10 // the node is in initial block download
	codeDeserialization = -22 // submitblock: the block does not decode
	codeAlreadyInChain  = -27 // the block is already in the chain
)

// notSynced reports whether err is a node's refusal to build templates
// because it is not synced with the network.
func notSynced(err error) bool {
	var rerr *RPCError
	return errors.As(err, &rerr) && (rerr.Code == codeNotConnected || rerr.Code == codeInitialDownload)
}

// inWarmup reports whether err is Core's answer while it starts (RPC_IN_WARMUP).
func inWarmup(err error) bool {
	var rerr *RPCError
	return errors.As(err, &rerr) && rerr.Code == codeInWarmup
}
