package httpapi_test

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/stratumd/stratumd/internal/httpapi"
)

// TestMetricsAuthCounters: the stratum server's authorization counters
// are exposed as counters with help text.
func TestMetricsAuthCounters(t *testing.T) {
	tr := httpapi.NewTracker(httpapi.TrackerConfig{})
	h, err := httpapi.New(httpapi.Config{Stratum: fixedStats{AuthFailures: 7, AuthRefused: 1234},
		Store: downStore{}, Tracker: tr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	e := scrape(t, srv.URL)
	for name, want := range map[string]float64{"stratumd_auth_failures_total": 7, "stratumd_auth_refused_total": 1234} {
		if e.types[name] != "counter" || e.help[name] == "" {
			t.Errorf("%s: type %q help %q", name, e.types[name], e.help[name])
		}
		if got := e.get(t, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
