package stratum

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum/admission"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

func TestAdminCalls(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true, config: func(c *Config) {
		c.AdminPassword = "hunter2"
		c.Auth = AuthPassword
	}})
	c := h.dial()
	if r := c.call(wire.MethodAddUser, "carol", "pw"); r.errCode() != wire.CodeUnauthorized {
		t.Errorf("add_user without admin: %s", r.raw)
	}
	if r := c.call(wire.MethodAuthorizeAdmin, "wrong"); r.errCode() != wire.CodeUnauthorized {
		t.Errorf("wrong admin password: %s", r.raw)
	}
	if r := c.call(wire.MethodAuthorizeAdmin, "hunter2"); string(r.Result) != "true" {
		t.Fatalf("admin login: %s", r.raw)
	}
	if r := c.call(wire.MethodAddUser, "carol", "pw"); string(r.Result) != "true" {
		t.Fatalf("add_user: %s", r.raw)
	}
	if r := c.call(wire.MethodAddUser, "carol", "pw2"); r.errCode() != wire.CodeOther {
		t.Errorf("add_user twice: %s", r.raw)
	}
	if r := c.call(wire.MethodAddUser, "bad.name", "pw"); r.errCode() != wire.CodeOther {
		t.Errorf("invalid name: %s", r.raw)
	}
	// The new user can mine.
	m := h.dial()
	m.call(wire.MethodSubscribe)
	if r := m.call(wire.MethodAuthorize, "carol.rig", "pw"); string(r.Result) != "true" {
		t.Errorf("new user: %s", r.raw)
	}
	h.users.mu.Lock()
	created := len(h.users.created)
	h.users.mu.Unlock()
	if created != 1 {
		t.Errorf("created %d users", created)
	}
}

func TestAdminRateLimit(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true, config: func(c *Config) { c.AdminPassword = "hunter2" }})
	c := h.dial()
	for i := range admission.AdminFailuresPerIP {
		if r := c.call(wire.MethodAuthorizeAdmin, "guess"); r.errCode() != wire.CodeUnauthorized {
			t.Fatalf("attempt %d: %s", i, r.raw)
		}
	}
	// Refused without checking, even with the right password.
	if r := c.call(wire.MethodAuthorizeAdmin, "hunter2"); r.errCode() != wire.CodeOther {
		t.Errorf("after %d failures: %s", admission.AdminFailuresPerIP, r.raw)
	}
	h.clock.Advance(admission.AdminWindow + time.Second)
	if r := c.call(wire.MethodAuthorizeAdmin, "hunter2"); string(r.Result) != "true" {
		t.Errorf("after the window: %s", r.raw)
	}
}

func TestAdminDisabled(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true})
	c := h.dial()
	if r := c.call(wire.MethodAuthorizeAdmin, "anything"); r.errCode() != wire.CodeOther {
		t.Errorf("admin with no password configured: %s", r.raw)
	}
	if r := c.call(wire.MethodAddUser, "dave", "pw"); r.errCode() != wire.CodeUnauthorized {
		t.Errorf("add_user: %s", r.raw)
	}
}

// TestAdminAddUserAddress: mining.add_user's optional third parameter is
// the new user's payout address, checked for the server's network; a bad
// one is refused with the reason and creates nothing.
func TestAdminAddUserAddress(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true, config: func(c *Config) {
		c.AdminPassword = "hunter2"
		c.Auth = AuthPassword
	}})
	addr := regtestAddress(t, 3)
	created := func() []store.NewUser {
		h.users.mu.Lock()
		defer h.users.mu.Unlock()
		return slices.Clone(h.users.created)
	}
	c := h.dial()
	// Not an admin: refused as such, whatever the address.
	if r := c.call(wire.MethodAddUser, "carol", "pw", "garbage"); r.errCode() != wire.CodeUnauthorized {
		t.Errorf("add_user with an address without admin: %s", r.raw)
	}
	if r := c.call(wire.MethodAuthorizeAdmin, "hunter2"); string(r.Result) != "true" {
		t.Fatalf("admin login: %s", r.raw)
	}
	for _, tc := range []struct {
		addr any
		want string // error text; "": accepted
	}{
		{"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "it is a mainnet address"},
		{"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "not a regtest payout address"},
		{"tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "it is a testnet3/signet address"},
		{"garbage", "not a regtest payout address"},
		{"bcrt1q" + strings.Repeat("q", 90), "longer than 90"},
		{"bcrt1q" + strings.Repeat("q", wire.MaxAddressLen), "address: longer than"},
		{42, "address: want a string"},
	} {
		r := c.call(wire.MethodAddUser, "carol", "pw", tc.addr)
		if r.errCode() != wire.CodeOther || !strings.Contains(string(r.Error), tc.want) {
			t.Errorf("add_user address %.30v: %s; want error 20 saying %q", tc.addr, r.raw, tc.want)
		}
	}
	if n := len(created()); n != 0 {
		t.Fatalf("refused calls created %d users", n)
	}
	for _, tc := range []struct {
		name string
		addr any
		want string
	}{
		{"carol", addr, addr},
		{"dora", strings.ToUpper(addr), addr}, // stored in canonical lower case
		{"erin", nil, ""},
		{"fred", "", ""},
	} {
		if r := c.call(wire.MethodAddUser, tc.name, "pw", tc.addr); string(r.Result) != "true" {
			t.Fatalf("add_user %s %v: %s", tc.name, tc.addr, r.raw)
		}
		all := created()
		if got := all[len(all)-1]; got.Name != tc.name || got.PayoutAddress != tc.want {
			t.Errorf("add_user %s %v created %+v, want address %q", tc.name, tc.addr, got, tc.want)
		}
	}
}
