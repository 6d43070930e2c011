package stratum

import (
	"testing"
	"time"
)

func TestAdminCalls(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true, config: func(c *Config) {
		c.AdminPassword = "hunter2"
		c.Auth = AuthPassword
	}})
	c := h.dial()
	if r := c.call(MethodAddUser, "carol", "pw"); r.errCode() != CodeUnauthorized {
		t.Errorf("add_user without admin: %s", r.raw)
	}
	if r := c.call(MethodAuthorizeAdmin, "wrong"); r.errCode() != CodeUnauthorized {
		t.Errorf("wrong admin password: %s", r.raw)
	}
	if r := c.call(MethodAuthorizeAdmin, "hunter2"); string(r.Result) != "true" {
		t.Fatalf("admin login: %s", r.raw)
	}
	if r := c.call(MethodAddUser, "carol", "pw"); string(r.Result) != "true" {
		t.Fatalf("add_user: %s", r.raw)
	}
	if r := c.call(MethodAddUser, "carol", "pw2"); r.errCode() != CodeOther {
		t.Errorf("add_user twice: %s", r.raw)
	}
	if r := c.call(MethodAddUser, "bad.name", "pw"); r.errCode() != CodeOther {
		t.Errorf("invalid name: %s", r.raw)
	}
	// The new user can mine.
	m := h.dial()
	m.call(MethodSubscribe)
	if r := m.call(MethodAuthorize, "carol.rig", "pw"); string(r.Result) != "true" {
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
	for i := range adminFailuresPerIP {
		if r := c.call(MethodAuthorizeAdmin, "guess"); r.errCode() != CodeUnauthorized {
			t.Fatalf("attempt %d: %s", i, r.raw)
		}
	}
	// Refused without checking, even with the right password.
	if r := c.call(MethodAuthorizeAdmin, "hunter2"); r.errCode() != CodeOther {
		t.Errorf("after %d failures: %s", adminFailuresPerIP, r.raw)
	}
	h.clock.Advance(adminWindow + time.Second)
	if r := c.call(MethodAuthorizeAdmin, "hunter2"); string(r.Result) != "true" {
		t.Errorf("after the window: %s", r.raw)
	}
}

func TestAdminDisabled(t *testing.T) {
	h := startHarness(t, harnessOpts{noRun: true})
	c := h.dial()
	if r := c.call(MethodAuthorizeAdmin, "anything"); r.errCode() != CodeOther {
		t.Errorf("admin with no password configured: %s", r.raw)
	}
	if r := c.call(MethodAddUser, "dave", "pw"); r.errCode() != CodeUnauthorized {
		t.Errorf("add_user: %s", r.raw)
	}
}
