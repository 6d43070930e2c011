package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/httpapi"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/stratum"
	"github.com/stratumd/stratumd/internal/testutil"
)

// fixedStats is a stratum server that reports the same counters always.
type fixedStats stratum.Stats

func (f fixedStats) Stats() stratum.Stats { return stratum.Stats(f) }

// apiFixture is the API over a seeded database and a tracker that heard
// some shares.
type apiFixture struct {
	*seeded
	clk *testutil.Clock
	tr  *httpapi.Tracker
	srv *httptest.Server
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	s := seed(t)
	clk := testutil.NewClock(s.now.Add(-time.Hour))
	tr := httpapi.NewTracker(httpapi.TrackerConfig{Now: clk.Now})
	clk.Advance(time.Hour)
	// In memory: alice rig1 (also in the database) and rig3 (only here).
	for i := range 6 {
		tr.ObserveShare(alice, "rig1", 100, s.now.Add(-time.Duration(i)*time.Minute))
	}
	tr.ObserveShare(alice, "rig3", 50, s.now.Add(-30*time.Second))
	tr.Sample()
	clk.Advance(time.Minute)
	tr.Sample()
	h, err := httpapi.New(httpapi.Config{
		Stratum: fixedStats{Connections: 3, Authorized: 2, Subscribed: 3, SharesAccepted: 42,
			LastJob: s.now.Add(45 * time.Second), JobHeight: 603, NetworkDifficulty: 1234.5},
		Store: s.st, Tracker: tr, Version: "test", Now: clk.Now,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return &apiFixture{seeded: s, clk: clk, tr: tr, srv: srv}
}

// get fetches path and decodes the JSON body into v (when not nil); it
// returns the status code.
func get(t *testing.T, base, path string, v any) int {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q, body %q", path, ct, body)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			t.Fatalf("GET %s: status %d with body %q: not a JSON error", path, resp.StatusCode, body)
		}
		return resp.StatusCode
	}
	if v != nil {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("GET %s: decode %q: %v", path, body, err)
		}
	}
	return resp.StatusCode
}

func TestAPIPool(t *testing.T) {
	f := newAPIFixture(t)
	var p httpapi.PoolJSON
	if code := get(t, f.srv.URL, "/api/pool", &p); code != 200 {
		t.Fatalf("status %d", code)
	}
	rate, users, workers := f.tr.Pool()
	if p.Hashrate != rate.Hashrate || !(p.Hashrate > 0) || p.SharesPerSecond != rate.SharesPerSecond ||
		p.Users != users || p.Users != 1 || p.Workers != workers || p.Workers != 2 || p.WindowSeconds != 600 {
		t.Errorf("rates %+v, tracker %+v %d %d", p, rate, users, workers)
	}
	if p.Miners != 2 || p.Connections != 3 || p.SharesAccepted != 42 {
		t.Errorf("counters %+v", p)
	}
	if p.Network.Height != 602 || p.Network.Difficulty != 1234.5 || p.TemplateAgeSeconds == nil || *p.TemplateAgeSeconds != 15 {
		t.Errorf("network %+v age %v", p.Network, p.TemplateAgeSeconds)
	}
	if !p.DatabaseOK || p.BlocksFound == nil || *p.BlocksFound != 2 ||
		p.Blocks["credited"] != 1 || p.Blocks["rejected"] != 1 || p.Blocks["orphaned"] != 1 || len(p.Blocks) != 3 {
		t.Errorf("blocks %+v found %v", p.Blocks, p.BlocksFound)
	}
	b3 := f.blocks["b3"]
	if p.LastBlock == nil || p.LastBlock.Hash != b3.Hash || p.LastBlock.Height != b3.Height ||
		p.LastBlock.Status != "orphaned" || !p.LastBlock.FoundAt.Equal(b3.FoundAt) || p.LastBlock.Reward != 5_000_000_000 {
		t.Errorf("last block %+v, want %+v", p.LastBlock, b3)
	}
}

