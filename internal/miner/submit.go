package miner

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// Share is a mining.submit: the five (or, with version rolling, six) params
// and, when FindShare made it, what the miner computed for it.
type Share struct {
	// Worker is the submitting worker; the first authorized worker when
	// empty.
	Worker string
	// JobID is the job the share solves.
	JobID string
	// Extranonce2 is sent as lowercase hex.
	Extranonce2 []byte
	// NTime and Nonce are sent as 8 hex digits, big-endian.
	NTime, Nonce uint32
	// VersionBits are the rolled bits (masked), sent as the 6th param when
	// HasVersionBits is set, as ESP-Miner does.
	VersionBits    uint32
	HasVersionBits bool

	// Version is the full header version hashed.
	Version uint32
	// Hash is the block hash the miner computed.
	Hash chainhash.Hash
	// Difficulty is the share difficulty the miner searched at.
	Difficulty float64
	// MeetsNetwork reports whether Hash also meets the job's nbits target:
	// the share is a block.
	MeetsNetwork bool
}

// Result is a submitted share and the pool's reply.
type Result struct {
	Share
	// Accepted is true when the pool replied result true without an error.
	Accepted bool
	// Error is the pool's error member, nil when there was none.
	Error *RPCError
	// Latency is the time from writing the submit to reading the reply.
	Latency time.Duration
}

// Submit sends s with mining.submit and waits for the reply. A rejection is
// not an error: it is in Result.Accepted and Result.Error. The error is for
// the connection or the context.
func (m *Miner) Submit(ctx context.Context, s Share) (Result, error) {
	ch := make(chan struct {
		r   Result
		err error
	}, 1)
	if err := m.SubmitAsync(s, func(r Result, err error) {
		ch <- struct {
			r   Result
			err error
		}{r, err}
	}); err != nil {
		return Result{Share: s}, err
	}
	select {
	case out := <-ch:
		return out.r, out.err
	case <-ctx.Done():
		return Result{Share: s}, fmt.Errorf("miner: submit: %w", ctx.Err())
	}
}

// SubmitAsync sends s with mining.submit and returns at once; done is
// called from the reader goroutine with the reply, or with the error that
// ended the connection (and must not block). An error from SubmitAsync
// itself means the submit was not sent and done will not be called.
func (m *Miner) SubmitAsync(s Share, done func(Result, error)) error {
	if s.Worker == "" {
		s.Worker = m.defaultWorker()
	}
	id := m.nextID.Add(1)
	line := encodeSubmit(id, &s)
	var (
		sent    sentAt
		sendErr error
	)
	ready := make(chan struct{}) // closed once sent and sendErr are set
	sent, sendErr = m.sendLine(id, line, func(r reply, err error) {
		<-ready
		if sendErr != nil {
			return // SubmitAsync reported the failure
		}
		res := Result{Share: s}
		if err != nil {
			done(res, err)
			return
		}
		res.Error = r.err
		res.Accepted = r.err == nil && string(r.result) == "true"
		res.Latency = r.at.Sub(m.sentTime(sent))
		done(res, nil)
	})
	close(ready)
	return sendErr
}

// defaultWorker is the worker shares are submitted under.
func (m *Miner) defaultWorker() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.authOK) > 0 {
		return m.authOK[0]
	}
	return m.workers[0]
}

// encodeSubmit builds a mining.submit line in cpuminer's layout.
func encodeSubmit(id uint64, s *Share) []byte {
	worker, _ := json.Marshal(s.Worker) // a string always encodes
	jobID, _ := json.Marshal(s.JobID)
	b := make([]byte, 0, 128+len(worker)+len(jobID)+2*len(s.Extranonce2))
	b = append(b, `{"method": "mining.submit", "params": [`...)
	b = append(b, worker...)
	b = append(b, ", "...)
	b = append(b, jobID...)
	b = append(b, `, "`...)
	b = hex.AppendEncode(b, s.Extranonce2)
	b = append(b, `", "`...)
	b = appendHex32(b, s.NTime)
	b = append(b, `", "`...)
	b = appendHex32(b, s.Nonce)
	b = append(b, '"')
	if s.HasVersionBits {
		b = append(b, `, "`...)
		b = appendHex32(b, s.VersionBits)
		b = append(b, '"')
	}
	b = append(b, `], "id": `...)
	b = strconv.AppendUint(b, id, 10)
	return append(b, "}\n"...)
}

func appendHex32(b []byte, v uint32) []byte {
	var raw [4]byte
	binary.BigEndian.PutUint32(raw[:], v)
	return hex.AppendEncode(b, raw[:])
}

// Mine finds and submits n shares one after the other and returns their
// results, rejected ones included. It stops early with the results so far
// and an error when ctx ends or the connection fails.
func (m *Miner) Mine(ctx context.Context, n int) ([]Result, error) {
	results := make([]Result, 0, n)
	for len(results) < n {
		s, err := m.FindShare(ctx)
		if err != nil {
			return results, err
		}
		r, err := m.Submit(ctx, s)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}
