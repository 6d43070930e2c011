package miner

import (
	"testing"

	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
)

// FindShareAt stays on the job it is given after a newer one arrives, at
// the difficulty it is given; the pool accepts the share under that job's
// id.
func TestFindShareAtOlderJob(t *testing.T) {
	ctx := testContext(t)
	p := startPool(t, stratumtest.Config{}, hardBits, 1)
	m := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(5)})
	first := m.CurrentJob()
	p.Source.AddTx(witnessTx(0x81))
	if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil && e.Job.ID != first.ID }); err != nil {
		t.Fatal(err)
	}
	s, err := m.FindShareAt(ctx, first, 2*stratumtest.DefaultDifficulty)
	if err != nil {
		t.Fatal(err)
	}
	target := first.ShareTarget()
	if s.JobID != first.ID || s.Difficulty != 2*stratumtest.DefaultDifficulty || !target.Meets(&s.Hash) {
		t.Fatalf("share on job %s at %v, want job %s at %v", s.JobID, s.Difficulty, first.ID, 2*stratumtest.DefaultDifficulty)
	}
	r, err := m.Submit(ctx, s)
	if err != nil || !r.Accepted {
		t.Fatalf("share on the older job: %+v, %v", r.Error, err)
	}
	if _, err := m.FindShareAt(ctx, nil, 1); err == nil {
		t.Error("FindShareAt without a job: no error")
	}
	if _, err := m.FindShareAt(ctx, first, 0); err == nil {
		t.Error("FindShareAt at difficulty 0: no error")
	}
}