func TestAPIHistory(t *testing.T) {
	f := newAPIFixture(t)
	var h httpapi.HistoryJSON
	get(t, f.srv.URL, "/api/pool/history", &h)
	want := f.tr.History()
	if len(h.Points) != 2 || len(want) != 2 || h.IntervalSeconds != 60 || h.WindowSeconds != 600 {
		t.Fatalf("history %+v", h)
	}
	for i, p := range h.Points {
		if p.Time != want[i].Time.Unix() || p.Hashrate != want[i].Hashrate || p.Workers != 2 || !(p.Hashrate > 0) {
			t.Errorf("point %d: %+v, want %+v", i, p, want[i])
		}
	}
	if h.Points[1].Time-h.Points[0].Time != 60 {
		t.Errorf("points %+v not a minute apart", h.Points)
	}
}

func TestAPIUser(t *testing.T) {
	f := newAPIFixture(t)
	var u httpapi.UserJSON
	get(t, f.srv.URL, "/api/users/alice", &u)
	mem, _ := f.tr.User(alice)
	if u.User != alice || u.Hashrate != mem.Rate.Hashrate || !(u.Hashrate > 0) || len(u.Workers) != 3 {
		t.Fatalf("alice %+v", u)
	}
	perHour := func(d float64) float64 { return d * 4294967296 / 3600 }
	lastOf := func(user, worker string) time.Time {
		var last time.Time
		for _, s := range f.shares {
			if s.Username == user && s.Worker == worker && s.Time.After(last) {
				last = s.Time
			}
		}
		return last
	}
	for i, w := range []struct {
		name     string
		mem      bool
		shares   int64
		diff     float64
		lastTime time.Time
	}{
		{"rig1", true, 10, 1000, f.now},
		{"rig2", false, 5, 1000, lastOf(alice, "rig2")},
		{"rig3", true, 0, 0, f.now.Add(-30 * time.Second)},
	} {
		got := u.Workers[i]
		if got.Name != w.name || got.Shares1h != w.shares || !near(got.Hashrate1h, perHour(w.diff)) ||
			(got.Hashrate > 0) != w.mem || got.LastShare == nil || !got.LastShare.Equal(w.lastTime) {
			t.Errorf("worker %d: %+v, want %+v", i, got, w)
		}
	}
	if u.LastShare == nil || !u.LastShare.Equal(f.now) {
		t.Errorf("last share %v", u.LastShare)
	}
	if u.Balance == nil || *u.Balance != (httpapi.BalanceJSON{Credited: 3_000_000_000, Paid: 1_000_000_000, Pending: 500_000_000, Balance: 1_500_000_000}) {
		t.Errorf("alice balance %+v", u.Balance)
	}

	get(t, f.srv.URL, "/api/users/bob", &u)
	if len(u.Workers) != 1 || u.Workers[0].Name != "rigA" || u.Workers[0].Shares1h != 3 ||
		!near(u.Workers[0].Hashrate1h, perHour(3000)) || u.Workers[0].Hashrate != 0 || u.Hashrate != 0 {
		t.Errorf("bob %+v", u)
	}
	if u.Balance == nil || *u.Balance != (httpapi.BalanceJSON{Credited: 1_950_000_000, Paid: 0, Pending: 700_000_000, Balance: 1_250_000_000}) {
		t.Errorf("bob balance %+v", u.Balance)
	}

	u = httpapi.UserJSON{}
	get(t, f.srv.URL, "/api/users/carol", &u)
	if u.User != carol || u.Workers == nil || len(u.Workers) != 0 || u.Balance != nil || u.LastShare != nil {
		t.Errorf("carol %+v", u)
	}
}

