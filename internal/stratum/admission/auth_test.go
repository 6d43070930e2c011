package admission

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func key(user, pw string) AuthKey { return AuthKey{User: user, Password: sha256.Sum256([]byte(pw))} }

func TestAuthCaches(t *testing.T) {
	c, clock, _ := newTest(t, Limits{})
	const ip = "192.0.2.1"
	if v := c.AuthShortcut(ip, key("alice", "pw")); v != AuthCheck {
		t.Fatalf("unknown pair: %v, want a check", v)
	}
	c.AuthSucceeded(key("alice", "pw"))
	c.AuthFailed(ip, key("alice", "wrong"))
	// The remembered pairs answer from any address; other pairs are checked.
	for _, ip := range []string{ip, "192.0.2.2"} {
		if v := c.AuthShortcut(ip, key("alice", "pw")); v != AuthCached {
			t.Errorf("cached success from %s: %v", ip, v)
		}
		if v := c.AuthShortcut(ip, key("alice", "wrong")); v != AuthKnownBad {
			t.Errorf("remembered failure from %s: %v", ip, v)
		}
		if v := c.AuthShortcut(ip, key("alice", "wrong2")); v != AuthCheck {
			t.Errorf("another wrong password from %s: %v", ip, v)
		}
	}
	// Up to its TTL a pair is remembered; after, it is checked again.
	clock.Advance(AuthFailTTL)
	if v := c.AuthShortcut(ip, key("alice", "wrong")); v != AuthKnownBad {
		t.Errorf("failure at its TTL: %v", v)
	}
	clock.Advance(time.Nanosecond)
	if v := c.AuthShortcut(ip, key("alice", "wrong")); v != AuthCheck {
		t.Errorf("failure after its TTL: %v", v)
	}
	clock.Advance(AuthCacheTTL - AuthFailTTL - time.Nanosecond)
	if v := c.AuthShortcut(ip, key("alice", "pw")); v != AuthCached {
		t.Errorf("success at its TTL: %v", v)
	}
	clock.Advance(time.Nanosecond)
	if v := c.AuthShortcut(ip, key("alice", "pw")); v != AuthCheck {
		t.Errorf("success after its TTL: %v", v)
	}
}

func TestAuthCacheBound(t *testing.T) {
	c, clock, _ := newTest(t, Limits{})
	for i := range AuthCacheMax / 2 {
		c.AuthSucceeded(key(fmt.Sprint("old", i), "pw"))
	}
	clock.Advance(AuthCacheTTL + time.Nanosecond)
	for i := range AuthCacheMax / 2 {
		c.AuthSucceeded(key(fmt.Sprint("new", i), "pw"))
	}
	// Full: the expired keys go first.
	c.AuthSucceeded(key("one-more", "pw"))
	if n := len(c.authOK.m); n != AuthCacheMax/2+1 {
		t.Fatalf("%d keys, want %d (the expired half forgotten)", n, AuthCacheMax/2+1)
	}
	for i := range AuthCacheMax/2 - 1 {
		c.AuthSucceeded(key(fmt.Sprint("more", i), "pw"))
	}
	// Full with nothing expired: everything goes.
	c.AuthSucceeded(key("last", "pw"))
	if n := len(c.authOK.m); n != 1 || c.AuthShortcut("192.0.2.1", key("last", "pw")) != AuthCached {
		t.Fatalf("%d keys after a full set was cleared, want 1, the new one", n)
	}
}

