package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// minerLines are requests as real miners send them, written from each
// miner's source (format strings and JSON builders), one group per miner.
var minerLines = []struct{ miner, line string }{
	// cpuminer 2.5.1 (pooler): util.c stratum_subscribe / stratum_authorize / submit_upstream_work.
	{"cpuminer", `{"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.5.1"]}`},
	{"cpuminer", `{"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.5.1", "f8002c90"]}`},
	{"cpuminer", `{"id": 2, "method": "mining.authorize", "params": ["bcrt1qexampleaddr.worker1", "x"]}`},
	{"cpuminer", `{"method": "mining.submit", "params": ["bcrt1qexampleaddr.worker1", "6a", "00000000", "6650e3a2", "1a2b3c4d"], "id":4}`},
	// cgminer 4.x: util.c initiate_stratum / auth_stratum / cgminer.c submit.
	{"cgminer", `{"id": 0, "method": "mining.subscribe", "params": ["cgminer/4.12.0"]}`},
	{"cgminer", `{"id": 2, "method": "mining.authorize", "params": ["user.rig1", "d=4096"]}`},
	{"cgminer", `{"id": 3, "method": "mining.extranonce.subscribe", "params": []}`},
	{"cgminer", `{"params": ["user.rig1", "1f", "0100000000000000", "6650e3a2", "a3f1c27e"], "id": 5, "method": "mining.submit"}`},
	// bfgminer 5.5: subscribe, then mining.capabilities (unknown to us, must still decode).
	{"bfgminer", `{"id": 0, "method": "mining.subscribe", "params": ["bfgminer/5.5.0"]}`},
	{"bfgminer", `{"id":null,"method":"mining.capabilities","params":[{"notify":[],"set_difficulty":{},"set_goal":[],"suggested_target":"0000000000000000000000000000000000000000000000000000ffff00000000"}]}`},
	{"bfgminer", `{"params": ["user", "2a", "00000001", "6650e3a2", "00c0ffee"], "id": 6, "method": "mining.submit"}`},
	// ESP-Miner (BitAxe): components/stratum/stratum_api.c.
	{"esp-miner", `{"id": 1, "method": "mining.subscribe", "params": ["bitaxe/BM1366/v2.4.0"]}` + "\n"},
	{"esp-miner", `{"id": 2, "method": "mining.configure", "params": [["version-rolling"], {"version-rolling.mask": "ffffffff"}]}`},
	{"esp-miner", `{"id": 3, "method": "mining.authorize", "params": ["bc1qexample.bitaxe", "x"]}`},
	{"esp-miner", `{"id": 4, "method": "mining.suggest_difficulty", "params": [1000]}`},
	{"esp-miner", `{"id": 5, "method": "mining.submit", "params": ["bc1qexample.bitaxe", "18a5", "0a000000", "6650e3a2", "4c7b1d29", "1e5ca000"]}`},
	// Braiins OS (bosminer): compact JSON, BIP 310 with min-bit-count.
	{"braiins", `{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":16}]}`},
	{"braiins", `{"id":2,"method":"mining.subscribe","params":["bosminer/plus-22.08.1"]}`},
	{"braiins", `{"id":3,"method":"mining.authorize","params":["user.s9","x"]}`},
	{"braiins", `{"id":4,"method":"mining.submit","params":["user.s9","2f","00000001","6650e3a2","7a8f9b02","00400000"]}`},
	// NiceHash (NHM/excavator style): null session id, extranonce.subscribe with no params.
	{"nicehash", `{"id": 1, "method": "mining.subscribe", "params": ["NiceHash/1.0.0", null]}`},
	{"nicehash", `{"id": 2, "method": "mining.authorize", "params": ["3Nm1.rig", "x"]}`},
	{"nicehash", `{"id": 3, "method": "mining.extranonce.subscribe"}`},
	{"nicehash", `{"id": 4, "method": "mining.submit", "params": ["3Nm1.rig", "00000000a0e4d6b6", "00000000", "6650e3a2", "9f0c1e4b"]}`},
	// Antminer bmminer: configure with mask and min-bit-count 2, subscribe with host and port.
	{"bmminer", `{"id": 1, "method": "mining.configure", "params": [["version-rolling"], {"version-rolling.mask": "1fffe000", "version-rolling.min-bit-count": 2}]}`},
	{"bmminer", `{"id": 2, "method": "mining.subscribe", "params": ["bmminer/2.0.0", "", "stratum.example.com", "3333"]}`},
}

