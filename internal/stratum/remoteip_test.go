package stratum

import "testing"

func TestRemoteIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:3333":       "192.0.2.1",
		"[2001:db8::1]:3333":   "2001:db8::1",
		"[::ffff:192.0.2.1]:1": "192.0.2.1",
		"192.0.2.9":            "192.0.2.9",
		"not an address":       "",
		"":                     "",
	} {
		if got := remoteIP(in); got != want {
			t.Errorf("remoteIP(%q) = %q, want %q", in, got, want)
		}
	}
}