func TestAuthLimitPerAddress(t *testing.T) {
	c, clock, logs := newTest(t, Limits{})
	const ip, other = "192.0.2.1", "198.51.100.7"
	c.AuthSucceeded(key("farm", "farmpw")) // a farm's password, cached first
	for i := range AuthFailuresPerIP {
		if v := c.AuthShortcut(ip, key("alice", fmt.Sprint("guess", i))); v != AuthCheck {
			t.Fatalf("guess %d: %v, want a check", i, v)
		}
		c.AuthFailed(ip, key("alice", fmt.Sprint("guess", i)))
	}
	// Over the limit: new pairs are refused unchecked...
	if v := c.AuthShortcut(ip, key("alice", "pw")); v != AuthLimited {
		t.Errorf("new pair over the limit: %v", v)
	}
	// ...remembered failures still answer as such, cached successes pass,
	// and another address is checked as usual.
	if v := c.AuthShortcut(ip, key("alice", "guess0")); v != AuthKnownBad {
		t.Errorf("remembered failure over the limit: %v", v)
	}
	if v := c.AuthShortcut(ip, key("farm", "farmpw")); v != AuthCached {
		t.Errorf("cached success over the limit: %v", v)
	}
	if v := c.AuthShortcut(other, key("alice", "pw")); v != AuthCheck {
		t.Errorf("other address: %v", v)
	}
	if v := c.AuthShortcut(ip, key("alice", "pw2")); v != AuthLimited {
		t.Errorf("second refusal: %v", v)
	}
	// A success does not reset the count.
	c.AuthSucceeded(key("alice", "pw"))
	if v := c.AuthShortcut(ip, key("alice", "pw3")); v != AuthLimited {
		t.Errorf("after a success: %v", v)
	}
	// One warning per address and window, with the address.
	if n := strings.Count(logs.String(), "too many failed authorizations"); n != 1 || !strings.Contains(logs.String(), "ip="+ip) {
		t.Fatalf("%d limit warnings, want 1 naming the address:\n%s", n, logs.String())
	}
	// The window ends AuthFailWindow after its first failure.
	clock.Advance(AuthFailWindow - time.Nanosecond)
	if v := c.AuthShortcut(ip, key("alice", "later")); v != AuthLimited {
		t.Errorf("just before the window ended: %v", v)
	}
	clock.Advance(time.Nanosecond)
	if v := c.AuthShortcut(ip, key("alice", "later")); v != AuthCheck {
		t.Errorf("after the window: %v", v)
	}
	// Over the limit again in a new window: warned again.
	for i := range AuthFailuresPerIP {
		c.AuthFailed(ip, key("alice", fmt.Sprint("again", i)))
	}
	c.AuthShortcut(ip, key("alice", "again-over"))
	c.AuthShortcut(ip, key("alice", "again-over2"))
	if n := strings.Count(logs.String(), "too many failed authorizations"); n != 2 {
		t.Errorf("%d limit warnings after two windows, want 2", n)
	}
}

func TestAdminLimits(t *testing.T) {
	c, clock, _ := newTest(t, Limits{})
	const ip = "192.0.2.1"
	for i := range AdminFailuresPerIP {
		if !c.AdminAllowed(ip) {
			t.Fatalf("attempt %d refused", i+1)
		}
		c.AdminFailed(ip)
	}
	if c.AdminAllowed(ip) {
		t.Fatalf("allowed after %d failures", AdminFailuresPerIP)
	}
	if !c.AdminAllowed("192.0.2.2") {
		t.Fatal("another address refused")
	}
	clock.Advance(AdminWindow)
	if !c.AdminAllowed(ip) {
		t.Fatal("refused after the window")
	}
	// All addresses together.
	for i := range AdminFailuresGlobal {
		ip := fmt.Sprint("198.51.100.", i)
		if !c.AdminAllowed(ip) {
			t.Fatalf("global attempt %d refused", i+1)
		}
		c.AdminFailed(ip)
	}
	if c.AdminAllowed("203.0.113.1") {
		t.Fatalf("a fresh address allowed after %d failures overall", AdminFailuresGlobal)
	}
	clock.Advance(AdminWindow)
	if !c.AdminAllowed("203.0.113.1") {
		t.Fatal("refused after the global window")
	}
	// mining.add_user.
	for i := range AddUsersPerWindow {
		if !c.AddUserAllowed() {
			t.Fatalf("add_user %d refused", i+1)
		}
	}
	if c.AddUserAllowed() {
		t.Fatalf("add_user allowed beyond %d", AddUsersPerWindow)
	}
	clock.Advance(AdminWindow)
	if !c.AddUserAllowed() {
		t.Fatal("add_user refused after the window")
	}
}

// TestArgonSlots: no more than ArgonSlots holders at once; a waiter gets
// the next free slot, or its context's error.
func TestArgonSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{ArgonSlots: 2})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		var held, most atomic.Int32
		for range 6 {
			go func() {
				if err := c.AcquireArgon(ctx); err != nil {
					t.Error(err)
					return
				}
				n := held.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(30 * time.Millisecond) // an argon2 check, on the bubble's clock
				held.Add(-1)
				c.ReleaseArgon()
			}()
		}
		synctest.Wait()
		if n := held.Load(); n != 2 {
			t.Fatalf("%d holders while 6 wait, want 2", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n, m := held.Load(), most.Load(); n != 0 || m != 2 {
			t.Fatalf("%d holders at the end, at most %d; want 0 and 2", n, m)
		}
		// Both slots taken: a waiter whose context ends gets its error.
		for i := range 2 {
			if err := c.AcquireArgon(ctx); err != nil {
				t.Fatalf("free slot %d not given: %v", i+1, err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := c.AcquireArgon(wctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting with all slots taken: %v, want the context's error", err)
		}
		c.ReleaseArgon()
		c.ReleaseArgon()
	})
}