func TestDecodeMinerLines(t *testing.T) {
	for _, ml := range minerLines {
		line := bytes.TrimRight([]byte(ml.line), "\n")
		req, err := DecodeRequest(line)
		if err != nil {
			t.Errorf("%s: %s: %v", ml.miner, ml.line, err)
			continue
		}
		switch req.Method {
		case MethodSubscribe:
			_, err = DecodeSubscribe(req.Params)
		case MethodAuthorize:
			_, err = DecodeAuthorize(req.Params)
		case MethodConfigure:
			_, err = DecodeConfigure(req.Params)
		case MethodSuggestDifficulty:
			_, err = DecodeSuggestDifficulty(req.Params)
		case MethodSubmit:
			_, err = DecodeSubmit(req.Params)
		case MethodExtranonceSubscribe, "mining.capabilities":
		default:
			t.Errorf("%s: unexpected method %q", ml.miner, req.Method)
		}
		if err != nil {
			t.Errorf("%s: %s: params: %v", ml.miner, ml.line, err)
		}
	}
}

func TestDecodeMinerValues(t *testing.T) {
	req, err := DecodeRequest([]byte(minerLines[15].line))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSubmit(req.Params)
	if err != nil {
		t.Fatal(err)
	}
	want := SubmitParams{Worker: "bc1qexample.bitaxe", JobID: "18a5", Extranonce2: []byte{0x0a, 0, 0, 0},
		NTime: 0x6650e3a2, Nonce: 0x4c7b1d29, VersionBits: 0x1e5ca000, HasVersionBits: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ESP-Miner submit = %+v, want %+v", got, want)
	}
	if string(req.ID) != "5" {
		t.Errorf("id = %s, want 5", req.ID)
	}

	req, _ = DecodeRequest([]byte(minerLines[16].line))
	cfg, err := DecodeConfigure(req.Params)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := ConfigureParams{Extensions: []string{"version-rolling"}, HasVersionRolling: true,
		VersionRollingMask: 0x1fffe000, VersionRollingMinBitCount: 16}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Errorf("Braiins configure = %+v, want %+v", cfg, wantCfg)
	}

	req, _ = DecodeRequest([]byte(minerLines[20].line))
	sub, err := DecodeSubscribe(req.Params)
	if err != nil || sub != (SubscribeParams{UserAgent: "NiceHash/1.0.0"}) {
		t.Errorf("NiceHash subscribe = %+v, %v", sub, err)
	}
	req, _ = DecodeRequest([]byte(minerLines[22].line))
	if string(req.Params) != "[]" {
		t.Errorf("absent params decoded as %s, want []", req.Params)
	}
}

