package store_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/store/spool"
)

func sampleShare(i int, at time.Time) store.Share {
	return store.Share{
		Time:            at.Add(time.Duration(i) * time.Millisecond),
		Username:        fmt.Sprintf("user%d", i%7),
		Worker:          fmt.Sprintf("rig%d", i%3),
		JobID:           fmt.Sprintf("%x", i/100),
		Height:          int32(800000 + i/1000),
		Difficulty:      1024,
		ShareDifficulty: 1024 + float64(i),
		InstanceID:      3,
		RemoteAddr:      "203.0.113.7",
	}
}

func TestShareEncoding(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	s := sampleShare(5, at)
	s.Worker = "" // an empty worker is allowed
	b, err := store.AppendShare(nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.DecodeShare(b)
	if err != nil {
		t.Fatal(err)
	}
	if got != s {
		t.Fatalf("round trip: got %+v, want %+v", got, s)
	}
	// Every truncation fails cleanly.
	for n := range len(b) {
		if _, err := store.DecodeShare(b[:n]); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	if _, err := store.DecodeShare(append(b, 0)); !errors.Is(err, store.ErrInvalid) {
		t.Fatal("trailing byte accepted")
	}
	// A block-solving share carries its block.
	s.Block = &store.BlockFound{Hash: [32]byte{1, 2, 3}, PrevHash: [32]byte{9}, Reward: 312500000,
		NetworkDifficulty: 1.2e14, Status: store.BlockSubmitted, Reason: "inconclusive"}
	bb, err := store.AppendShare(nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := store.DecodeShare(bb); err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("block share round trip: %+v, %v", got, err)
	}
	for n := range len(bb) {
		if _, err := store.DecodeShare(bb[:n]); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("block share truncated to %d bytes: %v", n, err)
		}
	}
	s.Block.Status = store.BlockConfirmed
	if _, err := store.AppendShare(nil, &s); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("block share with status confirmed: %v", err)
	}
	s.Block = nil
	for name, mut := range map[string]func(*store.Share){
		"zero time":     func(s *store.Share) { s.Time = time.Time{} },
		"no user":       func(s *store.Share) { s.Username = "" },
		"bad user":      func(s *store.Share) { s.Username = "a b" },
		"no job":        func(s *store.Share) { s.JobID = "" },
		"NaN diff":      func(s *store.Share) { s.Difficulty = math.NaN() },
		"zero diff":     func(s *store.Share) { s.Difficulty = 0 },
		"inf hash diff": func(s *store.Share) { s.ShareDifficulty = math.Inf(1) },
		"neg height":    func(s *store.Share) { s.Height = -1 },
		"long worker":   func(s *store.Share) { s.Worker = string(make([]byte, 300)) },
		"NUL in worker": func(s *store.Share) { s.Worker = "a\x00b" },
	} {
		c := s
		mut(&c)
		if _, err := store.AppendShare(nil, &c); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: AppendShare = %v, want ErrInvalid", name, err)
		}
	}
}

// rawBlock returns size bytes standing for a serialized block: an 80-byte
// header made from seed, then filler; and the header's hash, which
// DecodeShare checks against the record's block hash.
func rawBlock(seed byte, size int) ([]byte, [32]byte) {
	raw := make([]byte, size)
	for i := range raw {
		raw[i] = seed + byte(i*7)
	}
	return raw, chainhash.DoubleHashH(raw[:80])
}

// v2Record is a version-2 share record (a block without its bytes) as
// the stratumd before version 3 wrote it (AppendShare at commit 3c7afed):
// a spool left by it must still drain.
const v2Record = "02408ad9e31661060000350c000000000000009040000000000001a04003057573657231047269673104316132620b3230332e302e3131332e370102030000000000000000000000000000000000000000000000000000000000090000000000000000000000000000000000000000000000000000000000000020" +
	"5fa012000000000000e057eb48db42000c696e636f6e636c7573697665"

