package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// maxMethodLen bounds the method name; no Stratum method comes close.
const maxMethodLen = 64

// defaultRollMask is the miner's version-rolling mask when it sends none.
const defaultRollMask uint32 = 0xffffffff

// DecodeRequest decodes one request line (without its terminator). The line
// must be valid UTF-8 holding one JSON object nested at most MaxDepth deep,
// with "method" a non-empty string, "id" a number, a string, null or absent
// (absent is reported as null), and "params" an array, null or absent (both
// reported as "[]"). Other members are ignored. Member names match
// case-insensitively, as in encoding/json.
//
// Every error wraps ErrMalformed. The returned Request does not alias line.
func DecodeRequest(line []byte) (Request, error) {
	if req, ok := decodeRequestFast(line); ok {
		return req, nil
	}
	return decodeRequestSlow(line)
}

// decodeRequestSlow is DecodeRequest through encoding/json, for every line.
func decodeRequestSlow(line []byte) (Request, error) {
	if !utf8.Valid(line) {
		return Request{}, ErrInvalidUTF8
	}
	if err := checkShape(line); err != nil {
		return Request{}, err
	}
	var raw struct {
		ID     json.RawMessage `json:"id"`
		Method json.RawMessage `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return Request{}, fmt.Errorf("%w: %w", ErrMalformed, err)
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

// ---- fast path ----
//
// Nearly every line a pool reads is a mining.submit in one plain shape:
// {"id":N,"method":"mining.submit","params":["w","j","e2","nt","no"]}, with
// or without spaces. decodeRequestFast and decodeSubmitFast decode exactly
// that kind of input without encoding/json: members "id", "method" and
// "params" (lower case, each once, nothing else), strings of printable ASCII
// without escapes, a number or string id, params of such strings and
// nulls. On anything else they return false and the general decoder
// decides, so their results are always the general decoder's (the fuzz
// target FuzzFastDecode checks it). They only ever succeed: every error
// comes from the general decoder.

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
// it returns the index after it.
func plainArray(b []byte, i int) (next int, ok bool) {
	if i >= len(b) || b[i] != '[' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, true
	}
	for {
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
			if j, ok = plainArray(line, j); !ok {
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

// ---- params decoding ----

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidParams, field, fmt.Sprintf(format, args...))
}

// splitParams splits a params array into its raw elements.
func splitParams(params json.RawMessage) ([]json.RawMessage, error) {
	if len(params) == 0 {
		return nil, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(params, &elems); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	return elems, nil
}

// elem returns the i-th element, or nil when there are fewer elements.
func elem(elems []json.RawMessage, i int) json.RawMessage {
	if i < len(elems) {
		return elems[i]
	}
	return nil
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// jsonString decodes a required JSON string.
func jsonString(v json.RawMessage, field string) (string, error) {
	if len(v) == 0 {
		return "", invalid(field, "missing")
	}
	if v[0] != '"' {
		return "", invalid(field, "want a string, got %.16q", v)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrInvalidParams, field, err)
	}
	return s, nil
}

// optionalString decodes a JSON string that may be null or absent ("").
func optionalString(v json.RawMessage, field string) (string, error) {
	if isNull(v) {
		return "", nil
	}
	return jsonString(v, field)
}

// jsonNumber decodes a finite JSON number, or a string holding a JSON
// number (some firmwares quote numbers).
func jsonNumber(v json.RawMessage, field string) (float64, error) {
	if len(v) == 0 {
		return 0, invalid(field, "missing")
	}
	text := string(v)
	if v[0] == '"' {
		s, err := jsonString(v, field)
		if err != nil {
			return 0, err
		}
		if !isJSONNumber(s) {
			return 0, invalid(field, "want a number, got %.16q", s)
		}
		text = s
	} else if !isJSONNumber(text) {
		return 0, invalid(field, "want a number, got %.16q", v)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, invalid(field, "number out of range: %.24s", text)
	}
	return f, nil
}

// isJSONNumber reports whether s is exactly a number in JSON's grammar, which
// excludes NaN, Inf, hex floats, underscores and leading '+'.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// checkName checks a user or worker name: non-empty, at most MaxUserLen
// bytes, no control characters.
func checkName(s, field string) error {
	if s == "" {
		return invalid(field, "empty")
	}
	if len(s) > MaxUserLen {
		return invalid(field, "longer than %d bytes", MaxUserLen)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "control character")
		}
	}
	return nil
}

// hex32 parses exactly 8 hex digits as a big-endian uint32, the way miners
// print ntime, nonce and version bits ("%08x").
func hex32(s, field string) (uint32, error) {
	if len(s) != 8 {
		return 0, invalid(field, "want 8 hex digits, got %d characters", len(s))
	}
	var v uint32
	for i := 0; i < 8; i++ {
		d, ok := unhex(s[i])
		if !ok {
			return 0, invalid(field, "not hex: %.16q", s)
		}
		v = v<<4 | uint32(d)
	}
	return v, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// DecodeSubscribe decodes mining.subscribe params: [user_agent[, session_id[, ...]]].
// Both are optional and may be null; extra elements (host, port) are ignored.
// A user agent longer than MaxUserAgentLen is truncated; a session ID longer
// than MaxSessionIDLen is dropped (the miner simply gets a new session).
func DecodeSubscribe(params json.RawMessage) (SubscribeParams, error) {
	elems, err := splitParams(params)
	if err != nil {
		return SubscribeParams{}, err
	}
	var p SubscribeParams
	if p.UserAgent, err = optionalString(elem(elems, 0), "user agent"); err != nil {
		return SubscribeParams{}, err
	}
	p.UserAgent = truncateUTF8(p.UserAgent, MaxUserAgentLen)
	if p.SessionID, err = optionalString(elem(elems, 1), "session id"); err != nil {
		return SubscribeParams{}, err
	}
	if len(p.SessionID) > MaxSessionIDLen {
		p.SessionID = ""
	}
	return p, nil
}

// DecodeAuthorize decodes mining.authorize params: [user[, password[, ...]]].
// The user is required; the password may be absent or null.
func DecodeAuthorize(params json.RawMessage) (AuthorizeParams, error) {
	elems, err := splitParams(params)
	if err != nil {
		return AuthorizeParams{}, err
	}
	var p AuthorizeParams
	if p.User, err = jsonString(elem(elems, 0), "user"); err != nil {
		return AuthorizeParams{}, err
	}
	if err := checkName(p.User, "user"); err != nil {
		return AuthorizeParams{}, err
	}
	if p.Password, err = optionalString(elem(elems, 1), "password"); err != nil {
		return AuthorizeParams{}, err
	}
	if len(p.Password) > MaxPasswordLen {
		return AuthorizeParams{}, invalid("password", "longer than %d bytes", MaxPasswordLen)
	}
	return p, nil
}

// BIP 310 extension names and parameter keys.
const (
	ExtVersionRolling    = "version-rolling"
	ExtMinimumDifficulty = "minimum-difficulty"

	keyRollingMask        = "version-rolling.mask"
	keyRollingMinBitCount = "version-rolling.min-bit-count"
	keyMinimumDifficulty  = "minimum-difficulty.value"
)

// DecodeConfigure decodes BIP 310 mining.configure params:
// [[extension, ...], {"version-rolling.mask": "1fffe000",
// "version-rolling.min-bit-count": 2, "minimum-difficulty.value": 2048}].
// The object may be absent or null; unknown keys are ignored. The mask is 1
// to 8 hex digits (0xffffffff when absent); min-bit-count is 0..32;
// minimum-difficulty.value is a finite number >= 0, and HasMinimumDifficulty
// is set only when the extension is requested with a value.
func DecodeConfigure(params json.RawMessage) (ConfigureParams, error) {
	elems, err := splitParams(params)
	if err != nil {
		return ConfigureParams{}, err
	}
	exts := elem(elems, 0)
	if len(exts) == 0 || exts[0] != '[' {
		return ConfigureParams{}, invalid("extensions", "want an array of names")
	}
	var rawExts []json.RawMessage
	if err := json.Unmarshal(exts, &rawExts); err != nil {
		return ConfigureParams{}, fmt.Errorf("%w: extensions: %w", ErrInvalidParams, err)
	}
	if len(rawExts) > MaxExtensions {
		return ConfigureParams{}, invalid("extensions", "more than %d", MaxExtensions)
	}
	p := ConfigureParams{VersionRollingMask: defaultRollMask, Extensions: make([]string, 0, len(rawExts))}
	requestedMinDiff := false
	for _, re := range rawExts {
		name, err := jsonString(re, "extension")
		if err != nil {
			return ConfigureParams{}, err
		}
		if name == "" || len(name) > MaxExtensionLen {
			return ConfigureParams{}, invalid("extension", "empty or longer than %d bytes", MaxExtensionLen)
		}
		switch name {
		case ExtVersionRolling:
			p.HasVersionRolling = true
		case ExtMinimumDifficulty:
			requestedMinDiff = true
		}
		p.Extensions = append(p.Extensions, name)
	}

	opts := elem(elems, 1)
	if isNull(opts) {
		return p, nil
	}
	if opts[0] != '{' {
		return ConfigureParams{}, invalid("extension params", "want an object")
	}
	var kv map[string]json.RawMessage
	if err := json.Unmarshal(opts, &kv); err != nil {
		return ConfigureParams{}, fmt.Errorf("%w: extension params: %w", ErrInvalidParams, err)
	}
	if v, ok := kv[keyRollingMask]; ok {
		s, err := jsonString(v, keyRollingMask)
		if err != nil {
			return ConfigureParams{}, err
		}
		if len(s) == 0 || len(s) > 8 {
			return ConfigureParams{}, invalid(keyRollingMask, "want 1 to 8 hex digits")
		}
		mask, err := strconv.ParseUint(s, 16, 32)
		if err != nil || !isHex(s) {
			return ConfigureParams{}, invalid(keyRollingMask, "not hex: %.16q", s)
		}
		p.VersionRollingMask = uint32(mask)
	}
	if v, ok := kv[keyRollingMinBitCount]; ok {
		n, err := jsonNumber(v, keyRollingMinBitCount)
		if err != nil {
			return ConfigureParams{}, err
		}
		if n < 0 || n > 32 || n != math.Trunc(n) {
			return ConfigureParams{}, invalid(keyRollingMinBitCount, "want an integer 0..32")
		}
		p.VersionRollingMinBitCount = int(n)
	}
	if v, ok := kv[keyMinimumDifficulty]; ok {
		d, err := jsonNumber(v, keyMinimumDifficulty)
		if err != nil {
			return ConfigureParams{}, err
		}
		if d < 0 {
			return ConfigureParams{}, invalid(keyMinimumDifficulty, "negative")
		}
		p.MinimumDifficulty = d
		p.HasMinimumDifficulty = requestedMinDiff
	}
	return p, nil
}

// isHex reports whether s is made of hex digits only (strconv.ParseUint
// also accepts underscores in some forms).
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

// DecodeSuggestDifficulty decodes mining.suggest_difficulty params: [d] or,
// as some firmwares send, [[d]], where d is a number or a quoted number. The
// difficulty must be positive and finite; the session clamps it to its range.
func DecodeSuggestDifficulty(params json.RawMessage) (float64, error) {
	elems, err := splitParams(params)
	if err != nil {
		return 0, err
	}
	v := elem(elems, 0)
	if len(v) > 0 && v[0] == '[' {
		inner, err := splitParams(v)
		if err != nil {
			return 0, err
		}
		v = elem(inner, 0)
	}
	d, err := jsonNumber(v, "difficulty")
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, invalid("difficulty", "not positive")
	}
	return d, nil
}

// DecodeSubmit decodes mining.submit params:
// [worker, job_id, extranonce2, ntime, nonce[, version_bits[, ...]]].
// All are strings. ntime, nonce and version_bits are exactly 8 hex digits,
// read big-endian as miners print them; extranonce2 is even-length hex of at
// most MaxExtranonce2Size bytes; version_bits may be absent or null. Extra
// trailing elements are ignored.
func DecodeSubmit(params json.RawMessage) (SubmitParams, error) {
	if p, ok := decodeSubmitFast(params); ok {
		return p, nil
	}
	return decodeSubmitSlow(params)
}

// decodeSubmitSlow is DecodeSubmit through encoding/json, for all params.
func decodeSubmitSlow(params json.RawMessage) (SubmitParams, error) {
	elems, err := splitParams(params)
	if err != nil {
		return SubmitParams{}, err
	}
	if len(elems) < 5 {
		return SubmitParams{}, invalid("submit", "want at least 5 params, got %d", len(elems))
	}
	var p SubmitParams
	if p.Worker, err = jsonString(elems[0], "worker"); err != nil {
		return SubmitParams{}, err
	}
	if len(p.Worker) > MaxUserLen {
		return SubmitParams{}, invalid("worker", "longer than %d bytes", MaxUserLen)
	}
	if p.JobID, err = jsonString(elems[1], "job id"); err != nil {
		return SubmitParams{}, err
	}
	if p.JobID == "" || len(p.JobID) > MaxJobIDLen {
		return SubmitParams{}, invalid("job id", "empty or longer than %d bytes", MaxJobIDLen)
	}
	en2, err := jsonString(elems[2], "extranonce2")
	if err != nil {
		return SubmitParams{}, err
	}
	if len(en2)%2 != 0 || len(en2) > 2*MaxExtranonce2Size {
		return SubmitParams{}, invalid("extranonce2", "want even-length hex of at most %d bytes, got %d characters", MaxExtranonce2Size, len(en2))
	}
	if p.Extranonce2, err = hex.DecodeString(en2); err != nil {
		return SubmitParams{}, fmt.Errorf("%w: extranonce2: %w", ErrInvalidParams, err)
	}
	s, err := jsonString(elems[3], "ntime")
	if err != nil {
		return SubmitParams{}, err
	}
	if p.NTime, err = hex32(s, "ntime"); err != nil {
		return SubmitParams{}, err
	}
	if s, err = jsonString(elems[4], "nonce"); err != nil {
		return SubmitParams{}, err
	}
	if p.Nonce, err = hex32(s, "nonce"); err != nil {
		return SubmitParams{}, err
	}
	if v := elem(elems, 5); !isNull(v) {
		if s, err = jsonString(v, "version bits"); err != nil {
			return SubmitParams{}, err
		}
		if p.VersionBits, err = hex32(s, "version bits"); err != nil {
			return SubmitParams{}, err
		}
		p.HasVersionBits = true
	}
	return p, nil
}

// DecodeAuthorizeAdmin decodes mining.authorize_admin params: [password].
// The password is non-empty and at most MaxPasswordLen bytes.
func DecodeAuthorizeAdmin(params json.RawMessage) (string, error) {
	elems, err := splitParams(params)
	if err != nil {
		return "", err
	}
	pw, err := jsonString(elem(elems, 0), "password")
	if err != nil {
		return "", err
	}
	if pw == "" || len(pw) > MaxPasswordLen {
		return "", invalid("password", "empty or longer than %d bytes", MaxPasswordLen)
	}
	return pw, nil
}

// DecodeAddUser decodes mining.add_user params: [username, password[,
// address]]. The username follows the rules of an authorize user; the
// password is non-empty and at most MaxPasswordLen bytes; the payout address
// is optional (absent, null or "": none) and at most MaxAddressLen bytes.
func DecodeAddUser(params json.RawMessage) (AddUserParams, error) {
	elems, err := splitParams(params)
	if err != nil {
		return AddUserParams{}, err
	}
	var p AddUserParams
	if p.Username, err = jsonString(elem(elems, 0), "username"); err != nil {
		return AddUserParams{}, err
	}
	if err := checkName(p.Username, "username"); err != nil {
		return AddUserParams{}, err
	}
	if p.Password, err = jsonString(elem(elems, 1), "password"); err != nil {
		return AddUserParams{}, err
	}
	if p.Password == "" || len(p.Password) > MaxPasswordLen {
		return AddUserParams{}, invalid("password", "empty or longer than %d bytes", MaxPasswordLen)
	}
	if p.Address, err = optionalString(elem(elems, 2), "address"); err != nil {
		return AddUserParams{}, err
	}
	if len(p.Address) > MaxAddressLen {
		return AddUserParams{}, invalid("address", "longer than %d bytes", MaxAddressLen)
	}
	return p, nil
}

// ---- encoding ----

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

// EncodeRequest encodes a client request {"id":id,"method":method,"params":params},
// as the pool's own test miner sends them. A json.RawMessage params must be a
// JSON array and is written verbatim; nil params are written as []; anything
// else goes through encoding/json and must encode to an array.
func EncodeRequest(id json.RawMessage, method string, params any) ([]byte, error) {
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

// EncodeSubmit encodes a mining.submit request the way cgminer does:
// lowercase hex, ntime, nonce and version bits as 8 digits, version bits
// only when HasVersionBits is set.
func EncodeSubmit(id json.RawMessage, p SubmitParams) []byte {
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