func TestDecodeRequest(t *testing.T) {
	deep := `{"id":1,"method":"m","params":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`
	okDeep := `{"id":1,"method":"m","params":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`
	good := []struct {
		line, id, method, params string
	}{
		{`{"id":1,"method":"mining.subscribe","params":[]}`, "1", "mining.subscribe", "[]"},
		{`{"id":"abc","method":"x","params":[1,"a",null]}`, `"abc"`, "x", `[1,"a",null]`},
		{`{"id":null,"method":"x","params":null}`, "null", "x", "[]"},
		{`{"method":"x"}`, "null", "x", "[]"},
		{`  {"id": -1.5e3 , "method" : "x" , "params" : [ ] }  `, "-1.5e3", "x", "[ ]"},
		{`{"id":18446744073709551616123,"method":"x","params":[]}`, "18446744073709551616123", "x", "[]"},
		{`{"id":1,"method":"x","params":[],"jsonrpc":"2.0","extra":{"a":[1]}}`, "1", "x", "[]"},
		{`{"id":1,"method":"\u006d","params":[]}`, "1", "m", "[]"},
		{`{"id":1,"method":"x","params":["é✓"]}`, "1", "x", `["é✓"]`},
		{okDeep, "1", "m", strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)},
		{`{"id":1,"method":"x","params":["[[[[[[[[[[[[[[[["]}`, "1", "x", `["[[[[[[[[[[[[[[[["]`},
	}
	for _, tc := range good {
		req, err := DecodeRequest([]byte(tc.line))
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if string(req.ID) != tc.id || req.Method != tc.method || string(req.Params) != tc.params {
			t.Errorf("%s: got id %s method %q params %s", tc.line, req.ID, req.Method, req.Params)
		}
	}

	bad := []struct {
		line string
		want error
	}{
		{``, ErrNotObject},
		{`   `, ErrNotObject},
		{`[]`, ErrNotObject},
		{`null`, ErrNotObject},
		{`"mining.subscribe"`, ErrNotObject},
		{`123`, ErrNotObject},
		{"\xef\xbb\xbf{\"id\":1,\"method\":\"x\"}", ErrNotObject}, // BOM
		{`{"id":1,"method":"x","params":[]`, ErrMalformed},
		{`{"id":1,"method":"x","params":[]} {}`, ErrMalformed},
		{`{"id":1,"method":"x","params":[]}x`, ErrMalformed},
		{`{"id":1,"method":"x",}`, ErrMalformed},
		{`{"id":1,'method':"x"}`, ErrMalformed},
		{`{"id":NaN,"method":"x"}`, ErrMalformed},
		{`{"id":01,"method":"x"}`, ErrMalformed},
		{"{\"id\":1,\"method\":\"\xff\"}", ErrInvalidUTF8},
		{"{\"id\":1,\"method\":\"x\",\"params\":[\"\xc3\x28\"]}", ErrInvalidUTF8},
		{"{\"id\":1,\"method\":\"x\",\"params\":[\"\xed\xa0\x80\"]}", ErrInvalidUTF8}, // surrogate half
		{deep, ErrTooDeep},
		{strings.Repeat("[", 100000), ErrNotObject},
		{"{" + strings.Repeat(`"a":[`, 100000), ErrTooDeep},
		{`{"id":{},"method":"x","params":[]}`, ErrBadID},
		{`{"id":[1],"method":"x","params":[]}`, ErrBadID},
		{`{"id":true,"method":"x","params":[]}`, ErrBadID},
		{`{"id":1,"params":[]}`, ErrBadMethod},
		{`{"id":1,"method":null,"params":[]}`, ErrBadMethod},
		{`{"id":1,"method":1,"params":[]}`, ErrBadMethod},
		{`{"id":1,"method":["mining.submit"],"params":[]}`, ErrBadMethod},
		{`{"id":1,"method":"","params":[]}`, ErrBadMethod},
		{`{"id":1,"method":"` + strings.Repeat("m", maxMethodLen+1) + `","params":[]}`, ErrBadMethod},
		{`{"id":1,"method":"x","params":{}}`, ErrBadParams},
		{`{"id":1,"method":"x","params":"a"}`, ErrBadParams},
		{`{"id":1,"method":"x","params":1}`, ErrBadParams},
		{`{"id":1,"method":"x","params":true}`, ErrBadParams},
	}
	for _, tc := range bad {
		_, err := DecodeRequest([]byte(tc.line))
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%.60q: err %v, want %v", tc.line, err, tc.want)
		}
	}
}

func TestDecodeRequestDoesNotAlias(t *testing.T) {
	line := []byte(`{"id":"abc","method":"x","params":["p"]}`)
	req, err := DecodeRequest(line)
	if err != nil {
		t.Fatal(err)
	}
	for i := range line {
		line[i] = 'Z'
	}
	if string(req.ID) != `"abc"` || string(req.Params) != `["p"]` {
		t.Fatalf("request aliases the line: %s %s", req.ID, req.Params)
	}
}