// TestShareBlockRecord: a share with a ~4 MB block round-trips through
// the record (version 3); every bad block length, a truncation anywhere
// and bytes that do not hash to the block's hash are refused; an old
// version-2 record still decodes.
func TestShareBlockRecord(t *testing.T) {
	if store.MaxBlockBytes != wire.MaxBlockPayload {
		t.Fatalf("MaxBlockBytes %d, btcd's wire.MaxBlockPayload %d", store.MaxBlockBytes, wire.MaxBlockPayload)
	}
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)
	s := sampleShare(9, at)
	raw, hash := rawBlock(5, store.MaxBlockBytes-17)
	s.Block = &store.BlockFound{Hash: hash, PrevHash: [32]byte{9}, Reward: 312500000,
		NetworkDifficulty: 1.2e14, Status: store.BlockSubmitted, Reason: "submit error: connection refused", Raw: raw}
	rec, err := store.AppendShare(nil, &s)
	if err != nil {
		t.Fatal(err)
	}
	if rec[0] != 3 || len(rec) > spool.DefaultMaxPayload {
		t.Fatalf("record version %d, %d bytes (spool takes %d)", rec[0], len(rec), spool.DefaultMaxPayload)
	}
	got, err := store.DecodeShare(rec)
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: %v", err)
	}
	rec[len(rec)-1] ^= 1 // the decoded block is a copy
	if got.Block.Raw[len(raw)-1] != raw[len(raw)-1] {
		t.Fatal("the decoded block aliases the record")
	}
	rec[len(rec)-1] ^= 1

	rawAt := len(rec) - len(raw) // where the block bytes start
	for _, n := range []int{rawAt - 5, rawAt - 4, rawAt - 1, rawAt, rawAt + 79, rawAt + 80, len(rec) / 2, len(rec) - 1} {
		if _, err := store.DecodeShare(rec[:n]); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
	setLen := func(n uint32) []byte {
		b := slices.Clone(rec)
		binary.LittleEndian.PutUint32(b[rawAt-4:], n)
		return b
	}
	for name, bad := range map[string][]byte{
		"length over the maximum": setLen(store.MaxBlockBytes + 1),
		"length 2^32-1":           setLen(1<<32 - 1),
		"length under a header":   setLen(79),
		"length past the end":     setLen(uint32(len(raw) + 1)),
		"length short of the end": setLen(uint32(len(raw) - 1)),
		"trailing byte":           append(slices.Clone(rec), 0),
	} {
		if _, err := store.DecodeShare(bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	other := slices.Clone(rec)
	other[rawAt+3] ^= 1 // the header no longer hashes to the block hash
	if _, err := store.DecodeShare(other); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("header of another block: %v", err)
	}
	for name, mut := range map[string]func(b *store.BlockFound){
		"too big":      func(b *store.BlockFound) { b.Raw = make([]byte, store.MaxBlockBytes+1) },
		"no header":    func(b *store.BlockFound) { b.Raw = b.Raw[:79] },
		"another hash": func(b *store.BlockFound) { b.Hash[0] ^= 1 },
	} {
		c := s
		blk := *s.Block
		c.Block = &blk
		mut(&blk)
		if _, err := store.AppendShare(nil, &c); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: AppendShare = %v, want ErrInvalid", name, err)
		}
	}

	old, _ := hex.DecodeString(v2Record)
	v2, err := store.DecodeShare(old)
	if err != nil || v2.Block == nil || v2.Block.Raw != nil || v2.Block.Reason != "inconclusive" || v2.Username != "user1" ||
		v2.Block.Hash != [32]byte{1, 2, 3} || v2.Height != 800000 {
		t.Fatalf("version-2 record: %+v %+v, %v", v2, v2.Block, err)
	}
	if again, err := store.AppendShare(nil, &v2); err != nil || hex.EncodeToString(again) != v2Record {
		t.Fatalf("version-2 share re-encoded as %x, %v", again, err)
	}
}

func FuzzDecodeShare(f *testing.F) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		s := sampleShare(i, at)
		b, _ := store.AppendShare(nil, &s)
		f.Add(b)
		s.Block = &store.BlockFound{Hash: [32]byte{byte(i)}, Reward: 5000000000, NetworkDifficulty: 1, Status: store.BlockRejected, Reason: "high-hash"}
		b, _ = store.AppendShare(nil, &s)
		f.Add(b)
		s.Block.Raw, s.Block.Hash = rawBlock(byte(i), 80+i*50)
		b, _ = store.AppendShare(nil, &s)
		f.Add(b)
	}
	old, _ := hex.DecodeString(v2Record)
	f.Add(old)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := store.DecodeShare(b)
		if err != nil {
			return
		}
		again, err := store.AppendShare(nil, &s)
		if err != nil {
			t.Fatalf("decoded share does not encode: %v", err)
		}
		s2, err := store.DecodeShare(again)
		if err != nil || !reflect.DeepEqual(s2, s) {
			t.Fatalf("round trip changed the share: %+v vs %+v (%v)", s, s2, err)
		}
	})
}

