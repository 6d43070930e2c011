package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Methods the public miners speak besides the core set, and the admin call
// that moves miners to another pool.
const (
	// MethodPing is mining.ping. Sent by a miner, the pool answers "pong";
	// sent by the pool, cgminer-family miners (bmminer util.c send_pong)
	// answer {"result":"pong"}.
	MethodPing = "mining.ping"
	// MethodGetVersion is client.get_version, which the pool sends; the
	// miner answers with its name and version as the result.
	MethodGetVersion = "client.get_version"
	// MethodShowMessage is client.show_message [text], which the pool sends;
	// cgminer and bmminer log the text.
	MethodShowMessage = "client.show_message"
	// MethodReconnectMiners is the admin call mining.reconnect_miners
	// [host, port, wait_seconds, user?, message?].
	MethodReconnectMiners = "mining.reconnect_miners"
)

// Limits of the maintenance messages.
const (
	// MaxHostLen is the longest host name mining.reconnect_miners accepts
	// (a DNS name's limit).
	MaxHostLen = 253
	// MaxMessageLen is the longest client.show_message text.
	MaxMessageLen = 512
	// MaxReconnectWait is the longest wait, in seconds, a client.reconnect
	// may ask for.
	MaxReconnectWait = 3600
	// MaxResultLen is the longest reply result DecodeResponse keeps as text
	// (a client.get_version answer); longer ones are truncated.
	MaxResultLen = MaxUserAgentLen
)

// ErrResponse reports a line that is a reply to a request of the pool's
// rather than a request. It does not wrap ErrMalformed: the session reads
// the reply with DecodeResponse.
var ErrResponse = errors.New("stratum: a reply, not a request")

// Response is a miner's reply to a request of the pool's.
type Response struct {
	// ID is the reply's id, verbatim.
	ID json.RawMessage
	// RawResult is the result as sent (null when absent).
	RawResult json.RawMessage
	// Result is the result when it is a JSON string (truncated to
	// MaxResultLen bytes), else empty.
	Result string
	// OK is true when the reply carries a non-null result and a null or
	// absent error.
	OK bool
	// Code and Message are the error's, for an error reply
	// [code, "message", …] (Message truncated to MaxMessageLen bytes).
	Code    int
	Message string
}

// DecodeResponse decodes a reply line: {"id":…, "result":…, "error":…}.
// It fails with ErrMalformed for a line that is not such an object.
func DecodeResponse(line []byte) (Response, error) {
	raw, err := decodeRawLine(line)
	if err != nil {
		return Response{}, err
	}
	r := Response{ID: raw.ID, RawResult: raw.Result}
	if len(r.RawResult) == 0 {
		r.RawResult = json.RawMessage("null")
	}
	if len(r.ID) == 0 || !isScalarID(r.ID) {
		r.ID = json.RawMessage("null")
	}
	r.OK = !isNull(raw.Result) && isNull(raw.Error)
	var e []json.RawMessage
	if !isNull(raw.Error) && json.Unmarshal(raw.Error, &e) == nil && len(e) >= 2 {
		if c, err := intParam(e[0], "code"); err == nil {
			r.Code = c
		}
		if m, err := jsonString(e[1], "message"); err == nil {
			r.Message = truncateUTF8(m, MaxMessageLen)
		}
	}
	if len(raw.Result) > 0 && raw.Result[0] == '"' {
		var s string
		if json.Unmarshal(raw.Result, &s) == nil {
			r.Result = truncateUTF8(s, MaxResultLen)
		}
	}
	return r, nil
}

// ReconnectParams are the parameters of mining.reconnect_miners.
type ReconnectParams struct {
	// Host is where the miners go; empty sends client.reconnect with empty
	// params (reconnect to this pool). At most MaxHostLen bytes of
	// letters, digits, '.', '-', '_' and ':' (an IPv6 address).
	Host string
	// Port is 1..65535 when Host is set (a number or a numeric string).
	Port int
	// Wait is the seconds the miner waits before reconnecting,
	// 0..MaxReconnectWait.
	Wait int
	// User limits the call to the sessions with a worker of this user (the
	// part before the first '.'); empty: every miner.
	User string
	// Message, when set, is sent first as client.show_message (at most
	// MaxMessageLen bytes).
	Message string
}

