package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// mustJSON checks that line is one '\n'-terminated JSON object and returns it decoded.
func mustJSON(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if len(line) == 0 || line[len(line)-1] != '\n' || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one terminated line: %q", line)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	return m
}

func TestEncodeReplies(t *testing.T) {
	cases := []struct {
		got  func() ([]byte, error)
		want string
	}{
		{func() ([]byte, error) { return EncodeResult(json.RawMessage("4"), true) }, `{"id":4,"result":true,"error":null}`},
		{func() ([]byte, error) { return EncodeResult(json.RawMessage(`"a\"b"`), false) }, `{"id":"a\"b","result":false,"error":null}`},
		{func() ([]byte, error) { return EncodeResult(nil, nil) }, `{"id":null,"result":null,"error":null}`},
		{func() ([]byte, error) { return EncodeResult(json.RawMessage(`{"x":1}`), true) }, `{"id":null,"result":true,"error":null}`},
		{func() ([]byte, error) { return EncodeResult(json.RawMessage(`1`), []string{"a"}) }, `{"id":1,"result":["a"],"error":null}`},
		{func() ([]byte, error) { return EncodeResult(json.RawMessage(`1`), json.RawMessage(`{"k":[1]}`)) }, `{"id":1,"result":{"k":[1]},"error":null}`},
		{func() ([]byte, error) {
			return EncodeError(json.RawMessage("7"), CodeLowDifficulty, "Low difficulty share"), nil
		}, `{"id":7,"result":null,"error":[23,"Low difficulty share",null]}`},
		{func() ([]byte, error) {
			return EncodeError(json.RawMessage("7"), CodeOther, "bad \"x\"\n\x01\xff"), nil
		}, `{"id":7,"result":null,"error":[20,"bad \"x\"\n\u0001\ufffd",null]}`},
		{func() ([]byte, error) {
			return EncodeSubscribeResult(json.RawMessage("1"), "deadbeef", []byte{0x01, 0xab, 0xcd, 0xef}, 8), nil
		}, `{"id":1,"result":[[["mining.set_difficulty","deadbeef"],["mining.notify","deadbeef"]],"01abcdef",8],"error":null}`},
		{func() ([]byte, error) {
			return EncodeConfigureResult(json.RawMessage("2"), ConfigureResult{AnswerVersionRolling: true, VersionRolling: true, VersionRollingMask: 0x1fffe000}), nil
		}, `{"id":2,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}`},
		{func() ([]byte, error) {
			return EncodeConfigureResult(json.RawMessage("2"), ConfigureResult{AnswerVersionRolling: true, AnswerMinimumDifficulty: true, MinimumDifficulty: true}), nil
		}, `{"id":2,"result":{"version-rolling":false,"minimum-difficulty":true},"error":null}`},
		{func() ([]byte, error) {
			return EncodeConfigureResult(json.RawMessage("2"), ConfigureResult{AnswerMinimumDifficulty: true, MinimumDifficulty: true}), nil
		}, `{"id":2,"result":{"minimum-difficulty":true},"error":null}`},
		{func() ([]byte, error) { return EncodeSetVersionMask(0x1fffe000), nil }, `{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`},
		{func() ([]byte, error) { return EncodeSetExtranonce([]byte{0, 0xff, 1, 2}, 4), nil }, `{"id":null,"method":"mining.set_extranonce","params":["00ff0102",4]}`},
		{func() ([]byte, error) { return EncodeReconnect("", 0, 0), nil }, `{"id":null,"method":"client.reconnect","params":[]}`},
		{func() ([]byte, error) { return EncodeReconnect("pool.example.com", 3333, 5), nil }, `{"id":null,"method":"client.reconnect","params":["pool.example.com","3333",5]}`},
		{func() ([]byte, error) {
			return encodeSubmit(json.RawMessage("4"), SubmitParams{Worker: "w", JobID: "j", Extranonce2: []byte{0, 1}, NTime: 0x6650e3a2, Nonce: 1, VersionBits: 0x2000, HasVersionBits: true}), nil
		}, `{"id":4,"method":"mining.submit","params":["w","j","0001","6650e3a2","00000001","00002000"]}`},
		{func() ([]byte, error) {
			return encodeRequest(json.RawMessage("1"), MethodSubscribe, []string{"stratumd-test/1"})
		},
			`{"id":1,"method":"mining.subscribe","params":["stratumd-test/1"]}`},
		{func() ([]byte, error) { return encodeRequest(json.RawMessage("1"), MethodExtranonceSubscribe, nil) },
			`{"id":1,"method":"mining.extranonce.subscribe","params":[]}`},
	}
	for i, tc := range cases {
		got, err := tc.got()
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		mustJSON(t, got)
		if string(got) != tc.want+"\n" {
			t.Errorf("case %d:\n got %s want %s", i, got, tc.want)
		}
	}
	if _, err := EncodeResult(json.RawMessage("1"), make(chan int)); err == nil {
		t.Error("EncodeResult of a channel succeeded")
	}
	if _, err := EncodeResult(json.RawMessage("1"), json.RawMessage("{")); err == nil {
		t.Error("EncodeResult of invalid raw JSON succeeded")
	}
	if _, err := encodeRequest(json.RawMessage("1"), "x", map[string]int{}); err == nil {
		t.Error("encodeRequest with object params succeeded")
	}
}

