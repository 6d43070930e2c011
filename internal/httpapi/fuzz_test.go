package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stratumd/stratumd/internal/httpapi"
	"github.com/stratumd/stratumd/internal/store"
)

// emptyStore answers every query with nothing (an empty pool).
type emptyStore struct{}

func (emptyStore) BlockCounts(context.Context) (map[store.BlockStatus]int64, error) {
	return map[store.BlockStatus]int64{}, nil
}
func (emptyStore) Blocks(context.Context, int, ...store.BlockStatus) ([]store.Block, error) {
	return nil, nil
}
func (emptyStore) UserByName(_ context.Context, name string) (store.User, error) {
	return store.User{Name: name}, nil
}
func (emptyStore) WorkerStats(context.Context, string, time.Time) ([]store.WorkerStat, error) {
	return nil, nil
}
func (emptyStore) WorkerDetails(context.Context, string) ([]store.WorkerDetail, store.Round, error) {
	return nil, store.Round{}, nil
}
func (emptyStore) UserBalance(context.Context, string) (store.Balance, error) {
	return store.Balance{}, store.ErrNotFound
}
func (emptyStore) Payments(context.Context, string, int) ([]store.Payment, error) { return nil, nil }

// FuzzMetricsLabels: whatever user and worker names the tracker hears,
// /metrics stays valid exposition text and the user label reads back
// exactly.
func FuzzMetricsLabels(f *testing.F) {
	for _, s := range []string{"alice", `a"b`, `back\slash`, "new\nline", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "", "{}=,"} {
		f.Add(s, "rig")
	}
	f.Fuzz(func(t *testing.T, user, worker string) {
		if !utf8.ValidString(user) || user == "" {
			t.Skip("label values are UTF-8; the server only sees valid user names")
		}
		tr := httpapi.NewTracker(httpapi.TrackerConfig{})
		tr.ObserveShare(user, worker, 1, time.Now())
		h, err := httpapi.New(httpapi.Config{Stratum: fixedStats{}, Store: emptyStore{}, Tracker: tr,
			Version: worker, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		e, err := parseExposition(rec.Body)
		if err != nil {
			t.Fatalf("user %q: %v", user, err)
		}
		if v, ok := e.samples[key("stratumd_user_hashrate", "user", user)]; !ok || !(v > 0) {
			t.Fatalf("user %q: series missing or zero (%v)", user, v)
		}
	})
}

// FuzzAPIRequests: any path and query gets a JSON answer with a status the
// API documents, never a panic.
func FuzzAPIRequests(f *testing.F) {
	for _, s := range []string{"/api/pool", "/api/users/alice", "/api/users/a.b", "/api/blocks?limit=5",
		"/api/blocks?limit=-1", "/api/payments?user=x&limit=200", "/api/payments?user=%00", "/api/users/%ff",
		"/api/pool/history", "/api/x/y/z", "/api/users/" + strings.Repeat("z", 200)} {
		f.Add(s)
	}
	tr := httpapi.NewTracker(httpapi.TrackerConfig{})
	h, err := httpapi.New(httpapi.Config{Stratum: fixedStats{}, Store: emptyStore{}, Tracker: tr,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/api/") {
			t.Skip()
		}
		req, err := http.NewRequest("GET", "http://x"+target, nil)
		if err != nil {
			t.Skip("not a request target")
		}
		rec := httptest.NewRecorder()
		h.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 404:
		case 301, 307, 308: // the mux cleaning a path
			return
		default:
			t.Fatalf("%s: status %d", target, rec.Code)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s: %d body %q is not a JSON object", target, rec.Code, rec.Body.Bytes())
		}
		if _, hasErr := v["error"]; (rec.Code != 200) != hasErr {
			t.Fatalf("%s: status %d with body %q", target, rec.Code, rec.Body.Bytes())
		}
	})
}
