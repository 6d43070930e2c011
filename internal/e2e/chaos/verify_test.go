//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// storedShare is one row of the shares table.
type storedShare struct {
	key   shareKey
	spool string
	seq   int64
}

func queryShares(ctx context.Context, db string) ([]storedShare, error) {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT username, worker, job_id, share_difficulty, spool_id::text, seq FROM shares`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedShare
	for rows.Next() {
		var s storedShare
		if err := rows.Scan(&s.key.user, &s.key.worker, &s.key.job, &s.key.diff, &s.spool, &s.seq); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// audit is what the shares table says about a fleet's accepted shares.
type audit struct {
	acked      int
	stored     int // rows
	missing    []ack
	duplicated []shareKey // keys stored more than once
	unacked    int        // rows no miner saw accepted (in flight at a kill)
	outOfOrder []string   // acceptance order not kept
	spools     map[string]int
}

func (a *audit) String() string {
	return fmt.Sprintf("%d acknowledged, %d rows, %d missing, %d stored twice, %d stored but never acknowledged, %d out of order, spools %v",
		a.acked, a.stored, len(a.missing), len(a.duplicated), a.unacked, len(a.outOfOrder), a.spools)
}

// check compares acks with the shares table: every acknowledged share
// stored, none twice, and per spool, seq order = acceptance order: when a
// share's reply was read before another's submit was written, the first has
// the lower seq.
func check(acks []ack, rows []storedShare) *audit {
	a := &audit{acked: len(acks), stored: len(rows), spools: map[string]int{}}
	byKey := map[shareKey][]storedShare{}
	for _, r := range rows {
		byKey[r.key] = append(byKey[r.key], r)
		a.spools[r.spool]++
	}
	ackedKeys := map[shareKey]bool{}
	type placed struct {
		ack
		spool string
		seq   int64
	}
	var ps []placed
	for _, x := range acks {
		ackedKeys[x.key()] = true
		rs := byKey[x.key()]
		if len(rs) == 0 {
			a.missing = append(a.missing, x)
			continue
		}
		ps = append(ps, placed{x, rs[0].spool, rs[0].seq})
	}
	for k, rs := range byKey {
		if len(rs) > 1 {
			a.duplicated = append(a.duplicated, k)
		}
		if !ackedKeys[k] {
			a.unacked += len(rs)
		}
	}
	// Order: walk shares by submit time; the highest seq among shares whose
	// reply came before that submit must be below its seq.
	byAfter := append([]placed(nil), ps...)
	sort.Slice(byAfter, func(i, j int) bool { return byAfter[i].after.Before(byAfter[j].after) })
	byBefore := append([]placed(nil), ps...)
	sort.Slice(byBefore, func(i, j int) bool { return byBefore[i].before.Before(byBefore[j].before) })
	type best struct {
		seq int64
		p   placed
	}
	maxSeq := map[string]best{}
	j := 0
	for _, b := range byBefore {
		for ; j < len(byAfter) && byAfter[j].after.Before(b.before); j++ {
			x := byAfter[j]
			if m, ok := maxSeq[x.spool]; !ok || x.seq > m.seq {
				maxSeq[x.spool] = best{x.seq, x}
			}
		}
		if m, ok := maxSeq[b.spool]; ok && m.seq >= b.seq {
			a.outOfOrder = append(a.outOfOrder, fmt.Sprintf("share of miner %d (seq %d, submitted %s) after share of miner %d (seq %d, acknowledged %s)",
				b.miner, b.seq, b.before.Format(time.StampMicro), m.p.miner, m.seq, m.p.after.Format(time.StampMicro)))
		}
	}
	return a
}

// waitStored polls the shares table until every acknowledged share is in
// it (the drainer runs in another process: there is no event to wait on),
// then returns the audit.
func waitStored(t *testing.T, db string, acks []ack, timeout time.Duration) *audit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		rows, err := queryShares(ctx, db)
		var a *audit
		if err == nil {
			a = check(acks, rows)
			if len(a.missing) == 0 {
				return a
			}
		}
		select {
		case <-ctx.Done():
			if a == nil {
				t.Fatalf("query shares: %v", err)
			}
			return a
		case <-tick.C:
		}
	}
}

// reportAudit fails the test for every loss, duplicate or reordering.
func reportAudit(t *testing.T, a *audit) {
	t.Helper()
	t.Logf("audit: %v", a)
	t.Run("no_acknowledged_share_lost", func(t *testing.T) {
		for i, m := range a.missing {
			if i == 10 {
				t.Errorf("... and %d more", len(a.missing)-10)
				break
			}
			t.Errorf("acknowledged share not in PostgreSQL: miner %d %s.%s job %s diff %v submitted %s",
				m.miner, m.user, m.worker, m.job, m.diff, m.before.Format(time.StampMicro))
		}
		if a.acked == 0 {
			t.Error("no share was acknowledged at all")
		}
	})
	t.Run("none_stored_twice", func(t *testing.T) {
		for _, k := range a.duplicated {
			t.Errorf("stored twice: %+v", k)
		}
	})
	t.Run("order_kept", func(t *testing.T) {
		for i, o := range a.outOfOrder {
			if i == 10 {
				t.Errorf("... and %d more", len(a.outOfOrder)-10)
				break
			}
			t.Error(o)
		}
	})
}

// blockRows returns the hashes in the blocks table.
func blockRows(ctx context.Context, db string) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT hash, status FROM blocks`)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for rows.Next() {
		var h, s string
		if err := rows.Scan(&h, &s); err != nil {
			return nil, err
		}
		out[h] = s
	}
	return out, rows.Err()
}
