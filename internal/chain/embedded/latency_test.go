package embedded

import (
	"slices"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
)

// latencyBlocks is how many blocks TestTipLatency measures.
const latencyBlocks = 200

// TestTipLatency measures, over latencyBlocks regtest blocks, the time from
// the chain connecting a block (the first thing our notification callback
// does) to the NewTip update being received by a consumer blocked on
// Updates, and from there to a fresh Template on the new tip. Run with -v
// to see the numbers; it asserts that every block produced its update and
// a template on it.
func TestTipLatency(t *testing.T) {
	cfg := testConfig(t)
	cfg.Logger = nil
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan time.Time, 1)
	n.testHookConnected = func() { connected <- time.Now() }
	t.Cleanup(runNode(t, n))
	ctx := testCtx(t)
	script := payoutScript(t, "latency")

	type report struct {
		update   chain.Update
		received time.Time
		built    time.Time
		tmpl     *chain.Template
		err      error
	}
	reports := make(chan report)
	go func() {
		defer close(reports)
		for u := range n.Updates() {
			r := report{update: u, received: time.Now()}
			r.tmpl, r.err = n.Template(ctx)
			r.built = time.Now()
			select {
			case reports <- r:
			case <-ctx.Done():
				return
			}
		}
	}()

	var toUpdate, toTemplate, total []time.Duration
	for i := range latencyBlocks {
		hashes, err := n.Generate(ctx, 1, script)
		if err != nil {
			t.Fatal(err)
		}
		start := <-connected
		r := <-reports
		if r.err != nil {
			t.Fatalf("block %d: template: %v", i+1, r.err)
		}
		if r.update.Kind != chain.NewTip || r.update.Tip != hashes[0] || r.tmpl.PrevHash != hashes[0] ||
			r.tmpl.Height != r.update.Height+1 {
			t.Fatalf("block %d: update %+v, template %d on %s", i+1, r.update, r.tmpl.Height, r.tmpl.PrevHash)
		}
		toUpdate = append(toUpdate, r.received.Sub(start))
		toTemplate = append(toTemplate, r.built.Sub(r.received))
		total = append(total, r.built.Sub(start))
	}
	t.Logf("over %d blocks: connected -> update received %s; update -> template %s; connected -> template %s",
		latencyBlocks, summarize(toUpdate), summarize(toTemplate), summarize(total))
}

// summarize returns the median, 90th percentile and maximum of ds.
func summarize(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return "p50 " + s[len(s)/2].String() + " p90 " + s[len(s)*9/10].String() + " max " + s[len(s)-1].String()
}