func TestDecodeSubmit(t *testing.T) {
	long := func(n int) string { return `"` + strings.Repeat("a", n) + `"` }
	good := []struct {
		params string
		want   SubmitParams
	}{
		{`["w","j","0a0b","00000001","FFFFFFFF"]`, SubmitParams{Worker: "w", JobID: "j", Extranonce2: []byte{10, 11}, NTime: 1, Nonce: 0xffffffff}},
		{`["w","j","","00000000","00000000"]`, SubmitParams{Worker: "w", JobID: "j", Extranonce2: []byte{}}},
		// NerdMiner_v2 prints the nonce without leading zeros.
		{`["w","j","00","00000000","abc"]`, SubmitParams{Worker: "w", JobID: "j", Extranonce2: []byte{0}, Nonce: 0xabc}},
		{`["w","j","00","00000000","1234567"]`, SubmitParams{Worker: "w", JobID: "j", Extranonce2: []byte{0}, Nonce: 0x1234567}},
		{`["","j","00","00000000","00000000",null]`, SubmitParams{JobID: "j", Extranonce2: []byte{0}}},
		{`["w","j","00","00000000","00000000","1fffe000",1,{"x":[]}]`, SubmitParams{Worker: "w", JobID: "j", Extranonce2: []byte{0}, VersionBits: 0x1fffe000, HasVersionBits: true}},
		{`["w","j","` + strings.Repeat("ff", MaxExtranonce2Size) + `","00000000","00000000"]`, SubmitParams{Worker: "w", JobID: "j", Extranonce2: bytes.Repeat([]byte{0xff}, MaxExtranonce2Size)}},
		{`["w",` + long(MaxJobIDLen) + `,"00","00000000","00000000"]`, SubmitParams{Worker: "w", JobID: strings.Repeat("a", MaxJobIDLen), Extranonce2: []byte{0}}},
	}
	for _, tc := range good {
		got, err := DecodeSubmit(json.RawMessage(tc.params))
		if err != nil {
			t.Errorf("%s: %v", tc.params, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.params, got, tc.want)
		}
	}

	bad := []string{
		`[]`, `null`, `{}`, `"w"`, `[`, `["w","j","00","00000000"]`,
		// worker
		`[1,"j","00","00000000","00000000"]`, `[null,"j","00","00000000","00000000"]`,
		`[["w"],"j","00","00000000","00000000"]`, `[` + long(MaxUserLen+1) + `,"j","00","00000000","00000000"]`,
		// job id
		`["w",1,"00","00000000","00000000"]`, `["w","","00","00000000","00000000"]`,
		`["w",null,"00","00000000","00000000"]`, `["w",` + long(MaxJobIDLen+1) + `,"00","00000000","00000000"]`,
		// extranonce2
		`["w","j",0,"00000000","00000000"]`, `["w","j","0","00000000","00000000"]`,
		`["w","j","zz","00000000","00000000"]`, `["w","j","0x00","00000000","00000000"]`,
		`["w","j","` + strings.Repeat("00", MaxExtranonce2Size+1) + `","00000000","00000000"]`,
		`["w","j",null,"00000000","00000000"]`, `["w","j",["00"],"00000000","00000000"]`,
		`["w","j","-1","00000000","00000000"]`,
		// ntime
		`["w","j","00",1700000000,"00000000"]`, `["w","j","00","0000000","00000000"]`,
		`["w","j","00","000000000","00000000"]`, `["w","j","00","0000000g","00000000"]`,
		`["w","j","00","-0000001","00000000"]`, `["w","j","00","NaN","00000000"]`,
		`["w","j","00","0x000001","00000000"]`, `["w","j","00"," 0000001","00000000"]`,
		`["w","j","00",null,"00000000"]`, `["w","j","00","","00000000"]`,
		// nonce
		`["w","j","00","00000000",12345]`, `["w","j","00","00000000",""]`,
		`["w","j","00","00000000","123456789"]`, `["w","j","00","00000000","12 4567"]`, `["w","j","00","00000000","Infinity"]`,
		`["w","j","00","00000000",null]`, `["w","j","00","00000000",{}]`,
		// version bits
		`["w","j","00","00000000","00000000",536870912]`, `["w","j","00","00000000","00000000","1fffe"]`,
		`["w","j","00","00000000","00000000","1fffe0000"]`, `["w","j","00","00000000","00000000","xyzxyzxy"]`,
		`["w","j","00","00000000","00000000",true]`, `["w","j","00","00000000","00000000",["1fffe000"]]`,
	}
	for _, params := range bad {
		if got, err := DecodeSubmit(json.RawMessage(params)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%.80s: got %+v, %v; want ErrInvalidParams", params, got, err)
		}
	}
}

