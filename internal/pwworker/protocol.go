package pwworker

import (
	"bufio"
	"errors"
	"fmt"
)

// Operations of a request.
const (
	opHash   = "hash"
	opVerify = "verify"
)

// Error kinds of a reply: what the parent makes of a failed request.
const (
	// kindInvalid: the hasher refused the input (password.ErrInvalid).
	kindInvalid = "invalid"
	// kindProtocol: the worker could not read the request; the parent
	// answers it in-process.
	kindProtocol = "protocol"
)

// Bounds of the protocol. The parent hashes in-process what does not fit
// (and password.Argon2id refuses passwords over password.MaxLen anyway).
const (
	// maxInput bounds the password and the stored hash sent to the child.
	maxInput = 1024
	// maxLine bounds a request or reply line: two base64 inputs and JSON.
	maxLine = 8 << 10
)

// request is one line from the parent. Password and Stored are bytes, so
// that JSON carries any byte string exactly (base64), valid UTF-8 or not.
type request struct {
	ID       uint64 `json:"id"`
	Op       string `json:"op"`
	Stored   []byte `json:"stored,omitempty"`
	Password []byte `json:"password"`
}

// reply is one line from the child. Err is the hasher's error text (never
// containing the password); Kind classifies it.
type reply struct {
	ID     uint64 `json:"id"`
	OK     bool   `json:"ok,omitempty"`
	Rehash bool   `json:"rehash,omitempty"`
	Hash   string `json:"hash,omitempty"`
	Err    string `json:"err,omitempty"`
	Kind   string `json:"kind,omitempty"`
}

// errLineTooLong: a line exceeded maxLine; the rest of it was discarded.
var errLineTooLong = errors.New("line too long")

// readLine returns the next line of r without its newline, reading at most
// limit bytes of it; a longer line is consumed up to its newline and
// reported as errLineTooLong. The slice is valid until the next read. A
// last line without a newline is returned with a nil error; io.EOF comes
// after it.
func readLine(r *bufio.Reader, buf []byte, limit int) ([]byte, error) {
	buf = buf[:0]
	tooLong := false
	for {
		frag, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(frag) > limit+1 { // +1: the newline
				tooLong = true
				buf = buf[:0]
			} else {
				buf = append(buf, frag...)
			}
		}
		switch {
		case err == nil:
			if tooLong {
				return nil, errLineTooLong
			}
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case tooLong:
			return nil, fmt.Errorf("%w (then %w)", errLineTooLong, err)
		case len(buf) > 0:
			return buf, nil
		default:
			return nil, err
		}
	}
}
