package pwworker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func sha256dHex(pw string) string {
	a := sha256.Sum256([]byte(pw))
	b := sha256.Sum256(a[:])
	return hex.EncodeToString(b[:])
}

// mustJSON encodes a request (which cannot fail).
func mustJSON(_ testing.TB, v request) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// replies decodes Serve's output by id.
func replies(t *testing.T, out string) map[uint64][]reply {
	t.Helper()
	m := map[uint64][]reply{}
	for line := range strings.Lines(out) {
		var r reply
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("reply line %q: %v", line, err)
		}
		m[r.ID] = append(m[r.ID], r)
	}
	return m
}

func TestServeProtocol(t *testing.T) {
	stored, _ := cheap.Hash("pw")
	in := strings.Join([]string{
		mustJSON(t, request{ID: 1, Op: opVerify, Stored: []byte(stored), Password: []byte("pw")}),
		mustJSON(t, request{ID: 2, Op: opVerify, Stored: []byte(stored), Password: []byte("px")}),
		mustJSON(t, request{ID: 3, Op: opHash, Password: []byte("new")}),
		mustJSON(t, request{ID: 4, Op: "delete", Password: []byte("x")}),
		mustJSON(t, request{ID: 5, Op: opVerify, Stored: []byte("plaintext"), Password: []byte("x")}),
		`{"id":6,"op":`,
		strings.Repeat("z", maxLine+10),
		"",
		mustJSON(t, request{ID: 7, Op: opVerify, Stored: []byte(stored), Password: []byte("pw")}), // no newline
	}, "\n")
	var out bytes.Buffer
	if err := Serve(t.Context(), strings.NewReader(in), &out, cheap, 3); err != nil {
		t.Fatal(err)
	}
	got := replies(t, out.String())
	one := func(id uint64) reply {
		t.Helper()
		if len(got[id]) != 1 {
			t.Fatalf("id %d: %d replies, want 1:\n%s", id, len(got[id]), out.String())
		}
		return got[id][0]
	}
	if r := one(1); !r.OK || r.Rehash || r.Err != "" {
		t.Errorf("right password: %+v", r)
	}
	if r := one(2); r.OK || r.Err != "" {
		t.Errorf("wrong password: %+v", r)
	}
	if r := one(3); r.Err != "" || !strings.HasPrefix(r.Hash, "$argon2id$") {
		t.Errorf("hash: %+v", r)
	} else if ok, _, _ := cheap.Verify(r.Hash, "new"); !ok {
		t.Errorf("hash %q does not verify", r.Hash)
	}
	if r := one(4); r.Kind != kindProtocol {
		t.Errorf("unknown op: %+v", r)
	}
	if r := one(5); r.Kind != kindInvalid || r.Err == "" {
		t.Errorf("unknown scheme: %+v", r)
	}
	if r := one(7); !r.OK {
		t.Errorf("last line without newline: %+v", r)
	}
	// Truncated JSON, the overlong line and the empty line: id 0, protocol.
	if len(got[0]) != 3 {
		t.Fatalf("id 0: %d replies, want 3:\n%s", len(got[0]), out.String())
	}
	for _, r := range got[0] {
		if r.Kind != kindProtocol {
			t.Errorf("bad line: %+v", r)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestServeWriteFails(t *testing.T) {
	stored, _ := cheap.Hash("pw")
	line := mustJSON(t, request{ID: 1, Op: opVerify, Stored: []byte(stored), Password: []byte("pw")}) + "\n"
	r, w := io.Pipe()
	go func() {
		for range 100 {
			if _, err := io.WriteString(w, line); err != nil {
				return
			}
		}
		w.Close()
	}()
	err := Serve(t.Context(), r, failWriter{}, cheap, 1)
	r.Close()
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Serve: %v, want the write error", err)
	}
}

func TestServeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	in := mustJSON(t, request{ID: 1, Op: opHash, Password: []byte("x")}) + "\n"
	var out bytes.Buffer
	if err := Serve(ctx, strings.NewReader(in), &out, cheap, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("answered after cancel: %q", out.String())
	}
}

// FuzzServe: any input gives exactly one well-formed reply per line, and
// no panic.
func FuzzServe(f *testing.F) {
	stored, _ := cheap.Hash("pw")
	f.Add(mustJSON(nil, request{ID: 1, Op: opVerify, Stored: []byte(stored), Password: []byte("pw")}) + "\n")
	f.Add(mustJSON(nil, request{ID: 2, Op: opHash, Password: []byte("x")}))
	f.Add(`{"id":3,"op":"verify","stored":"JHNoYTI1NmQkeno=","password":"eA=="}` + "\n\n{}\n")
	f.Add(`{"id":18446744073709551615,"op":"hash","password":null}`)
	f.Add("\x00\xff\n[1,2]\n\"s\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		if err := Serve(context.Background(), strings.NewReader(in), &out, cheap, 2); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		want := strings.Count(in, "\n")
		if in != "" && !strings.HasSuffix(in, "\n") {
			want++
		}
		n := 0
		for line := range strings.Lines(out.String()) {
			var r reply
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("reply %q: %v", line, err)
			}
			n++
		}
		if n != want {
			t.Fatalf("%d replies to %d lines", n, want)
		}
	})
}