func TestAPIBlocks(t *testing.T) {
	f := newAPIFixture(t)
	var out struct{ Blocks []httpapi.BlockJSON }
	get(t, f.srv.URL, "/api/blocks", &out)
	want := []store.Block{f.blocks["b3"], f.blocks["b2"], f.blocks["b1"]}
	if len(out.Blocks) != 3 {
		t.Fatalf("blocks %+v", out.Blocks)
	}
	for i, b := range out.Blocks {
		w := want[i]
		if b.Hash != w.Hash || b.Height != w.Height || b.Status != string(w.Status) || b.User != w.Username ||
			b.Worker != w.Worker || b.NetworkDifficulty != 1000 || !b.FoundAt.Equal(w.FoundAt) {
			t.Errorf("block %d: %+v, want %+v", i, b, w)
		}
	}
	get(t, f.srv.URL, "/api/blocks?limit=2", &out)
	if len(out.Blocks) != 2 || out.Blocks[1].Hash != want[1].Hash {
		t.Errorf("limit 2: %+v", out.Blocks)
	}
}

func TestAPIPayments(t *testing.T) {
	f := newAPIFixture(t)
	var out struct{ Payments []httpapi.PaymentJSON }
	get(t, f.srv.URL, "/api/payments", &out)
	if len(out.Payments) != 3 {
		t.Fatalf("payments %+v", out.Payments)
	}
	failed, broadcast, confirmed := out.Payments[0], out.Payments[1], out.Payments[2]
	if failed.State != "failed" || broadcast.State != "broadcast" || confirmed.State != "confirmed" ||
		!(failed.ID > broadcast.ID && broadcast.ID > confirmed.ID) {
		t.Fatalf("order %+v", out.Payments)
	}
	if confirmed.Total != 1_000_000_000 || confirmed.Fee != 300 || confirmed.FeeRate != 2 ||
		confirmed.TxID != fmt.Sprintf("%064x", 0x7a1) || confirmed.BlockHash != fmt.Sprintf("%064x", 0xb1) ||
		len(confirmed.Outputs) != 1 || confirmed.Outputs[0] != (httpapi.OutputJSON{User: alice, Address: "bcrt1qaaaa", Amount: 1_000_000_000}) {
		t.Errorf("confirmed %+v", confirmed)
	}
	if len(broadcast.Outputs) != 2 || broadcast.Outputs[0].User != alice || broadcast.Outputs[1] != (httpapi.OutputJSON{User: bob, Address: "bcrt1qbbbb", Amount: 700_000_000}) ||
		broadcast.BlockHash != "" || broadcast.Fee != 450 {
		t.Errorf("broadcast %+v", broadcast)
	}
	if failed.TxID != "" || failed.Fee != 0 || len(failed.Outputs) != 1 {
		t.Errorf("failed %+v", failed)
	}

	get(t, f.srv.URL, "/api/payments?user=bob", &out)
	if len(out.Payments) != 2 || out.Payments[0].State != "failed" || out.Payments[1].State != "broadcast" {
		t.Fatalf("bob's payments %+v", out.Payments)
	}
	for _, p := range out.Payments {
		if len(p.Outputs) != 1 || p.Outputs[0].User != bob {
			t.Errorf("bob's payment %d shows outputs %+v", p.ID, p.Outputs)
		}
	}
	get(t, f.srv.URL, "/api/payments?user=alice&limit=1", &out)
	if len(out.Payments) != 1 || out.Payments[0].State != "broadcast" || out.Payments[0].Outputs[0].Amount != 500_000_000 {
		t.Errorf("alice limit 1: %+v", out.Payments)
	}
	get(t, f.srv.URL, "/api/payments?user=carol", &out)
	if out.Payments == nil || len(out.Payments) != 0 {
		t.Errorf("carol's payments %+v", out.Payments)
	}
}

