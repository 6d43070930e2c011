package admission

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratumd/stratumd/internal/testutil"
)

func TestRefusalLog(t *testing.T) {
	var r refusalLog
	if _, ok := r.flush(); ok {
		t.Fatal("flush without a refusal reported a period")
	}
	now := testEpoch
	if !r.add(now, "10.0.0.1", RefusedRate) {
		t.Fatal("first refusal not reported as first")
	}
	for i := range 3000 {
		ip := "10.0.0.1"
		if i%3 != 0 {
			ip = "10.1.0." + strconv.Itoa(i) // many distinct addresses
		}
		why := RefusedRate
		if i%100 == 0 {
			why = RefusedBanned
		}
		if r.add(now.Add(time.Duration(i)*time.Millisecond), ip, why) {
			t.Fatalf("refusal %d reported as first of a period", i+2)
		}
	}
	s, ok := r.flush()
	if !ok || s.n != 3000 || !s.since.Equal(now) {
		t.Fatalf("summary: ok %v, %d refusals since %v; want 3000 since %v", ok, s.n, s.since, now)
	}
	if s.reasons[RefusedRate] != 2970 || s.reasons[RefusedBanned] != 30 {
		t.Fatalf("reasons %v", s.reasons)
	}
	if s.addrs != refusalLogAddrs {
		t.Fatalf("%d addresses counted, want the bound %d", s.addrs, refusalLogAddrs)
	}
	if len(s.top) != refusalLogTop+1 || s.top[0] != "10.0.0.1×1000" || s.top[len(s.top)-1] != "others×977" {
		t.Fatalf("top %v", s.top)
	}
	var buf bytes.Buffer
	s.log(slog.New(slog.NewTextHandler(&buf, nil)))
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "count=3000") || !strings.Contains(got, "per-IP connection rate: 2970") {
		t.Fatalf("summary line: %s", got)
	}
	// The period is closed: the next refusal starts a new one.
	if _, ok := r.flush(); ok {
		t.Fatal("second flush reported a period")
	}
	if !r.add(now.Add(time.Hour), "10.0.0.9", RefusedCap) {
		t.Fatal("refusal after a flush not first of a new period")
	}
	s, _ = r.flush()
	buf.Reset()
	s.log(slog.New(slog.NewTextHandler(&buf, nil)))
	if s.n != 0 || buf.Len() != 0 {
		t.Fatalf("a period with only its first refusal logged %q", buf.String())
	}
}

// TestRefusalSummary: Admit's refusals are logged once at once, then in
// one summary line when the period ends; the next refusal opens a new
// period. Runs in a synctest bubble, so the period's timer fires at once.
func TestRefusalSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testutil.SyncBuffer // the summary is written on the timer's goroutine
		c, err := New(Config{Limits: Limits{ConnRatePerIP: 1, ConnBurstPerIP: 1}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer c.FlushRefusals()
		if ok, _ := c.Admit("10.0.0.1", "10.0.0.1:1"); !ok {
			t.Fatal("first connection refused")
		}
		for i := range 3 {
			if ok, _ := c.Admit("10.0.0.1", "10.0.0.1:"+strconv.Itoa(i+2)); ok {
				t.Fatalf("connection %d over the burst admitted", i+2)
			}
		}
		if got := logs.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "connection refused; further refusals are summarized") ||
			!strings.Contains(got, "remote=10.0.0.1:2") || !strings.Contains(got, `why="per-IP connection rate"`) {
			t.Fatalf("log after 3 refusals:\n%s", got)
		}
		time.Sleep(RefusalLogPeriod - time.Nanosecond)
		synctest.Wait()
		if n := strings.Count(logs.String(), "\n"); n != 1 {
			t.Fatalf("%d log lines before the period ended", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		got := logs.String()
		if strings.Count(got, "\n") != 2 || !strings.Contains(got, `connections refused" count=2`) || !strings.Contains(got, "top=10.0.0.1×2") {
			t.Fatalf("log after the period:\n%s", got)
		}
		// A new period: its first refusal is logged at once again, and
		// FlushRefusals logs what it counted after that.
		c.Admit("10.0.0.2", "10.0.0.2:1")
		c.Admit("10.0.0.2", "10.0.0.2:2")
		c.Admit("10.0.0.2", "10.0.0.2:3")
		c.FlushRefusals()
		got = logs.String()
		if strings.Count(got, "\n") != 4 || !strings.Contains(got, "remote=10.0.0.2:2") || !strings.Contains(got, "count=1") {
			t.Fatalf("log after a second period:\n%s", got)
		}
		if st := c.Stats(); st.Refused != 5 || st.RefusedRate != 5 {
			t.Fatalf("stats %+v", st)
		}
	})
}
