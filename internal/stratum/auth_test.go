package stratum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/stratum/admission"
	"github.com/stratumd/stratumd/internal/stratum/wire"
	"github.com/stratumd/stratumd/internal/testutil"
)

// authServer is a password-mode Server (not serving) over fakes, with
// alice's password "pw".
type authServer struct {
	srv   *Server
	clock *testutil.Clock
	users *fakeUsers
	logs  *testutil.SyncBuffer
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	a := &authServer{clock: newFakeClock(), users: newFakeUsers(), logs: &testutil.SyncBuffer{}}
	a.users.passwords["alice"] = "pw"
	srv, err := New(Config{
		Source: chaintest.New(&chaincfg.RegressionNetParams), Network: &chaincfg.RegressionNetParams,
		Users: a.users, Shares: nopSink{}, Blocks: nopSink{}, PayoutScript: payoutScript(t),
		Auth:   AuthPassword,
		Logger: slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    a.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	a.srv = srv
	return a
}

func (a *authServer) auth(ip, user, pw string) error {
	_, err := a.srv.authorize(context.Background(), ip, user, pw)
	return err
}

// check calls authorize and compares the outcome (nil, ErrUnauthorized or
// ErrAuthLimited) and the number of password verifications it caused.
func (a *authServer) check(t *testing.T, ip, user, pw string, want error, verifies int) {
	t.Helper()
	before := a.users.verifyCount()
	err := a.auth(ip, user, pw)
	if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
		t.Errorf("authorize(%s, %s, %s) = %v, want %v", ip, user, pw, err, want)
	}
	if errors.Is(want, ErrUnauthorized) && errors.Is(err, ErrAuthLimited) {
		t.Errorf("authorize(%s, %s, %s) = %v, want a checked failure", ip, user, pw, err)
	}
	if got := a.users.verifyCount() - before; got != verifies {
		t.Errorf("authorize(%s, %s, %s): %d verifications, want %d", ip, user, pw, got, verifies)
	}
}

func TestAuthFailureCache(t *testing.T) {
	a := newAuthServer(t)
	const ip = "192.0.2.1"
	a.check(t, ip, "alice", "wrong", ErrUnauthorized, 1)
	// The same wrong pair within the TTL: no argon2, from any address.
	a.check(t, ip, "alice", "wrong", ErrUnauthorized, 0)
	a.check(t, "192.0.2.2", "alice", "wrong", ErrUnauthorized, 0)
	if st := a.srv.Stats(); st.AuthFailures != 1 || st.AuthRefused != 2 {
		t.Errorf("stats failures %d refused %d, want 1 and 2", st.AuthFailures, st.AuthRefused)
	}
	// The right password is another key: checked and accepted.
	a.check(t, ip, "alice", "pw", nil, 1)
	a.check(t, ip, "alice", "pw", nil, 0)
	// A different wrong password is checked.
	a.check(t, ip, "alice", "wrong2", ErrUnauthorized, 1)
	// Just before the TTL ends the pair is still remembered; after, it is
	// checked again.
	a.clock.Advance(admission.AuthFailTTL)
	a.check(t, ip, "alice", "wrong", ErrUnauthorized, 0)
	a.clock.Advance(time.Nanosecond)
	a.check(t, ip, "alice", "wrong", ErrUnauthorized, 1)
	// Unknown users cost no argon2 and are not remembered: a user created
	// meanwhile works at once.
	a.check(t, ip, "bob", "pw", ErrUnauthorized, 1)
	a.users.mu.Lock()
	a.users.passwords["bob"] = "pw"
	a.users.mu.Unlock()
	a.check(t, ip, "bob", "pw", nil, 1)
	if st := a.srv.Stats(); st.AuthFailures != 4 || st.AuthRefused != 3 {
		t.Errorf("stats failures %d refused %d, want 4 and 3", st.AuthFailures, st.AuthRefused)
	}
}

func TestAuthLimitPerAddress(t *testing.T) {
	a := newAuthServer(t)
	const ip, other = "192.0.2.1", "198.51.100.7"
	// A farm's right password, cached before the trouble starts.
	a.users.passwords["farm"] = "farmpw"
	a.check(t, ip, "farm", "farmpw", nil, 1)
	for i := range admission.AuthFailuresPerIP {
		a.check(t, ip, "alice", fmt.Sprint("guess", i), ErrUnauthorized, 1)
	}
	// Over the limit: new guesses and even an uncached right password are
	// refused unchecked.
	a.check(t, ip, "alice", "guess-next", ErrAuthLimited, 0)
	a.check(t, ip, "alice", "pw", ErrAuthLimited, 0)
	// Remembered failures still answer as wrong passwords.
	a.check(t, ip, "alice", "guess0", ErrUnauthorized, 0)
	// A cached success passes from the limited address.
	a.check(t, ip, "farm", "farmpw", nil, 0)
	// Another address is checked as usual.
	a.check(t, other, "alice", "guess-other", ErrUnauthorized, 1)
	a.check(t, other, "alice", "pw", nil, 1)
	// Now cached, the right password passes from the limited address too.
	a.check(t, ip, "alice", "pw", nil, 0)
	if st := a.srv.Stats(); st.AuthFailures != admission.AuthFailuresPerIP+1 || st.AuthRefused != 3 {
		t.Errorf("stats failures %d refused %d, want %d and 3", st.AuthFailures, st.AuthRefused, admission.AuthFailuresPerIP+1)
	}
	// The window ends: the address is checked again.
	a.clock.Advance(admission.AuthFailWindow)
	a.check(t, ip, "alice", "guess-later", ErrUnauthorized, 1)

	// One warning per address and window, never with a password.
	logs := a.logs.String()
	if n := strings.Count(logs, "too many failed authorizations"); n != 1 {
		t.Errorf("%d limit warnings, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs, "ip="+ip) {
		t.Errorf("limit warning without the address:\n%s", logs)
	}
	for _, pw := range []string{"guess", "farmpw", "pw="} {
		if strings.Contains(logs, pw) {
			t.Errorf("log contains %q:\n%s", pw, logs)
		}
	}
	// Over the limit again in the new window: warned again.
	for i := range admission.AuthFailuresPerIP - 1 {
		a.check(t, ip, "alice", fmt.Sprint("again", i), ErrUnauthorized, 1)
	}
	a.check(t, ip, "alice", "again-over", ErrAuthLimited, 0)
	a.check(t, ip, "alice", "again-over2", ErrAuthLimited, 0)
	if n := strings.Count(a.logs.String(), "too many failed authorizations"); n != 2 {
		t.Errorf("%d limit warnings after two windows, want 2", n)
	}
}

func TestAuthRightPasswordUnderLimit(t *testing.T) {
	a := newAuthServer(t)
	const ip = "192.0.2.1"
	for i := range admission.AuthFailuresPerIP - 1 {
		a.check(t, ip, "alice", fmt.Sprint("guess", i), ErrUnauthorized, 1)
	}
	a.check(t, ip, "alice", "pw", nil, 1)
	// The success did not reset the count: one more failure reaches it.
	a.check(t, ip, "alice", "last-guess", ErrUnauthorized, 1)
	a.check(t, ip, "alice", "over", ErrAuthLimited, 0)
}

// TestAuthConcurrentWrong: many sessions from one address sending the same
// wrong password at once cost one check.
func TestAuthConcurrentWrong(t *testing.T) {
	a := newAuthServer(t)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { errs[i] = a.auth("192.0.2.1", "alice", "wrong") })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	// Each call either joined the one check or came after it and found the
	// pair remembered.
	if n := a.users.verifyCount(); n != 1 {
		t.Errorf("%d verifications, want 1", n)
	}
	st := a.srv.Stats()
	if st.AuthFailures+st.AuthRefused != uint64(len(errs)) || st.AuthFailures < 1 {
		t.Errorf("stats failures %d refused %d for %d calls", st.AuthFailures, st.AuthRefused, len(errs))
	}
}

// TestAuthorizeLimitedReply: over the wire, the limit answers code 24 with
// its own message.
func TestAuthorizeLimitedReply(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.Auth = AuthPassword }})
	h.users.passwords["alice"] = "pw"
	c := h.dial()
	c.call(wire.MethodSubscribe)
	for i := range admission.AuthFailuresPerIP {
		r := c.call(wire.MethodAuthorize, "alice.w", fmt.Sprint("guess", i))
		if r.errCode() != wire.CodeUnauthorized || !strings.Contains(string(r.Error), "unknown user or wrong password") {
			t.Fatalf("guess %d: %s", i, r.raw)
		}
	}
	r := c.call(wire.MethodAuthorize, "alice.w", "pw")
	if r.errCode() != wire.CodeUnauthorized || !strings.Contains(string(r.Error), "too many failed authorizations; try later") {
		t.Fatalf("over the limit: %s", r.raw)
	}
	if n := h.users.verifyCount(); n != admission.AuthFailuresPerIP {
		t.Errorf("%d verifications, want %d", n, admission.AuthFailuresPerIP)
	}
	h.clock.Advance(admission.AuthFailWindow)
	if r := c.call(wire.MethodAuthorize, "alice.w", "pw"); string(r.Result) != "true" {
		t.Fatalf("after the window: %s", r.raw)
	}
}
