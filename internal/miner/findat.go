package miner

import (
	"context"
	"fmt"
)

// FindShareAt hashes on job (one the pool sent: CurrentJob, Jobs or an
// Event's Job) at difficulty diff until a header meets it, and returns the
// share without submitting it. Unlike FindShare it stays on job when newer
// jobs arrive and takes the difficulty it is given, so that a test can
// play when a firmware takes a new mining.set_difficulty: cpuminer from
// the next mining.notify on (the job's own, job.Difficulty), cgminer at
// once and ESP-Miner when its job task dequeues a notify (the latest,
// Difficulty), including for a job sent before it; and hold the share as
// work in flight across a retarget. diff must be positive.
func (m *Miner) FindShareAt(ctx context.Context, job *Job, diff float64) (Share, error) {
	if job == nil || !(diff > 0) {
		return Share{}, fmt.Errorf("miner: find share: no job or difficulty %v", diff)
	}
	for {
		// search gives up a unit when a new job arrives; start another on
		// the same job.
		s, found, err := m.search(ctx, job, m.jobGen.Load(), diff)
		if err != nil || found {
			return s, err
		}
	}
}
