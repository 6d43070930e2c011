package wire

import (
	"encoding/hex"
	"encoding/json"
)

// The fast path. Nearly every line a pool reads is a mining.submit in one
// plain shape: {"id":N,"method":"mining.submit","params":["w","j","e2",
// "nt","no"]}, with or without spaces. decodeRequestFast and
// decodeSubmitFast decode exactly that kind of input without encoding/json:
// members "id", "method" and "params" (lower case, each once, nothing
// else), strings of printable ASCII without escapes, a number or string id,
// params of such strings and nulls. On anything else they return false and
// the general decoder decides, so their results are always the general
// decoder's (the fuzz target FuzzFastDecode checks it). They only ever
// succeed: every error comes from the general decoder.

// plainString scans a JSON string of printable ASCII without escapes
// starting at b[i]; it returns its content and the index after it.
func plainString(b []byte, i int) (content []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// plainNumber scans a JSON number starting at b[i].
func plainNumber(b []byte, i int) (next int, ok bool) {
	j := i
	for j < len(b) && (isDigit(b[j]) || b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		j++
	}
	return j, j > i && isJSONNumber(string(b[i:j]))
}

// plainArray scans an array of plain strings and nulls starting at b[i];
// it returns the index after it. With elems set it appends each element
// (aliasing b) to *elems.
func plainArray(b []byte, i int, elems *[]json.RawMessage) (next int, ok bool) {
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
		start := i
		switch {
		case i < len(b) && b[i] == '"':
			if _, i, ok = plainString(b, i); !ok {
				return 0, false
			}
		case len(b)-i >= 4 && string(b[i:i+4]) == "null":
			i += 4
		default:
			return 0, false
		}
		if elems != nil {
			*elems = append(*elems, b[start:i:i])
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// decodeRequestFast decodes a request line of the plain shape; false
// leaves the line to decodeRequestSlow.
func decodeRequestFast(line []byte) (Request, bool) {
	var id, method, params []byte
	var haveID, haveMethod, haveParams bool
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return Request{}, false
	}
	i = skipSpace(line, i+1)
	for {
		key, j, ok := plainString(line, i)
		if !ok {
			return Request{}, false
		}
		if j = skipSpace(line, j); j >= len(line) || line[j] != ':' {
			return Request{}, false
		}
		j = skipSpace(line, j+1)
		start := j
		switch string(key) {
		case "id":
			if haveID {
				return Request{}, false
			}
			if j < len(line) && line[j] == '"' {
				_, j, ok = plainString(line, j)
			} else {
				j, ok = plainNumber(line, j)
			}
			if !ok {
				return Request{}, false
			}
			id, haveID = line[start:j], true
		case "method":
			if haveMethod {
				return Request{}, false
			}
			method, j, ok = plainString(line, j)
			haveMethod = true
		case "params":
			if haveParams {
				return Request{}, false
			}
			if j, ok = plainArray(line, j, nil); !ok {
				return Request{}, false
			}
			params, haveParams = line[start:j], true
		default:
			return Request{}, false
		}
		if !ok {
			return Request{}, false
		}
		if j = skipSpace(line, j); j >= len(line) {
			return Request{}, false
		}
		if line[j] == '}' {
			i = j + 1
			break
		}
		if line[j] != ',' {
			return Request{}, false
		}
		i = skipSpace(line, j+1)
	}
	if skipSpace(line, i) != len(line) || !haveID || !haveMethod || !haveParams ||
		len(method) == 0 || len(method) > maxMethodLen {
		return Request{}, false
	}
	// One allocation for the id and the params; full slice expressions
	// keep an append to one from overwriting the other.
	buf := make([]byte, len(id)+len(params))
	n := copy(buf, id)
	copy(buf[n:], params)
	return Request{ID: buf[:n:n], Method: methodName(method), Params: buf[n:]}, true
}

// methodName returns the method constant equal to b, or a new string.
func methodName(b []byte) string {
	switch string(b) {
	case MethodSubmit:
		return MethodSubmit
	case MethodSubscribe:
		return MethodSubscribe
	case MethodAuthorize:
		return MethodAuthorize
	case MethodConfigure:
		return MethodConfigure
	case MethodSuggestDifficulty:
		return MethodSuggestDifficulty
	case MethodExtranonceSubscribe:
		return MethodExtranonceSubscribe
	}
	return string(b)
}

// decodeSubmitFast decodes mining.submit params of the plain shape that
// pass every check of DecodeSubmit; false leaves them to decodeSubmitSlow.
func decodeSubmitFast(params []byte) (SubmitParams, bool) {
	var elems [6][]byte // contents of the first six elements; nil: null
	n := 0
	i := skipSpace(params, 0)
	if i >= len(params) || params[i] != '[' {
		return SubmitParams{}, false
	}
	i = skipSpace(params, i+1)
	for {
		var s []byte
		ok := true
		switch {
		case i < len(params) && params[i] == '"':
			s, i, ok = plainString(params, i)
		case len(params)-i >= 4 && string(params[i:i+4]) == "null":
			i += 4
		default:
			ok = false
		}
		if !ok {
			return SubmitParams{}, false
		}
		if n < len(elems) {
			elems[n] = s
		}
		n++
		if i = skipSpace(params, i); i >= len(params) {
			return SubmitParams{}, false
		}
		if params[i] == ']' {
			break
		}
		if params[i] != ',' {
			return SubmitParams{}, false
		}
		i = skipSpace(params, i+1)
	}
	if skipSpace(params, i+1) != len(params) || n < 5 {
		return SubmitParams{}, false
	}
	for _, e := range elems[:5] {
		if e == nil {
			return SubmitParams{}, false
		}
	}
	worker, job, en2 := elems[0], elems[1], elems[2]
	if len(worker) > MaxUserLen || len(job) == 0 || len(job) > MaxJobIDLen ||
		len(en2)%2 != 0 || len(en2) > 2*MaxExtranonce2Size {
		return SubmitParams{}, false
	}
	var p SubmitParams
	p.Extranonce2 = make([]byte, len(en2)/2)
	if _, err := hex.Decode(p.Extranonce2, en2); err != nil {
		return SubmitParams{}, false
	}
	var ok1, ok2, ok3 bool
	p.NTime, ok1 = plainHex32(elems[3])
	p.Nonce, ok2 = plainHex32(elems[4])
	ok3 = true
	if n > 5 && elems[5] != nil {
		p.VersionBits, ok3 = plainHex32(elems[5])
		p.HasVersionBits = true
	}
	if !ok1 || !ok2 || !ok3 {
		return SubmitParams{}, false
	}
	p.Worker, p.JobID = string(worker), string(job)
	return p, true
}

// plainHex32 is hex32 for the fast path: exactly 8 hex digits, big-endian.
func plainHex32(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	var v uint32
	for _, c := range b {
		d, ok := unhex(c)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint32(d)
	}
	return v, true
}
