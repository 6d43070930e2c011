package wire

import (
	"encoding/json"
	"fmt"
)

// The client side of the protocol, for the round trips of the decoders'
// tests only. The pool never sends requests, and the test miner
// (internal/miner) writes its own on purpose, so these stay out of the
// package: a client encoder here would have no caller but tests.

// encodeRequest encodes a client request {"id":id,"method":method,"params":params},
// as the pool's own test miner sends them. A json.RawMessage params must be a
// JSON array and is written verbatim; nil params are written as []; anything
// else goes through encoding/json and must encode to an array.
func encodeRequest(id json.RawMessage, method string, params any) ([]byte, error) {
	var body []byte
	switch p := params.(type) {
	case nil:
		body = []byte("[]")
	case json.RawMessage:
		body = p
	default:
		var err error
		if body, err = json.Marshal(params); err != nil {
			return nil, fmt.Errorf("stratum: encode %s params: %w", method, err)
		}
	}
	if len(body) == 0 || body[0] != '[' || !json.Valid(body) {
		return nil, fmt.Errorf("stratum: encode %s params: not a JSON array", method)
	}
	dst := make([]byte, 0, 40+len(id)+len(method)+len(body))
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, method)
	dst = append(dst, `,"params":`...)
	dst = append(dst, body...)
	return append(dst, "}\n"...), nil
}

// encodeSubmit encodes a mining.submit request the way cgminer does:
// lowercase hex, ntime, nonce and version bits as 8 digits, version bits
// only when HasVersionBits is set.
func encodeSubmit(id json.RawMessage, p SubmitParams) []byte {
	dst := make([]byte, 0, 128+len(id)+len(p.Worker)+len(p.JobID)+2*len(p.Extranonce2))
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"method":"mining.submit","params":[`...)
	dst = appendString(dst, p.Worker)
	dst = append(dst, ',')
	dst = appendString(dst, p.JobID)
	dst = append(dst, `,"`...)
	dst = appendHex(dst, p.Extranonce2)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, p.NTime)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, p.Nonce)
	dst = append(dst, '"')
	if p.HasVersionBits {
		dst = append(dst, `,"`...)
		dst = appendHex32(dst, p.VersionBits)
		dst = append(dst, '"')
	}
	return append(dst, "]}\n"...)
}
