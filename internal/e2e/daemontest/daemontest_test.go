package daemontest

import "testing"

// A "server" attribute as stratumd logged it at stop (fmt "%+v" of
// stratum.Stats), durations and times included.
const loggedStats = "{Connections:0 ConnectionsTotal:1631 Refused:3 Subscribed:0 Authorized:0 SharesAccepted:152201 " +
	"SharesRejected:map[duplicate:0 extranonce2-size:0 invalid-params:78 not-recorded:1 stale:10848] BlocksFound:13904 " +
	"BlocksRejected:0 Bans:5 Malformed:15 Panics:0 Jobs:13641 LastFanout:145.567µs MaxFanout:1.146154186s " +
	"LastFanoutStart:2026-11-25 16:12:24.617748674 +0000 UTC WriteTimeouts:2 JobHeight:13641 NetworkDifficulty:4.6565423739069247e-10 " +
	"SessionsClosed:map[handshake-timeout:4 hung-up:1600 line-too-long:2 write-timeout:2]}"

func TestParseServerStats(t *testing.T) {
	st := ParseServerStats(loggedStats)
	for k, want := range map[string]int64{"ConnectionsTotal": 1631, "Refused": 3, "SharesAccepted": 152201,
		"BlocksFound": 13904, "Bans": 5, "Malformed": 15, "Panics": 0, "WriteTimeouts": 2, "JobHeight": 13641} {
		if got, ok := st.Counters[k]; !ok || got != want {
			t.Errorf("%s = %d (%v), want %d", k, got, ok, want)
		}
	}
	for _, k := range []string{"LastFanout", "MaxFanout", "NetworkDifficulty"} {
		if _, ok := st.Counters[k]; ok {
			t.Errorf("%s parsed as a counter", k)
		}
	}
	for k, want := range map[string]int64{"invalid-params": 78, "not-recorded": 1, "stale": 10848, "duplicate": 0} {
		if got := st.Rejected[k]; got != want {
			t.Errorf("rejected %s = %d, want %d", k, got, want)
		}
	}
	for k, want := range map[string]int64{"hung-up": 1600, "handshake-timeout": 4, "line-too-long": 2, "write-timeout": 2} {
		if got := st.Closed[k]; got != want {
			t.Errorf("closed %s = %d, want %d", k, got, want)
		}
	}
	for _, k := range []string{"duplicate", "up", "timeout", "long"} {
		if _, ok := st.Counters[k]; ok {
			t.Errorf("a map entry %q leaked into the counters", k)
		}
	}
}

func TestLineAttributes(t *testing.T) {
	l := Line{"msg": "stratum: handshake timeout", "remote": "127.0.1.7:40312", "height": float64(12)}
	if l.Msg() != "stratum: handshake timeout" || l.RemoteIP() != "127.0.1.7" || l.Str("height") != "12" || l.Str("none") != "" {
		t.Fatalf("msg %q ip %q height %q", l.Msg(), l.RemoteIP(), l.Str("height"))
	}
}