func TestDecodeSubscribe(t *testing.T) {
	good := []struct {
		params string
		want   SubscribeParams
	}{
		{`[]`, SubscribeParams{}},
		{`[null]`, SubscribeParams{}},
		{`["cgminer/4.12.0"]`, SubscribeParams{UserAgent: "cgminer/4.12.0"}},
		{`["a","sess1"]`, SubscribeParams{UserAgent: "a", SessionID: "sess1"}},
		{`["a",null,"host",3333]`, SubscribeParams{UserAgent: "a"}},
		{`["` + strings.Repeat("u", 200) + `"]`, SubscribeParams{UserAgent: strings.Repeat("u", MaxUserAgentLen)}},
		{`["` + strings.Repeat("é", 100) + `"]`, SubscribeParams{UserAgent: strings.Repeat("é", MaxUserAgentLen/2)}},
		{`["a","` + strings.Repeat("s", MaxSessionIDLen+1) + `"]`, SubscribeParams{UserAgent: "a"}},
	}
	for _, tc := range good {
		got, err := DecodeSubscribe(json.RawMessage(tc.params))
		if err != nil || got != tc.want {
			t.Errorf("%.60s: got %+v, %v; want %+v", tc.params, got, err, tc.want)
		}
	}
	for _, params := range []string{`{}`, `[1]`, `[["a"]]`, `[{"ua":"a"}]`, `["a",1]`, `["a",{}]`, `[true]`, `"a"`} {
		if _, err := DecodeSubscribe(json.RawMessage(params)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: err %v, want ErrInvalidParams", params, err)
		}
	}
}

func TestDecodeAuthorize(t *testing.T) {
	good := []struct {
		params string
		want   AuthorizeParams
	}{
		{`["u"]`, AuthorizeParams{User: "u"}},
		{`["u",null]`, AuthorizeParams{User: "u"}},
		{`["u.w","x"]`, AuthorizeParams{User: "u.w", Password: "x"}},
		{`["u.w","",1,2]`, AuthorizeParams{User: "u.w"}},
		{`["` + strings.Repeat("u", MaxUserLen) + `","x"]`, AuthorizeParams{User: strings.Repeat("u", MaxUserLen), Password: "x"}},
	}
	for _, tc := range good {
		got, err := DecodeAuthorize(json.RawMessage(tc.params))
		if err != nil || got != tc.want {
			t.Errorf("%.60s: got %+v, %v; want %+v", tc.params, got, err, tc.want)
		}
	}
	for _, params := range []string{
		`[]`, `[null]`, `[""]`, `[1,"x"]`, `[["u"],"x"]`, `[{"u":1}]`, `["u",1]`, `["u",true]`, `["u",["x"]]`,
		`["` + strings.Repeat("u", MaxUserLen+1) + `"]`, `["u","` + strings.Repeat("p", MaxPasswordLen+1) + `"]`,
		`["u\u0000"]`, `["u\nw"]`, `["u\u007f"]`, `{}`,
	} {
		if _, err := DecodeAuthorize(json.RawMessage(params)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%.60s: err %v, want ErrInvalidParams", params, err)
		}
	}
}