// DecodeReconnectMiners decodes mining.reconnect_miners params:
// [host, port, wait_seconds, user?, message?]. Host may be "" or null (then
// port is ignored); port and wait may be numbers or numeric strings; user
// and message may be absent, null or "".
func DecodeReconnectMiners(params json.RawMessage) (ReconnectParams, error) {
	elems, err := splitParams(params)
	if err != nil {
		return ReconnectParams{}, err
	}
	if len(elems) < 1 {
		return ReconnectParams{}, invalid("reconnect", "want [host, port, wait, user?, message?]")
	}
	var p ReconnectParams
	if p.Host, err = optionalString(elems[0], "host"); err != nil {
		return ReconnectParams{}, err
	}
	if len(p.Host) > MaxHostLen || strings.IndexFunc(p.Host, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-_:", r))
	}) >= 0 {
		return ReconnectParams{}, invalid("host", "want a host name or address of at most %d bytes", MaxHostLen)
	}
	if p.Host != "" {
		port, err := intParam(elem(elems, 1), "port")
		if err != nil {
			return ReconnectParams{}, err
		}
		if port < 1 || port > 65535 {
			return ReconnectParams{}, invalid("port", "want 1..65535, got %d", port)
		}
		p.Port = port
	}
	if v := elem(elems, 2); !isNull(v) {
		if p.Wait, err = intParam(v, "wait"); err != nil {
			return ReconnectParams{}, err
		}
		if p.Wait < 0 || p.Wait > MaxReconnectWait {
			return ReconnectParams{}, invalid("wait", "want 0..%d seconds, got %d", MaxReconnectWait, p.Wait)
		}
	}
	if p.User, err = optionalString(elem(elems, 3), "user"); err != nil {
		return ReconnectParams{}, err
	}
	if p.User != "" {
		if err := checkName(p.User, "user"); err != nil {
			return ReconnectParams{}, err
		}
	}
	if p.Message, err = optionalString(elem(elems, 4), "message"); err != nil {
		return ReconnectParams{}, err
	}
	if len(p.Message) > MaxMessageLen {
		return ReconnectParams{}, invalid("message", "longer than %d bytes", MaxMessageLen)
	}
	return p, nil
}

// intParam decodes a whole number given as a JSON number or a string.
func intParam(v json.RawMessage, field string) (int, error) {
	f, err := jsonNumber(v, field)
	if err != nil {
		return 0, err
	}
	if f != float64(int(f)) || f < -1<<31 || f > 1<<31 {
		return 0, invalid(field, "want a whole number")
	}
	return int(f), nil
}

// EncodeShowMessage encodes client.show_message with params [msg].
func EncodeShowMessage(msg string) []byte {
	dst := make([]byte, 0, 64+len(msg))
	dst = startNotification(dst, MethodShowMessage)
	dst = appendString(dst, msg)
	return endNotification(dst)
}

// EncodeGetVersion encodes the request client.get_version with a numeric
// id and empty params. The id must be a positive number: cgminer answers
// only a non-zero integer id (util.c send_version).
func EncodeGetVersion(id int) []byte {
	dst := make([]byte, 0, 64)
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, `,"method":"`...)
	dst = append(dst, MethodGetVersion...)
	return append(dst, "\",\"params\":[]}\n"...)
}

// EncodeAdminRequest encodes a request of the pool's admin client
// (stratumd reconnect): {"id":id,"method":method,"params":[…]}. The
// params go through encoding/json, whose error is returned. Miners'
// requests have no encoder here: see the package doc.
func EncodeAdminRequest(id int, method string, params []any) ([]byte, error) {
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("stratum: encode %s: %w", method, err)
	}
	dst := make([]byte, 0, 48+len(method)+len(p))
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, method)
	dst = append(dst, `,"params":`...)
	dst = append(dst, p...)
	return append(dst, "}\n"...), nil
}