// TestAPIBadInput: bad parameters get 400, unknown things 404, other
// methods 405, all with a JSON error body.
func TestAPIBadInput(t *testing.T) {
	f := newAPIFixture(t)
	for path, want := range map[string]int{
		"/api/users/nobody":                      404,
		"/api/users/alice.rig1":                  400,
		"/api/users/a%20b":                       400,
		"/api/users/a%0Ab":                       400,
		"/api/users/a%C3":                        400, // not UTF-8
		"/api/users/" + strings.Repeat("x", 129): 400,
		"/api/blocks?limit=0":                    400,
		"/api/blocks?limit=201":                  400,
		"/api/blocks?limit=-1":                   400,
		"/api/blocks?limit=ten":                  400,
		"/api/blocks?limit=1e2":                  400,
		"/api/payments?limit=0":                  400,
		"/api/payments?user=":                    400,
		"/api/payments?user=a.b":                 400,
		"/api/nothing":                           404,
		"/api/users/":                            404,
	} {
		if code := get(t, f.srv.URL, path, nil); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	for _, path := range []string{"/api/pool", "/api/blocks", "/metrics", "/"} {
		resp, err := http.Post(f.srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(string(body), `"error"`) {
			t.Errorf("POST %s: %d %q", path, resp.StatusCode, body)
		}
	}
	if code := get(t, f.srv.URL, "/api/blocks?limit=200", nil); code != 200 {
		t.Errorf("limit 200: %d", code)
	}
}

// downStore fails every query as an unreachable database does.
type downStore struct{}

var errDown = fmt.Errorf("connect: %w", store.ErrUnavailable)

func (downStore) BlockCounts(context.Context) (map[store.BlockStatus]int64, error) {
	return nil, errDown
}
func (downStore) Blocks(context.Context, int, ...store.BlockStatus) ([]store.Block, error) {
	return nil, errDown
}
func (downStore) UserByName(context.Context, string) (store.User, error) {
	return store.User{}, errDown
}
func (downStore) WorkerStats(context.Context, string, time.Time) ([]store.WorkerStat, error) {
	return nil, errDown
}
func (downStore) WorkerDetails(context.Context, string) ([]store.WorkerDetail, store.Round, error) {
	return nil, store.Round{}, errDown
}
func (downStore) UserBalance(context.Context, string) (store.Balance, error) {
	return store.Balance{}, errDown
}
func (downStore) Payments(context.Context, string, int) ([]store.Payment, error) { return nil, errDown }

// TestAPIDatabaseDown: endpoints that need PostgreSQL answer 503; the pool
// summary and the metrics still answer from memory.
func TestAPIDatabaseDown(t *testing.T) {
	tr := httpapi.NewTracker(httpapi.TrackerConfig{})
	tr.ObserveShare("u", "w", 1, time.Now())
	h, err := httpapi.New(httpapi.Config{Stratum: fixedStats{SharesAccepted: 1}, Store: downStore{}, Tracker: tr,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/users/u", "/api/blocks", "/api/payments?user=u"} {
		if code := get(t, srv.URL, path, nil); code != 503 {
			t.Errorf("GET %s: %d, want 503", path, code)
		}
	}
	var p httpapi.PoolJSON
	get(t, srv.URL, "/api/pool", &p)
	if p.DatabaseOK || p.BlocksFound != nil || p.LastBlock != nil || !(p.Hashrate > 0) || p.TemplateAgeSeconds != nil {
		t.Errorf("pool without database %+v", p)
	}
	e := scrape(t, srv.URL)
	if e.get(t, "stratumd_database_up") != 0 || e.get(t, "stratumd_shares_accepted_total") != 1 {
		t.Error("metrics without database wrong")
	}
	if _, ok := e.samples[key("stratumd_blocks", "status", "orphaned")]; ok {
		t.Error("block counts reported without a database")
	}
}

// TestWebPageServed: the page and its script and style come from the
// binary, with a content security policy that allows nothing else.
func TestWebPageServed(t *testing.T) {
	f := newAPIFixture(t)
	for path, want := range map[string]string{
		"/":          `<canvas id="chart"`,
		"/app.js":    "function drawChart",
		"/style.css": "canvas#chart",
	} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	if code := get(t, f.srv.URL, "/api/", nil); code != 404 {
		t.Errorf("/api/: %d", code)
	}
	resp, err := http.Get(f.srv.URL + "/nothing.html")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("/nothing.html: %d", resp.StatusCode)
	}
}
