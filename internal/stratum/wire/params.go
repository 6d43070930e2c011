package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// defaultRollMask is the miner's version-rolling mask when it sends none.
const defaultRollMask uint32 = 0xffffffff

// invalid returns an ErrInvalidParams error naming the field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidParams, field, fmt.Sprintf(format, args...))
}

// splitParams splits a params array into its raw elements.
func splitParams(params json.RawMessage) ([]json.RawMessage, error) {
	if len(params) == 0 {
		return nil, nil
	}
	var elems []json.RawMessage
	// An array of plain strings and nulls (subscribe, authorize) is split
	// without encoding/json; its elements alias params.
	if next, ok := plainArray(params, skipSpace(params, 0), &elems); ok && skipSpace(params, next) == len(params) {
		return elems, nil
	}
	elems = nil // not reused: its elements alias params
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
	// Printable ASCII without escapes (what miners send) needs no
	// encoding/json, whose decoder allocates about 300 bytes per call.
	if c, next, ok := plainString(v, 0); ok && next == len(v) {
		return string(c), nil
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

// shortHex32 parses 1 to 8 hex digits as a big-endian uint32, as if
// left-padded with zeros: NerdMiner_v2 (src/stratum.cpp, tx_mining_submit)
// prints the nonce with Arduino's String(nonce, HEX), which drops leading
// zeros, so one nonce in sixteen has fewer than 8 digits.
func shortHex32(s, field string) (uint32, error) {
	if len(s) == 0 || len(s) > 8 {
		return 0, invalid(field, "want 1 to 8 hex digits, got %d characters", len(s))
	}
	return hex32(strings.Repeat("0", 8-len(s))+s, field)
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
// All are strings. ntime and version_bits are exactly 8 hex digits, read
// big-endian as miners print them; nonce is 1 to 8 hex digits, read the
// same way (NerdMiner prints it without leading zeros); extranonce2 is even-length hex of at
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
	if p.Nonce, err = shortHex32(s, "nonce"); err != nil {
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
