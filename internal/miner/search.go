package miner

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"

	"github.com/stratumd/stratumd/internal/chain"
)

// checkEvery is how many nonces are hashed (about a millisecond) between
// checks for a new job or a cancelled context. The hashing goroutine also
// yields there, so that on a busy box the reader goroutines (which time
// replies and notifies) are not left waiting for preemption.
const checkEvery = 1 << 12

// FindShare hashes on the newest job until a header meets the share target
// (of the larger of the job's difficulty and the latest set_difficulty; 1
// before any) and returns the share without submitting it. Each attempt
// takes a fresh extranonce2 (a per-Miner counter) and, with version rolling,
// fresh version bits inside the mask; the nonce runs from 0. A new job makes
// it start over on that job. It is safe to call from several goroutines,
// which then search different extranonce2 values.
func (m *Miner) FindShare(ctx context.Context) (Share, error) {
	for {
		gen := m.jobGen.Load()
		job := m.CurrentJob()
		if job == nil {
			if _, err := m.WaitEvent(ctx, func(e Event) bool { return e.Job != nil }); err != nil {
				return Share{}, err
			}
			continue
		}
		diff := max(job.Difficulty, m.Difficulty())
		if diff <= 0 {
			diff = 1
		}
		s, found, err := m.search(ctx, job, gen, diff)
		if err != nil || found {
			return s, err
		}
	}
}

// search scans the nonce range of one extranonce2 / version-bits unit of
// job. It gives up (found false) when a newer job arrives.
func (m *Miner) search(ctx context.Context, job *Job, gen uint64, diff float64) (Share, bool, error) {
	u := m.unit.Add(1)
	en2 := make([]byte, job.Extranonce2Size)
	putCounter(en2, u)
	var vbits uint32
	if job.VersionMask != 0 {
		vbits = scatter(u, job.VersionMask)
	}
	version := RolledVersion(job.Version, job.VersionMask, vbits)
	target := chain.NewTarget(chain.DifficultyToTarget(diff))

	var hdr [80]byte
	job.fillHeader(&hdr, job.MerkleRoot(en2), job.NTime, version)
	for nonce := uint32(0); ; nonce++ {
		binary.LittleEndian.PutUint32(hdr[76:], nonce)
		h := doubleSHA(&hdr)
		if target.Meets(&h) {
			net := job.NetworkTarget()
			return Share{
				JobID:          job.ID,
				Extranonce2:    en2,
				NTime:          job.NTime,
				Nonce:          nonce,
				VersionBits:    vbits,
				HasVersionBits: job.VersionMask != 0,
				Version:        version,
				Hash:           h,
				Difficulty:     diff,
				MeetsNetwork:   net.Meets(&h),
			}, true, nil
		}
		if nonce%checkEvery == checkEvery-1 {
			if err := ctx.Err(); err != nil {
				return Share{}, false, fmt.Errorf("miner: find share: %w", err)
			}
			if m.jobGen.Load() != gen {
				return Share{}, false, nil
			}
			if err := m.Err(); err != nil {
				return Share{}, false, err
			}
			runtime.Gosched()
		}
		if nonce == math.MaxUint32 {
			return Share{}, false, nil
		}
	}
}
