package stratum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	btcwire "github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

// tx returns a distinct non-coinbase transaction.
func testTx(n uint32) *btcwire.MsgTx {
	tx := btcwire.NewMsgTx(2)
	tx.AddTxIn(&btcwire.TxIn{PreviousOutPoint: btcwire.OutPoint{Index: n}, Sequence: btcwire.MaxTxInSequenceNum})
	tx.AddTxOut(btcwire.NewTxOut(1000, []byte{0x51}))
	return tx
}

func TestCleanJobsOnlyOnNewTip(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.JobInterval = time.Second }})
	c := h.dial()
	c.handshake(regtestAddress(t, 1) + ".w")
	if !c.clean {
		t.Error("first job not clean")
	}
	first := c.jobID

	h.clock.Advance(2 * time.Second)
	h.src.AddTx(testTx(1))
	e := h.waitJob()
	m := c.expect(wire.MethodNotify)
	if c.clean || c.jobID == first || c.jobID != e.job.ID {
		t.Errorf("mempool job: %s", m.raw)
	}
	var branch []string
	json.Unmarshal(m.Params[4], &branch)
	if len(branch) != 1 {
		t.Errorf("branch %v, want one hash (one transaction)", branch)
	}

	h.src.Advance()
	h.waitJob()
	m = c.expect(wire.MethodNotify)
	if !c.clean {
		t.Errorf("new tip job not clean: %s", m.raw)
	}
	// Job ids are unique and carry the instance id.
	if !strings.HasPrefix(c.jobID, "1") || c.jobID == first {
		t.Errorf("job id %q", c.jobID)
	}
}

func TestJobIntervalThrottlesMempoolJobs(t *testing.T) {
	h := startHarness(t, harnessOpts{config: func(c *Config) { c.JobInterval = 30 * time.Second }})
	c := h.dial()
	c.handshake(regtestAddress(t, 1) + ".w")
	jobs := h.srv.Stats().Jobs

	// Within the interval: no job, however often the mempool changes.
	for i := range 5 {
		h.clock.Advance(time.Second)
		h.src.AddTx(testTx(uint32(i)))
	}
	// A new tip is never throttled; it proves the updates were consumed.
	h.src.Advance()
	h.waitJob()
	c.expect(wire.MethodNotify)
	if !c.clean {
		t.Fatal("expected the new tip's job")
	}
	if got := h.srv.Stats().Jobs; got != jobs+1 {
		t.Fatalf("%d jobs built for 5 mempool changes within the interval and a tip, want 1", got-jobs)
	}
	// Once the interval has passed since the last job, the next change
	// builds one at once.
	h.clock.Advance(31 * time.Second)
	h.src.AddTx(testTx(99))
	h.waitJob()
	c.expect(wire.MethodNotify)
	if c.clean {
		t.Error("mempool job sent clean")
	}
}

// failingTemplates makes the source fail every template with err while
// fail holds, and serve regtest templates after.
func failingTemplates(fail *atomic.Bool, err error) func(*chaintest.Source) {
	return func(src *chaintest.Source) {
		inner := chaintest.New(&chaincfg.RegressionNetParams)
		inner.Now = src.Now
		src.TemplateFunc = func(ctx context.Context) (*chain.Template, error) {
			if fail.Load() {
				return nil, err
			}
			return inner.Template(ctx)
		}
	}
}

func TestNoTemplateYet(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	h := startHarness(t, harnessOpts{srcHook: failingTemplates(&fail, errors.New("template unavailable")), skipFirstJob: true})
	c := h.dial()
	c.call(wire.MethodSubscribe, "test/1.0") // a user agent: no client.get_version
	w := regtestAddress(t, 1) + ".w"
	if r := c.call(wire.MethodAuthorize, w, ""); string(r.Result) != "true" {
		t.Fatalf("authorize without a template: %s", r.raw)
	}
	c.expect(wire.MethodSetDifficulty)
	if r := c.call(wire.MethodSubmit, submitArgs(w, "1", make([]byte, 8), 0, 0)...); r.errCode() != wire.CodeJobNotFound {
		t.Errorf("submit without a job: %s", r.raw)
	}
	for h.srv.Stats().TemplateErrors == 0 {
		time.Sleep(time.Millisecond) // the job manager's first attempt
	}
	fail.Store(false)
	h.waitJob() // the retry with backoff
	c.expect(wire.MethodNotify)
	if !c.clean {
		t.Error("first job not clean")
	}
	if h.srv.Stats().TemplateErrors == 0 {
		t.Error("template errors not counted")
	}
}

// TestRefusedWhileNotSynced: while the node syncs, miners get a clear error
// and are disconnected; once it is synced they get work.
func TestRefusedWhileNotSynced(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	h := startHarness(t, harnessOpts{srcHook: failingTemplates(&fail, fmt.Errorf("embedded: %w", chain.ErrNotSynced)), skipFirstJob: true})
	for h.srv.Stats().TemplateErrors == 0 {
		time.Sleep(time.Millisecond) // the job manager's first attempt
	}
	c := h.dial()
	r := c.call(wire.MethodSubscribe)
	if r.errCode() != wire.CodeOther || !strings.Contains(string(r.raw), "not synced") {
		t.Fatalf("subscribe while syncing: %s", r.raw)
	}
	c.waitClosed()
	fail.Store(false)
	h.waitJob()
	c2 := h.dial()
	c2.handshake(regtestAddress(t, 2) + ".w")
	if c2.jobID == "" || !c2.clean {
		t.Fatal("no job once synced")
	}
}

func TestAliasLine(t *testing.T) {
	e := &jobEntry{job: &chain.Job{ID: "1a"}}
	e.notify = wire.EncodeNotify("1a", "p", "c1", "c2", nil, "v", "b", "t", false)
	got := string(e.aliasLine(12))
	want := string(wire.EncodeNotify("1a.12", "p", "c1", "c2", nil, "v", "b", "t", false))
	if got != want {
		t.Errorf("alias line\n%s\nwant\n%s", got, want)
	}
}