// TestCopy100kShares stores 100,000 shares with COPY across day boundaries
// (partitions created on demand) and reads them back.
func TestCopy100kShares(t *testing.T) {
	st, url := pgtest.NewStore(t)
	ctx := ctxT(t)
	spoolID := [16]byte{1, 2, 3}
	start := time.Date(2026, 11, 24, 23, 59, 0, 0, time.UTC) // 100,000 ms span midnight
	const n = 100000
	batch := make([]store.StoredShare, 0, 10000)
	for i := range n {
		batch = append(batch, store.StoredShare{Share: sampleShare(i, start), Seq: uint64(i + 1)})
		if len(batch) == cap(batch) {
			if err := st.StoreShares(ctx, spoolID, 3, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	count, sum, err := st.CountShares(ctx)
	if err != nil || count != n || sum != 1024*n {
		t.Fatalf("CountShares = %d, %v, %v; want %d, %v", count, sum, err, n, 1024*n)
	}
	if p, err := st.SpoolProgress(ctx, spoolID); err != nil || p != n {
		t.Fatalf("progress = %d, %v", p, err)
	}
	parts, err := st.Partitions(ctx)
	if err != nil || len(parts) != 2 {
		t.Fatalf("partitions = %v, %v; want the two days", parts, err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var distinct, minSeq, maxSeq int64
	var users int
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT seq), min(seq), max(seq), count(DISTINCT username) FROM shares`).Scan(&distinct, &minSeq, &maxSeq, &users); err != nil {
		t.Fatal(err)
	}
	if distinct != n || minSeq != 1 || maxSeq != n || users != 7 {
		t.Fatalf("distinct=%d min=%d max=%d users=%d", distinct, minSeq, maxSeq, users)
	}
	// A row reads back exactly as written.
	want := sampleShare(4242, start)
	var got store.Share
	var inst int16
	var sid []byte
	if err := conn.QueryRow(ctx, `SELECT time, username, worker, job_id, height, difficulty, share_difficulty, instance_id, remote_addr, spool_id FROM shares WHERE seq = 4243`).
		Scan(&got.Time, &got.Username, &got.Worker, &got.JobID, &got.Height, &got.Difficulty, &got.ShareDifficulty, &inst, &got.RemoteAddr, &sid); err != nil {
		t.Fatal(err)
	}
	got.InstanceID = uint8(inst)
	got.Time = got.Time.UTC()
	if got != want || hex.EncodeToString(sid[:3]) != "010203" {
		t.Fatalf("row 4243 = %+v, want %+v (spool %x)", got, want, sid)
	}
	// Replaying a stored batch is refused and changes nothing.
	replay := []store.StoredShare{{Share: sampleShare(0, start), Seq: 1}}
	if err := st.StoreShares(ctx, spoolID, 3, replay); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replay: %v, want ErrConflict", err)
	}
	if c, _, _ := st.CountShares(ctx); c != n {
		t.Fatalf("after refused replay: %d shares", c)
	}
	// Old partitions can be dropped; the day after stays.
	dropped, err := st.DropPartitionsBefore(ctx, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	if err != nil || len(dropped) != 1 || dropped[0] != "shares_p20261124" {
		t.Fatalf("dropped %v, %v", dropped, err)
	}
	if c, _, _ := st.CountShares(ctx); c == 0 || c == n {
		t.Fatalf("after dropping the first day: %d shares", c)
	}
	// A share for the dropped day gets its partition again.
	if err := st.StoreShares(ctx, spoolID, 3, []store.StoredShare{{Share: sampleShare(1, start), Seq: n + 1}}); err != nil {
		t.Fatalf("share into a dropped day: %v", err)
	}
}

func TestEnsurePartitionsAhead(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	now := time.Date(2026, 12, 30, 15, 0, 0, 0, time.UTC)
	if err := st.EnsurePartitions(ctx, now, now.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Again: idempotent.
	if err := st.EnsurePartitions(ctx, now, now.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	parts, err := st.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[shares_p20261230 shares_p20261231 shares_p20270101 shares_p20270102]" {
		t.Fatalf("partitions %v", names)
	}
}

func TestRoundSummary(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var shares []store.StoredShare
	for i := range 70 {
		shares = append(shares, store.StoredShare{Share: sampleShare(i, start), Seq: uint64(i + 1)})
	}
	if err := st.StoreShares(ctx, [16]byte{9}, 3, shares); err != nil {
		t.Fatal(err)
	}
	after := store.SharePos{Time: shares[9].Time, Instance: 3, Seq: 10}
	through := store.SharePos{Time: shares[48].Time, Instance: 3, Seq: 49}
	users, err := st.RoundSummary(ctx, after, through, "")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, u := range users {
		total += u.Shares
		if u.DifficultySum != float64(u.Shares)*1024 {
			t.Errorf("%s: %d shares, difficulty sum %v", u.Username, u.Shares, u.DifficultySum)
		}
	}
	if total != 39 || len(users) != 7 {
		t.Fatalf("round (10, 49]: %d shares over %d users, want 39 over 7", total, len(users))
	}
}

func TestStoreSharesCancelled(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := st.StoreShares(ctx, [16]byte{1}, 0, []store.StoredShare{{Share: sampleShare(1, time.Now()), Seq: 1}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled store: %v", err)
	}
}
