package wire

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// maxMethodLen bounds the method name; no Stratum method comes close.
const maxMethodLen = 64

// DecodeRequest decodes one request line (without its terminator). The line
// must be valid UTF-8 holding one JSON object nested at most MaxDepth deep,
// with "method" a non-empty string, "id" a number, a string, null or absent
// (absent is reported as null), and "params" an array, null or absent (both
// reported as "[]"). Other members are ignored. Member names match
// case-insensitively, as in encoding/json.
//
// A line with no "method" but a "result" or "error" member is a miner's
// reply to a request of the pool's (client.get_version, mining.ping): it
// yields ErrResponse, the one error that does not wrap ErrMalformed, and a
// Request holding only the reply's id (DecodeResponse reads the rest).
// Every other error wraps ErrMalformed. The returned Request does not alias
// line.
func DecodeRequest(line []byte) (Request, error) {
	if req, ok := decodeRequestFast(line); ok {
		return req, nil
	}
	return decodeRequestSlow(line)
}

// rawLine is the members of a line, request or reply, as encoding/json
// sees them.
type rawLine struct {
	ID     json.RawMessage `json:"id"`
	Method json.RawMessage `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// decodeRawLine checks that line is UTF-8 holding one JSON object nested at
// most MaxDepth deep and decodes its members. Every error wraps
// ErrMalformed.
func decodeRawLine(line []byte) (rawLine, error) {
	var raw rawLine
	if !utf8.Valid(line) {
		return raw, ErrInvalidUTF8
	}
	if err := checkShape(line); err != nil {
		return raw, err
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return raw, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return raw, nil
}

// decodeRequestSlow is DecodeRequest through encoding/json, for every line.
func decodeRequestSlow(line []byte) (Request, error) {
	raw, err := decodeRawLine(line)
	if err != nil {
		return Request{}, err
	}

	var req Request
	switch {
	case len(raw.ID) == 0:
		req.ID = json.RawMessage("null")
	case isScalarID(raw.ID):
		req.ID = raw.ID
	default:
		return Request{}, ErrBadID
	}

	if len(raw.Method) == 0 && (len(raw.Result) != 0 || len(raw.Error) != 0) {
		return req, ErrResponse
	}
	if len(raw.Method) == 0 || raw.Method[0] != '"' {
		return Request{}, ErrBadMethod
	}
	if err := json.Unmarshal(raw.Method, &req.Method); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrBadMethod, err)
	}
	if req.Method == "" || len(req.Method) > maxMethodLen {
		return Request{}, ErrBadMethod
	}

	switch {
	case len(raw.Params) == 0 || string(raw.Params) == "null":
		req.Params = json.RawMessage("[]")
	case raw.Params[0] == '[':
		req.Params = raw.Params
	default:
		return Request{}, ErrBadParams
	}
	return req, nil
}

// checkShape checks that line starts with a JSON object and that no bracket
// nests deeper than MaxDepth, before encoding/json sees it. It does not
// validate the JSON otherwise.
func checkShape(line []byte) error {
	i := 0
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	if i == len(line) || line[i] != '{' {
		return ErrNotObject
	}
	depth := 0
	inString, escaped := false, false
	for ; i < len(line); i++ {
		c := line[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > MaxDepth {
				return ErrTooDeep
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// isScalarID reports whether a raw JSON value (already known to be valid) is
// a number, a string or null.
func isScalarID(v json.RawMessage) bool {
	if len(v) == 0 {
		return false
	}
	c := v[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9') || string(v) == "null"
}

// validID reports whether id can be echoed verbatim in a reply.
func validID(id json.RawMessage) bool {
	return isScalarID(id) && json.Valid(id)
}