func TestDecodeConfigure(t *testing.T) {
	good := []struct {
		params string
		want   ConfigureParams
	}{
		{`[[]]`, ConfigureParams{Extensions: []string{}, VersionRollingMask: 0xffffffff}},
		{`[["version-rolling"]]`, ConfigureParams{Extensions: []string{"version-rolling"}, HasVersionRolling: true, VersionRollingMask: 0xffffffff}},
		{`[["version-rolling"],null]`, ConfigureParams{Extensions: []string{"version-rolling"}, HasVersionRolling: true, VersionRollingMask: 0xffffffff}},
		{`[["version-rolling","minimum-difficulty","subscribe-extranonce"],{"version-rolling.mask":"1FFFE000","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048,"info.x":1}]`,
			ConfigureParams{Extensions: []string{"version-rolling", "minimum-difficulty", "subscribe-extranonce"}, HasVersionRolling: true,
				VersionRollingMask: 0x1fffe000, VersionRollingMinBitCount: 2, HasMinimumDifficulty: true, MinimumDifficulty: 2048}},
		{`[["minimum-difficulty"],{"minimum-difficulty.value":0.5}]`, ConfigureParams{Extensions: []string{"minimum-difficulty"}, VersionRollingMask: 0xffffffff, HasMinimumDifficulty: true, MinimumDifficulty: 0.5}},
		{`[["minimum-difficulty"],{"minimum-difficulty.value":"512"}]`, ConfigureParams{Extensions: []string{"minimum-difficulty"}, VersionRollingMask: 0xffffffff, HasMinimumDifficulty: true, MinimumDifficulty: 512}},
		{`[["minimum-difficulty"],{}]`, ConfigureParams{Extensions: []string{"minimum-difficulty"}, VersionRollingMask: 0xffffffff}},
		{`[["version-rolling"],{"version-rolling.mask":"e000"}]`, ConfigureParams{Extensions: []string{"version-rolling"}, HasVersionRolling: true, VersionRollingMask: 0xe000}},
		{`[["version-rolling"],{"version-rolling.min-bit-count":32}]`, ConfigureParams{Extensions: []string{"version-rolling"}, HasVersionRolling: true, VersionRollingMask: 0xffffffff, VersionRollingMinBitCount: 32}},
	}
	for _, tc := range good {
		got, err := DecodeConfigure(json.RawMessage(tc.params))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%.80s: got %+v, %v; want %+v", tc.params, got, err, tc.want)
		}
	}
	tooMany := `[[` + strings.Repeat(`"x",`, MaxExtensions) + `"x"]]`
	for _, params := range []string{
		`[]`, `[null]`, `["version-rolling"]`, `[{"version-rolling":true}]`, `[[1]]`, `[[null]]`, `[[""]]`, `[[["a"]]]`,
		tooMany, `[["` + strings.Repeat("e", MaxExtensionLen+1) + `"]]`,
		`[["version-rolling"],[]]`, `[["version-rolling"],"mask"]`, `[["version-rolling"],1]`,
		`[["version-rolling"],{"version-rolling.mask":536862720}]`, `[["version-rolling"],{"version-rolling.mask":""}]`,
		`[["version-rolling"],{"version-rolling.mask":"1fffe0000"}]`, `[["version-rolling"],{"version-rolling.mask":"0x1fffe0"}]`,
		`[["version-rolling"],{"version-rolling.mask":"1_ffe000"}]`, `[["version-rolling"],{"version-rolling.mask":"-1"}]`,
		`[["version-rolling"],{"version-rolling.mask":null}]`,
		`[["version-rolling"],{"version-rolling.min-bit-count":-1}]`, `[["version-rolling"],{"version-rolling.min-bit-count":33}]`,
		`[["version-rolling"],{"version-rolling.min-bit-count":2.5}]`, `[["version-rolling"],{"version-rolling.min-bit-count":"two"}]`,
		`[["version-rolling"],{"version-rolling.min-bit-count":1e999}]`,
		`[["minimum-difficulty"],{"minimum-difficulty.value":-1}]`, `[["minimum-difficulty"],{"minimum-difficulty.value":"NaN"}]`,
		`[["minimum-difficulty"],{"minimum-difficulty.value":"Infinity"}]`, `[["minimum-difficulty"],{"minimum-difficulty.value":1e400}]`,
		`[["minimum-difficulty"],{"minimum-difficulty.value":[2048]}]`, `[["minimum-difficulty"],{"minimum-difficulty.value":"0x800"}]`,
	} {
		if got, err := DecodeConfigure(json.RawMessage(params)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%.80s: got %+v, %v; want ErrInvalidParams", params, got, err)
		}
	}
}

