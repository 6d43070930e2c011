package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Replies as the public miners write them: bmminer-mix util.c
// (9ad5588bae88028dd5174b3e24de823d1463989f) send_version and send_pong,
// bfgminer's stratum_show_message error.
func TestDecodeResponse(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Response
	}{
		{`{"id": 1048576, "result": "bmminer/2.0.0", "error": null}`, Response{ID: json.RawMessage("1048576"), RawResult: json.RawMessage(`"bmminer/2.0.0"`), Result: "bmminer/2.0.0", OK: true}},
		{`{"id": 7, "result": "pong", "error": null}`, Response{ID: json.RawMessage("7"), RawResult: json.RawMessage(`"pong"`), Result: "pong", OK: true}},
		{`{"id":2,"result":3,"error":null}`, Response{ID: json.RawMessage("2"), RawResult: json.RawMessage("3"), OK: true}},
		{`{"id": "x", "result": null, "error": [-1, "Failed to parse message", null]}`, Response{ID: json.RawMessage(`"x"`), RawResult: json.RawMessage("null"), Code: -1, Message: "Failed to parse message"}},
		{`{"error":[24,"wrong admin password",null]}`, Response{ID: json.RawMessage("null"), RawResult: json.RawMessage("null"), Code: 24, Message: "wrong admin password"}},
		{`{"id":{"a":1},"result":"` + strings.Repeat("v", 300) + `"}`, Response{ID: json.RawMessage("null"), RawResult: json.RawMessage(`"` + strings.Repeat("v", 300) + `"`), Result: strings.Repeat("v", MaxResultLen), OK: true}},
	} {
		got, err := DecodeResponse([]byte(tc.line))
		if err != nil || string(got.ID) != string(tc.want.ID) || string(got.RawResult) != string(tc.want.RawResult) ||
			got.Result != tc.want.Result || got.OK != tc.want.OK || got.Code != tc.want.Code || got.Message != tc.want.Message {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", tc.line, got, err, tc.want)
		}
		if strings.Contains(tc.line, `"id":{`) {
			continue // DecodeRequest checks the id first: malformed there
		}
		if _, err := DecodeRequest([]byte(tc.line)); !errors.Is(err, ErrResponse) || errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeRequest(%s) = %v, want ErrResponse (not malformed)", tc.line, err)
		}
	}
	for _, bad := range []string{`[1]`, `{"id":1,"result":`, "\xff", `{"id":1}`} {
		if _, err := DecodeResponse([]byte(bad)); bad != `{"id":1}` && !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeResponse(%q) = %v, want ErrMalformed", bad, err)
		}
		if _, err := DecodeRequest([]byte(bad)); errors.Is(err, ErrResponse) {
			t.Errorf("DecodeRequest(%q) took it for a reply", bad)
		}
	}
}

func TestDecodeReconnectMiners(t *testing.T) {
	for _, tc := range []struct {
		params string
		want   ReconnectParams
	}{
		{`["backup.example", 3334, 5]`, ReconnectParams{Host: "backup.example", Port: 3334, Wait: 5}},
		{`["backup.example", "3334", "5", "alice", "moving"]`, ReconnectParams{Host: "backup.example", Port: 3334, Wait: 5, User: "alice", Message: "moving"}},
		{`["2001:db8::1", 3333]`, ReconnectParams{Host: "2001:db8::1", Port: 3333}},
		{`["", null, 0]`, ReconnectParams{}},
		{`[null]`, ReconnectParams{}},
		{`["", 99999, null, null, ""]`, ReconnectParams{}}, // no host: the port is not read
	} {
		got, err := DecodeReconnectMiners(json.RawMessage(tc.params))
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.params, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		`[]`, `{}`, `[1]`, `["h"]`, `["h", 0]`, `["h", 65536]`, `["h", 1.5]`, `["h", "x"]`, `["h", 1, -1]`,
		`["h", 1, 3601]`, `["h", 1, 0, 5]`, `["h", 1, 0, "a\u0001"]`, `["h", 1, 0, "", 7]`,
		`["h", 1, 0, "", "` + strings.Repeat("m", MaxMessageLen+1) + `"]`, `["` + strings.Repeat("h", MaxHostLen+1) + `", 1]`,
		`["h/x", 1]`, `["h x", 1]`, `["h\"", 1]`,
	} {
		if _, err := DecodeReconnectMiners(json.RawMessage(bad)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: %v, want ErrInvalidParams", bad, err)
		}
	}
}

func TestMaintenanceEncoders(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{string(EncodeShowMessage(`maintenance at 02:00 "UTC"`)), `{"id":null,"method":"client.show_message","params":["maintenance at 02:00 \"UTC\""]}` + "\n"},
		{string(EncodeGetVersion(1 << 20)), `{"id":1048576,"method":"client.get_version","params":[]}` + "\n"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
	b, err := EncodeAdminRequest(2, MethodReconnectMiners, []any{"backup.example", 3334, 5, "alice", nil})
	if err != nil {
		t.Fatal(err)
	}
	req, err := DecodeRequest([]byte(strings.TrimSuffix(string(b), "\n")))
	if err != nil || req.Method != MethodReconnectMiners || string(req.ID) != "2" {
		t.Fatalf("%s: %+v, %v", b, req, err)
	}
	if p, err := DecodeReconnectMiners(req.Params); err != nil || p != (ReconnectParams{Host: "backup.example", Port: 3334, Wait: 5, User: "alice"}) {
		t.Errorf("round trip: %+v, %v", p, err)
	}
	if _, err := EncodeAdminRequest(1, "x", []any{func() {}}); err == nil {
		t.Error("an unencodable param encoded")
	}
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"id": 1048576, "result": "bmminer/2.0.0", "error": null}`))
	f.Add([]byte(`{"id":1,"result":null,"error":[24,"x",null]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeResponse(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !validID(r.ID) || !json.Valid(r.RawResult) || len(r.Result) > MaxResultLen || len(r.Message) > MaxMessageLen {
			t.Fatalf("bad response %+v", r)
		}
	})
}
