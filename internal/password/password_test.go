package password_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/stratumd/stratumd/internal/password"
)

// cheap are argon2id costs small enough for tests.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHashing(t *testing.T) {
	h := password.Argon2id{Params: cheap}
	a, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Hash("correct horse")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$") || strings.Contains(a, "correct") {
		t.Fatalf("hash %q is not an argon2id PHC string", a)
	}
	for _, tc := range []struct {
		stored, pw  string
		ok, rehash  bool
		wantErr     bool
		stronger    bool
		description string
	}{
		{stored: a, pw: "correct horse", ok: true, description: "right password"},
		{stored: a, pw: "correct horsE", description: "wrong password"},
		{stored: a, pw: "", description: "empty password"},
		{stored: "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", pw: "x", wantErr: true, description: "absurd memory cost"},
		{stored: "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5", pw: "x", wantErr: true, description: "bad base64"},
		{stored: "plain", pw: "plain", wantErr: true, description: "plain text is never a match"},
		{stored: "$sha256d$zz", pw: "x", wantErr: true, description: "bad legacy hex"},
	} {
		ok, rehash, err := h.Verify(tc.stored, tc.pw)
		if (err != nil) != tc.wantErr || ok != tc.ok || rehash != tc.rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want ok=%v rehash=%v err=%v", tc.description, ok, rehash, err, tc.ok, tc.rehash, tc.wantErr)
		}
	}
	// A hash with other costs verifies and asks to be re-hashed.
	strong := password.Argon2id{Params: password.DefaultParams()}
	s, _ := strong.Hash("pw")
	if ok, rehash, err := h.Verify(s, "pw"); !ok || !rehash || err != nil {
		t.Fatalf("Verify of default-cost hash with test params = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	// Legacy: hex of SHA256(SHA256(pw)), as bcoin-stratum stored it.
	first := sha256.Sum256([]byte("hunter2"))
	second := sha256.Sum256(first[:])
	leg, err := password.LegacyHash(hex.EncodeToString(second[:]))
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := h.Verify(leg, "hunter2"); !ok || !rehash || err != nil {
		t.Fatalf("legacy Verify = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(leg, "hunter3"); ok {
		t.Fatal("legacy hash matched the wrong password")
	}
}

// TestErrInvalid: every refusal caused by the input wraps ErrInvalid, which
// store and pwworker branch on.
func TestErrInvalid(t *testing.T) {
	h := password.Argon2id{Params: cheap}
	if _, err := h.Hash(strings.Repeat("x", password.MaxLen+1)); !errors.Is(err, password.ErrInvalid) {
		t.Errorf("Hash of an over-long password: %v", err)
	}
	if _, err := password.LegacyHash("abc"); !errors.Is(err, password.ErrInvalid) {
		t.Errorf("LegacyHash of a short digest: %v", err)
	}
	for _, stored := range []string{"plain", "$sha256d$zz", "$argon2id$v=19$m=64,t=1,p=1$!!$a2V5"} {
		if _, _, err := h.Verify(stored, "x"); !errors.Is(err, password.ErrInvalid) {
			t.Errorf("Verify(%q): %v", stored, err)
		}
	}
	if ok, _, err := h.Verify("$sha256d$"+strings.Repeat("0", 64), strings.Repeat("x", password.MaxLen+1)); ok || err != nil {
		t.Errorf("Verify of an over-long password = %v, %v; want no match, no error", ok, err)
	}
}
