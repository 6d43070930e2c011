package wire

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// appendID appends id verbatim when it is a valid JSON number, string or
// null, and null otherwise.
func appendID(dst []byte, id json.RawMessage) []byte {
	if validID(id) {
		return append(dst, id...)
	}
	return append(dst, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD so
// the output is always valid JSON.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

func appendHex32(dst []byte, v uint32) []byte {
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0xf])
	}
	return dst
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// startNotification starts a server-to-client notification line up to the
// opening bracket of its params.
func startNotification(dst []byte, method string) []byte {
	dst = append(dst, `{"id":null,"method":"`...)
	dst = append(dst, method...)
	return append(dst, `","params":[`...)
}

func endNotification(dst []byte) []byte { return append(dst, "]}\n"...) }

// startResult starts a reply line up to the result value.
func startResult(dst []byte, id json.RawMessage) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	return append(dst, `,"result":`...)
}

func endResult(dst []byte) []byte { return append(dst, ",\"error\":null}\n"...) }

// EncodeResult encodes a successful reply {"id":id,"result":result,"error":null}.
// The id is echoed verbatim when it is a JSON number, string or null (null
// otherwise). A bool, nil or json.RawMessage result is written directly;
// anything else goes through encoding/json, whose error is returned.
func EncodeResult(id json.RawMessage, result any) ([]byte, error) {
	var body []byte
	switch r := result.(type) {
	case nil:
		body = []byte("null")
	case bool:
		if r {
			body = []byte("true")
		} else {
			body = []byte("false")
		}
	case json.RawMessage:
		if !json.Valid(r) {
			return nil, fmt.Errorf("stratum: encode result: invalid raw JSON")
		}
		body = r
	default:
		var err error
		if body, err = json.Marshal(result); err != nil {
			return nil, fmt.Errorf("stratum: encode result: %w", err)
		}
	}
	dst := make([]byte, 0, 48+len(id)+len(body))
	dst = startResult(dst, id)
	dst = append(dst, body...)
	return endResult(dst), nil
}

// EncodeError encodes an error reply
// {"id":id,"result":null,"error":[code,"msg",null]}.
func EncodeError(id json.RawMessage, code int, msg string) []byte {
	dst := make([]byte, 0, 64+len(id)+len(msg))
	dst = append(dst, `{"id":`...)
	dst = appendID(dst, id)
	dst = append(dst, `,"result":null,"error":[`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ',')
	dst = appendString(dst, msg)
	return append(dst, ",null]}\n"...)
}

// EncodeNotify encodes mining.notify with params [job_id, prevhash, coinb1,
// coinb2, [branch...], version, nbits, ntime, clean_jobs]. The hex strings
// are written as given (the job builder produces them in Stratum's byte
// orders). The line is meant to be built once per job and written to every
// session.
func EncodeNotify(jobID, prevHash, coinb1Hex, coinb2Hex string, branch []string, versionHex, bitsHex, ntimeHex string, clean bool) []byte {
	n := 80 + len(jobID) + len(prevHash) + len(coinb1Hex) + len(coinb2Hex) + len(versionHex) + len(bitsHex) + len(ntimeHex)
	for _, b := range branch {
		n += len(b) + 3
	}
	dst := make([]byte, 0, n)
	dst = startNotification(dst, MethodNotify)
	dst = appendString(dst, jobID)
	dst = append(dst, ',')
	dst = appendString(dst, prevHash)
	dst = append(dst, ',')
	dst = appendString(dst, coinb1Hex)
	dst = append(dst, ',')
	dst = appendString(dst, coinb2Hex)
	dst = append(dst, ",["...)
	for i, b := range branch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, b)
	}
	dst = append(dst, "],"...)
	dst = appendString(dst, versionHex)
	dst = append(dst, ',')
	dst = appendString(dst, bitsHex)
	dst = append(dst, ',')
	dst = appendString(dst, ntimeHex)
	dst = append(dst, ',')
	dst = appendBool(dst, clean)
	return endNotification(dst)
}

// notifyPrefix is how EncodeNotify starts every line, up to its job id.
const notifyPrefix = `{"id":null,"method":"mining.notify","params":["`

// NotifyAlias returns a copy of notify, a line EncodeNotify built for job
// id jobID, with job id jobID+suffix; everything else, clean_jobs
// included, is copied, not encoded again. It is how a pool sends a job
// again under another id. jobID and suffix must need no JSON escaping (hex
// and decimal ids do not); NotifyAlias returns nil when notify does not
// hold jobID where EncodeNotify writes it.
func NotifyAlias(notify []byte, jobID, suffix string) []byte {
	end := len(notifyPrefix) + len(jobID)
	if len(notify) <= end || string(notify[:len(notifyPrefix)]) != notifyPrefix ||
		string(notify[len(notifyPrefix):end]) != jobID || notify[end] != '"' {
		return nil
	}
	out := make([]byte, 0, len(notify)+len(suffix))
	out = append(out, notify[:end]...)
	out = append(out, suffix...)
	return append(out, notify[end:]...)
}