func TestEncodeNotify(t *testing.T) {
	// The example job of the Stratum v1 documentation (slush pool).
	coinb1 := "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008"
	coinb2 := "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000"
	prev := "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000"
	branch := []string{"b1c5e4f9f1d4a1e0f2b0c0a0d0e0f00112233445566778899aabbccddeeff00", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}
	got := EncodeNotify("bf", prev, coinb1, coinb2, branch, "00000002", "1c2ac4af", "504e86b9", true)
	want := `{"id":null,"method":"mining.notify","params":["bf","` + prev + `","` + coinb1 + `","` + coinb2 + `",["` + branch[0] + `","` + branch[1] + `"],"00000002","1c2ac4af","504e86b9",true]}` + "\n"
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	m := mustJSON(t, got)
	params := m["params"].([]any)
	if len(params) != 9 || params[8] != true || len(params[4].([]any)) != 2 {
		t.Fatalf("params shape %v", params)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		EncodeNotify("bf", prev, coinb1, coinb2, branch, "00000002", "1c2ac4af", "504e86b9", true)
	}); allocs != 1 {
		t.Errorf("EncodeNotify made %v allocations, want 1", allocs)
	}
	empty := EncodeNotify("1", prev, "", "", nil, "20000000", "207fffff", "6650e3a2", false)
	if !bytes.Contains(empty, []byte(`"",[],"20000000","207fffff","6650e3a2",false]}`)) {
		t.Errorf("notify with no branch: %s", empty)
	}
	mustJSON(t, empty)
}

func TestEncodeSetDifficulty(t *testing.T) {
	for _, tc := range []struct {
		d    float64
		want string
	}{
		{1, "1"}, {1024, "1024"}, {65536, "65536"}, {0.0009765625, "0.0009765625"}, {0.5, "0.5"},
		{1e-7, "0.0000001"}, {0.00123, "0.00123"}, {65536.5, "65536.5"}, {1e15, "1000000000000000"},
		{1 << 52, "4503599627370496"}, {1e21, "1000000000000000000000"}, {3e-5, "0.00003"},
	} {
		got, err := EncodeSetDifficulty(tc.d)
		if err != nil {
			t.Errorf("%v: %v", tc.d, err)
			continue
		}
		want := `{"id":null,"method":"mining.set_difficulty","params":[` + tc.want + "]}\n"
		if string(got) != want {
			t.Errorf("%v: got %s want %s", tc.d, got, want)
		}
		m := mustJSON(t, got)
		if f, _ := m["params"].([]any)[0].(json.Number).Float64(); f != tc.d {
			t.Errorf("%v reads back as %v", tc.d, f)
		}
	}
	for _, d := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1)} {
		if _, err := EncodeSetDifficulty(d); !errors.Is(err, ErrInvalidDifficulty) {
			t.Errorf("%v: err %v, want ErrInvalidDifficulty", d, err)
		}
	}
}

func TestCodeMessage(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range []int{CodeOther, CodeJobNotFound, CodeDuplicate, CodeLowDifficulty, CodeUnauthorized, CodeNotSubscribed} {
		m := CodeMessage(c)
		if m == "" || seen[m] {
			t.Errorf("code %d: message %q empty or repeated", c, m)
		}
		seen[m] = true
	}
	if CodeMessage(99) != CodeMessage(CodeOther) {
		t.Error("unknown code not reported as other")
	}
}

func BenchmarkEncodeNotify(b *testing.B) {
	prev := strings.Repeat("ab", 32)
	coinb1 := strings.Repeat("01", 60)
	coinb2 := strings.Repeat("02", 120)
	branch := make([]string, 12)
	for i := range branch {
		branch[i] = strings.Repeat("cd", 32)
	}
	b.ReportAllocs()
	for b.Loop() {
		EncodeNotify("1a2b", prev, coinb1, coinb2, branch, "20000000", "1703a30c", "6650e3a2", true)
	}
}

func TestNotifyAlias(t *testing.T) {
	branch := []string{"aa", "bb"}
	for _, clean := range []bool{false, true} {
		line := EncodeNotify("1a2b", "p", "c1", "c2", branch, "v", "b", "t", clean)
		got := NotifyAlias(line, "1a2b", ".12")
		want := EncodeNotify("1a2b.12", "p", "c1", "c2", branch, "v", "b", "t", clean)
		if !bytes.Equal(got, want) {
			t.Errorf("clean %v: alias\n%s\nwant\n%s", clean, got, want)
		}
	}
	line := EncodeNotify("1a2b", "p", "c1", "c2", nil, "v", "b", "t", false)
	for _, id := range []string{"1a2", "1a2b3", "ffff", ""} {
		if got := NotifyAlias(line, id, ".1"); got != nil {
			t.Errorf("id %q: got %s, want nil", id, got)
		}
	}
	if got := NotifyAlias(EncodeSetVersionMask(1), "1a2b", ".1"); got != nil {
		t.Errorf("not a notify: got %s, want nil", got)
	}
}