func TestDecodeSuggestDifficulty(t *testing.T) {
	good := []struct {
		params string
		want   float64
	}{
		{`[512]`, 512}, {`[0.001]`, 0.001}, {`[[1024]]`, 1024}, {`["2048"]`, 2048}, {`[["4096"]]`, 4096},
		{`[1e3,"extra"]`, 1000}, {`[1.7976931348623157e308]`, math.MaxFloat64},
	}
	for _, tc := range good {
		got, err := DecodeSuggestDifficulty(json.RawMessage(tc.params))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.params, got, err, tc.want)
		}
	}
	for _, params := range []string{
		`[]`, `[null]`, `[0]`, `[-1]`, `[-0]`, `["NaN"]`, `["nan"]`, `["Inf"]`, `["+1"]`, `["0x10"]`, `["1_000"]`, `[" 1"]`,
		`["1e999"]`, `[1e999]`, `[[]]`, `[[[1]]]`, `[{}]`, `[true]`, `{}`, `["abc"]`, `[""]`, `["-5"]`,
	} {
		if got, err := DecodeSuggestDifficulty(json.RawMessage(params)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("%s: got %v, %v; want ErrInvalidParams", params, got, err)
		}
	}
}

func TestDecodeAdmin(t *testing.T) {
	if pw, err := DecodeAuthorizeAdmin(json.RawMessage(`["s3cret",1]`)); err != nil || pw != "s3cret" {
		t.Errorf("authorize_admin: %q, %v", pw, err)
	}
	for _, params := range []string{`[]`, `[""]`, `[null]`, `[123]`, `[["x"]]`, `["` + strings.Repeat("p", MaxPasswordLen+1) + `"]`} {
		if _, err := DecodeAuthorizeAdmin(json.RawMessage(params)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("authorize_admin %.40s: err %v", params, err)
		}
	}
	for params, want := range map[string]AddUserParams{
		`["alice","pw"]`:                 {Username: "alice", Password: "pw"},
		`["alice","pw",null]`:            {Username: "alice", Password: "pw"},
		`["alice","pw",""]`:              {Username: "alice", Password: "pw"},
		`["alice","pw","bcrt1qexample"]`: {Username: "alice", Password: "pw", Address: "bcrt1qexample"},
		`["alice","pw","any text",4]`:    {Username: "alice", Password: "pw", Address: "any text"}, // the session checks it
		`["alice","pw","` + strings.Repeat("a", MaxAddressLen) + `"]`: {Username: "alice", Password: "pw", Address: strings.Repeat("a", MaxAddressLen)},
	} {
		if p, err := DecodeAddUser(json.RawMessage(params)); err != nil || p != want {
			t.Errorf("add_user %.40s: %+v, %v", params, p, err)
		}
	}
	for _, params := range []string{
		`[]`, `["alice"]`, `["alice",""]`, `["","pw"]`, `[1,"pw"]`, `["alice",1]`, `["al\tice","pw"]`, `["alice",null]`,
		`["` + strings.Repeat("u", MaxUserLen+1) + `","pw"]`, `["alice","` + strings.Repeat("p", MaxPasswordLen+1) + `"]`,
		`["alice","pw",1]`, `["alice","pw",["bcrt1q"]]`, `["alice","pw",{}]`, `["alice","pw",true]`,
		`["alice","pw","` + strings.Repeat("a", MaxAddressLen+1) + `"]`,
	} {
		if _, err := DecodeAddUser(json.RawMessage(params)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("add_user %.40s: err %v", params, err)
		}
	}
}