// AppendDifficulty appends d as a plain JSON number: integral values as
// integers ("1024", never "1.024e+03") and fractional values in decimal
// without an exponent ("0.0009765625"), the shortest that reads back as d.
func AppendDifficulty(dst []byte, d float64) []byte {
	return strconv.AppendFloat(dst, d, 'f', -1, 64)
}

// EncodeSetDifficulty encodes mining.set_difficulty with params [d], d
// written as by AppendDifficulty. It fails with ErrInvalidDifficulty unless
// d is positive and finite.
func EncodeSetDifficulty(d float64) ([]byte, error) {
	if !(d > 0) || math.IsInf(d, 0) {
		return nil, fmt.Errorf("%w: %v", ErrInvalidDifficulty, d)
	}
	dst := make([]byte, 0, 80)
	dst = startNotification(dst, MethodSetDifficulty)
	dst = AppendDifficulty(dst, d)
	return endNotification(dst), nil
}

// EncodeSetVersionMask encodes mining.set_version_mask with params
// ["1fffe000"] (8 lowercase hex digits).
func EncodeSetVersionMask(mask uint32) []byte {
	dst := make([]byte, 0, 72)
	dst = startNotification(dst, MethodSetVersionMask)
	dst = append(dst, '"')
	dst = appendHex32(dst, mask)
	dst = append(dst, '"')
	return endNotification(dst)
}

// EncodeSetExtranonce encodes mining.set_extranonce with params
// ["<extranonce1 hex>", extranonce2_size].
func EncodeSetExtranonce(en1 []byte, en2size int) []byte {
	dst := make([]byte, 0, 72+2*len(en1))
	dst = startNotification(dst, MethodSetExtranonce)
	dst = append(dst, '"')
	dst = appendHex(dst, en1)
	dst = append(dst, `",`...)
	dst = strconv.AppendInt(dst, int64(en2size), 10)
	return endNotification(dst)
}

// EncodeReconnect encodes client.reconnect. With an empty host it sends
// empty params, which every common miner reads as "reconnect to the same
// pool" (what a graceful shutdown sends; port and waitSeconds are then
// ignored). Otherwise it sends [host, "port", waitSeconds] with the port as a
// string: cgminer and its forks read only a string port, cpuminer reads
// either.
func EncodeReconnect(host string, port int, waitSeconds int) []byte {
	dst := make([]byte, 0, 72+len(host))
	dst = startNotification(dst, MethodReconnect)
	if host != "" {
		dst = appendString(dst, host)
		dst = append(dst, `,"`...)
		dst = strconv.AppendInt(dst, int64(port), 10)
		dst = append(dst, `",`...)
		dst = strconv.AppendInt(dst, int64(waitSeconds), 10)
	}
	return endNotification(dst)
}

// EncodeSubscribeResult encodes the reply to mining.subscribe:
// [[["mining.set_difficulty","<subID>"],["mining.notify","<subID>"]],
// "<extranonce1 hex>", extranonce2_size].
func EncodeSubscribeResult(id json.RawMessage, subID string, extranonce1 []byte, en2size int) []byte {
	dst := make([]byte, 0, 128+len(id)+2*len(subID)+2*len(extranonce1))
	dst = startResult(dst, id)
	dst = append(dst, `[[["mining.set_difficulty",`...)
	dst = appendString(dst, subID)
	dst = append(dst, `],["mining.notify",`...)
	dst = appendString(dst, subID)
	dst = append(dst, `]],"`...)
	dst = appendHex(dst, extranonce1)
	dst = append(dst, `",`...)
	dst = strconv.AppendInt(dst, int64(en2size), 10)
	dst = append(dst, ']')
	return endResult(dst)
}

// EncodeConfigureResult encodes the reply to mining.configure, e.g.
// {"version-rolling":true,"version-rolling.mask":"1fffe000","minimum-difficulty":true}.
// The mask is included only when version rolling is accepted.
func EncodeConfigureResult(id json.RawMessage, res ConfigureResult) []byte {
	dst := make([]byte, 0, 128+len(id))
	dst = startResult(dst, id)
	dst = append(dst, '{')
	sep := false
	if res.AnswerVersionRolling {
		dst = append(dst, `"version-rolling":`...)
		dst = appendBool(dst, res.VersionRolling)
		if res.VersionRolling {
			dst = append(dst, `,"version-rolling.mask":"`...)
			dst = appendHex32(dst, res.VersionRollingMask)
			dst = append(dst, '"')
		}
		sep = true
	}
	if res.AnswerMinimumDifficulty {
		if sep {
			dst = append(dst, ',')
		}
		dst = append(dst, `"minimum-difficulty":`...)
		dst = appendBool(dst, res.MinimumDifficulty)
	}
	dst = append(dst, '}')
	return endResult(dst)
}
