package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// fastLines are request lines the fast path must take, beside the submits
// of minerLines.
var fastLines = []string{
	`{"id":1,"method":"mining.submit","params":["u.w","1a","0000000000000000","6650e3a2","1a2b3c4d"]}`,
	` { "params" : [ "u.w" , "1a" , "00000001" , "6650E3A2" , "1A2B3C4D" , null ] , "method" : "mining.submit" , "id" : "abc" } `,
	`{"id":-1.5e3,"method":"mining.submit","params":["","7","","00000000","ffffffff","1fffe000","extra",null]}`,
	`{"id":0,"method":"mining.extranonce.subscribe","params":[]}`,
	`{"id":7,"method":"x","params":[null]}`,
}

// slowOnlyLines must be left to the general decoder (which may accept or
// refuse them).
var slowOnlyLines = []string{
	`{"id":1,"method":"mining.submit","params":["u\u002ew","1a","00000000","6650e3a2","1a2b3c4d"]}`, // escape
	`{"ID":1,"method":"mining.submit","params":["u.w","1a","00000000","6650e3a2","1a2b3c4d"]}`,      // key case
	`{"id":1,"id":2,"method":"m","params":[]}`,                                                      // duplicate
	`{"id":1,"method":"m","params":[],"extra":true}`,                                                // other member
	`{"method":"m","params":[]}`,                                                                    // no id
	`{"id":null,"method":"m","params":[]}`,                                                          // null id
	`{"id":1,"method":"m","params":null}`,                                                           // null params
	`{"id":1,"method":"m","params":[1]}`,                                                            // number param
	`{"id":1,"method":"","params":[]}`,                                                              // empty method
	`{"id":1,"method":"m","params":[]} x`,                                                           // trailing
	`{"id":01,"method":"m","params":[]}`,                                                            // bad number
	"{\"id\":1,\"method\":\"m\",\"params\":[\"\xc3\xa9\"]}",                                         // non-ASCII
	`{"id":1,"method":"m","params":["a",]}`,                                                         // trailing comma
}

// slowOnlySubmits are submit params the fast path must leave alone: every
// one is an error or needs encoding/json.
var slowOnlySubmits = []string{
	`["u.w","1a","00000000","6650e3a2"]`,                 // too few
	`["u.w","","00000000","6650e3a2","1a2b3c4d"]`,        // empty job id
	`["u.w","1a","000","6650e3a2","1a2b3c4d"]`,           // odd extranonce2
	`["u.w","1a","zz","6650e3a2","1a2b3c4d"]`,            // not hex
	`["u.w","1a","00","6650e3a","1a2b3c4d"]`,             // short ntime
	`["u.w","1a","00","6650e3a2","1a2b3c4d","nothex!!"]`, // bad version bits
	`["u.w",null,"00","6650e3a2","1a2b3c4d"]`,            // null job id
	`["u.w","1a","00","6650e3a2","1a2b3c4d"] ]`,          // trailing
	`["u.w","1a","00","6650e3a2","1a2b3c4d",{}]`,         // object
	`["u.w","1a","00\u0030","6650e3a2","1a2b3c4d"]`,      // escape
}

func TestFastDecodeTakesPlainLines(t *testing.T) {
	var lines []string
	for _, ml := range minerLines {
		if bytes.Contains([]byte(ml.line), []byte(MethodSubmit)) {
			lines = append(lines, ml.line)
		}
	}
	lines = append(lines, fastLines...)
	for _, line := range lines {
		b := bytes.TrimRight([]byte(line), "\n")
		req, ok := decodeRequestFast(b)
		if !ok {
			t.Errorf("fast path refused %s", line)
			continue
		}
		checkSameRequest(t, b)
		if req.Method == MethodSubmit {
			if _, ok := decodeSubmitFast(req.Params); !ok {
				t.Errorf("fast submit path refused %s", req.Params)
			}
			checkSameSubmit(t, req.Params)
		}
	}
}

func TestFastDecodeLeavesTheRest(t *testing.T) {
	for _, line := range slowOnlyLines {
		if req, ok := decodeRequestFast([]byte(line)); ok {
			t.Errorf("fast path took %s: %+v", line, req)
		}
		checkSameRequest(t, []byte(line))
	}
	for _, params := range slowOnlySubmits {
		if p, ok := decodeSubmitFast([]byte(params)); ok {
			t.Errorf("fast submit path took %s: %+v", params, p)
		}
		checkSameSubmit(t, []byte(params))
	}
}

func TestFastDecodeDoesNotAlias(t *testing.T) {
	line := []byte(`{"id":12,"method":"mining.submit","params":["u.w","1a","00","6650e3a2","1a2b3c4d"]}`)
	req, err := DecodeRequest(line)
	if err != nil {
		t.Fatal(err)
	}
	want := string(req.Params)
	clear(line)
	req.ID = append(req.ID, '3') // must not run into Params
	if string(req.Params) != want || string(req.ID) != "123" {
		t.Fatalf("request aliases the line or its parts: id %q params %q", req.ID, req.Params)
	}
}

// checkSameRequest fails when DecodeRequest differs from the general
// decoder on line.
func checkSameRequest(t *testing.T, line []byte) {
	t.Helper()
	got, gotErr := DecodeRequest(line)
	want, wantErr := decodeRequestSlow(line)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, general decoder %v", line, gotErr, wantErr)
	}
	if !bytes.Equal(got.ID, want.ID) || got.Method != want.Method || !bytes.Equal(got.Params, want.Params) {
		t.Fatalf("%q: %+v, general decoder %+v", line, got, want)
	}
}

// checkSameSubmit fails when DecodeSubmit differs from the general decoder
// on params.
func checkSameSubmit(t *testing.T, params []byte) {
	t.Helper()
	got, gotErr := DecodeSubmit(params)
	want, wantErr := decodeSubmitSlow(params)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, general decoder %v", params, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %+v, general decoder %+v", params, got, want)
	}
}

// FuzzFastDecode checks that the fast paths agree with encoding/json on
// every input: as a request line and as submit params.
func FuzzFastDecode(f *testing.F) {
	for _, ml := range minerLines {
		f.Add([]byte(ml.line))
	}
	for _, l := range append(append(fastLines, slowOnlyLines...), slowOnlySubmits...) {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkSameRequest(t, b)
		checkSameSubmit(t, b)
		if req, err := DecodeRequest(b); err == nil {
			checkSameSubmit(t, req.Params)
		}
	})
}