// decodeAll runs every params decoder; they must not panic and must fail
// only with ErrInvalidParams.
func decodeAll(t *testing.T, params json.RawMessage) {
	check := func(name string, err error) {
		if err != nil && !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("%s(%q): error %v does not wrap ErrInvalidParams", name, params, err)
		}
	}
	_, err := DecodeSubscribe(params)
	check("DecodeSubscribe", err)
	_, err = DecodeAuthorize(params)
	check("DecodeAuthorize", err)
	_, err = DecodeConfigure(params)
	check("DecodeConfigure", err)
	_, err = DecodeSuggestDifficulty(params)
	check("DecodeSuggestDifficulty", err)
	_, err = DecodeSubmit(params)
	check("DecodeSubmit", err)
	_, err = DecodeAuthorizeAdmin(params)
	check("DecodeAuthorizeAdmin", err)
	_, err = DecodeAddUser(params)
	check("DecodeAddUser", err)
	_, err = DecodeReconnectMiners(params)
	check("DecodeReconnectMiners", err)
}

func FuzzDecodeRequest(f *testing.F) {
	for _, ml := range minerLines {
		f.Add([]byte(ml.line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := DecodeRequest(line)
		if errors.Is(err, ErrResponse) {
			// A reply: DecodeResponse reads what DecodeRequest refused.
			if _, err := DecodeResponse(line); err != nil {
				t.Fatalf("a reply DecodeResponse refuses: %v", err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !validID(req.ID) || req.Method == "" || len(req.Params) == 0 || req.Params[0] != '[' {
			t.Fatalf("accepted a bad request: %+v", req)
		}
		decodeAll(t, req.Params)

		// decode → encode → decode agrees.
		enc, err := encodeRequest(req.ID, req.Method, req.Params)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeRequest(bytes.TrimSuffix(enc, []byte("\n")))
		if err != nil {
			t.Fatalf("re-decode %q: %v", enc, err)
		}
		if !bytes.Equal(again.ID, req.ID) || again.Method != req.Method || !bytes.Equal(again.Params, req.Params) {
			t.Fatalf("round trip: %+v != %+v", again, req)
		}
		// Replies echo the id as valid JSON.
		for _, reply := range [][]byte{EncodeError(req.ID, CodeOther, req.Method), EncodeSubscribeResult(req.ID, req.Method, line, 4)} {
			if !json.Valid(reply) {
				t.Fatalf("invalid reply %q", reply)
			}
		}
	})
}

func FuzzDecodeSubmit(f *testing.F) {
	for _, ml := range minerLines {
		if req, err := DecodeRequest([]byte(ml.line)); err == nil && req.Method == MethodSubmit {
			f.Add([]byte(req.Params))
		}
	}
	f.Fuzz(func(t *testing.T, params []byte) {
		p, err := DecodeSubmit(params)
		if err != nil {
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("error %v does not wrap ErrInvalidParams", err)
			}
			return
		}
		line := encodeSubmit(json.RawMessage("1"), p)
		req, err := DecodeRequest(bytes.TrimSuffix(line, []byte("\n")))
		if err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		again, err := DecodeSubmit(req.Params)
		if err != nil {
			t.Fatalf("re-decode %q: %v", line, err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip: %+v != %+v", again, p)
		}
	})
}

func BenchmarkDecodeSubmitLine(b *testing.B) {
	line := []byte(minerLines[15].line)
	b.ReportAllocs()
	for b.Loop() {
		req, err := DecodeRequest(line)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeSubmit(req.Params); err != nil {
			b.Fatal(err)
		}
	}
}
