package spool

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestRoundTripRolloverReopenTrim(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentSize: 512}
	s := start(t, cfg)
	id := s.ID()
	if len(id) != 32 {
		t.Fatalf("ID %q", id)
	}
	if s.First() != 1 || s.Durable() != 0 {
		t.Fatalf("new spool: First %d Durable %d", s.First(), s.Durable())
	}
	appendN(t, s.Spool, 0, 300)
	// A batch spanning several records.
	var batch [][]byte
	for i := 300; i < 320; i++ {
		batch = append(batch, payload(i))
	}
	first, err := s.AppendBatch(context.Background(), batch)
	if err != nil || first != 301 {
		t.Fatalf("AppendBatch: %d, %v", first, err)
	}
	if s.Durable() != 320 {
		t.Fatalf("Durable %d", s.Durable())
	}
	files := segmentFiles(t, dir)
	if len(files) < 10 {
		t.Fatalf("only %d segments with SegmentSize 512", len(files))
	}
	for _, f := range files[:len(files)-1] {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		// Each batch here is one record of at most 16+6+4+96 bytes, except
		// the 20-record batch which goes alone into a segment.
		if fi.Size() > 512 && !strings.HasSuffix(f, segmentName(301)) {
			t.Errorf("%s has %d bytes, SegmentSize 512", f, fi.Size())
		}
	}
	checkRecords(t, readAll(t, s.Spool, 1), 1, 320, 0)
	checkRecords(t, readAll(t, s.Spool, 0), 1, 320, 0)
	checkRecords(t, readAll(t, s.Spool, 200), 200, 121, 0)
	if recs, err := s.Read(321, 10, 0); err != nil || len(recs) != 0 {
		t.Fatalf("Read past end: %v, %v", recs, err)
	}
	s.stop(t)

	// Reopen: everything is there, same ID, appends continue.
	s = start(t, cfg)
	if s.ID() != id || s.Durable() != 320 || s.First() != 1 {
		t.Fatalf("reopened: ID %s Durable %d First %d", s.ID(), s.Durable(), s.First())
	}
	checkRecords(t, readAll(t, s.Spool, 1), 1, 320, 0)
	appendN(t, s.Spool, 320, 400)

	// Trim: whole segments only, never past through.
	if err := s.Trim(250); err != nil {
		t.Fatal(err)
	}
	f := s.First()
	if f <= 1 || f > 251 {
		t.Fatalf("First after Trim(250) = %d", f)
	}
	if fs := segmentFiles(t, dir); filepath.Base(fs[0]) != segmentName(f) {
		t.Fatalf("first file %s, First %d", fs[0], f)
	}
	_, err = s.Read(f-1, 10, 0)
	mustErr(t, err, ErrTrimmed)
	checkRecords(t, readAll(t, s.Spool, f), f, 400-int(f)+1, 0)
	s.stop(t)

	s = start(t, cfg)
	if s.First() != f || s.Durable() != 400 || s.ID() != id {
		t.Fatalf("after trim+reopen: First %d Durable %d", s.First(), s.Durable())
	}
	checkRecords(t, readAll(t, s.Spool, f), f, 400-int(f)+1, 0)

	// Trimming everything keeps the active segment and its records.
	if err := s.Trim(s.Durable()); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments after trimming all", n)
	}
	last := s.First()
	if last > 401 {
		t.Fatalf("First %d after trimming all", last)
	}
	checkRecords(t, readAll(t, s.Spool, last), last, 400-int(last)+1, 0)
	appendN(t, s.Spool, 400, 410)
	s.stop(t)
	s = start(t, cfg)
	checkRecords(t, readAll(t, s.Spool, last), last, 410-int(last)+1, 0)
}

func TestReadIndexAndLimits(t *testing.T) {
	s := start(t, Config{Dir: t.TempDir()})
	const n = 8000 // about 500 KiB: several index entries in one segment
	var batch [][]byte
	for i := range n {
		batch = append(batch, payload(i))
	}
	if _, err := s.AppendBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	seg := s.lastSegment()
	s.segMu.RLock()
	entries := len(seg.index)
	s.segMu.RUnlock()
	if entries < 5 {
		t.Fatalf("%d index entries", entries)
	}
	for _, from := range []uint64{1, 2, 1000, 4097, 7999, 8000} {
		recs, err := s.Read(from, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := min(3, n-int(from)+1)
		checkRecords(t, recs, from, want, 0)
	}
	// maxBytes: stop before exceeding it, but return at least one record.
	recs, err := s.Read(100, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 100, 1, 0)
	limit := len(payload(99)) + len(payload(100)) + len(payload(101))
	recs, err = s.Read(100, 0, limit)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 100, 3, 0)
	recs, err = s.Read(100, 0, limit-1)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 100, 2, 0)
	if recs, err = s.Read(1, 0, 0); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, recs, 1, n, 0)
}

func TestConcurrentAppend(t *testing.T) {
	dir := t.TempDir()
	s := start(t, Config{Dir: dir, SegmentSize: 64 << 10})
	const workers, total = 64, 10000
	seqs := make([]uint64, total)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				seq, err := s.Append(context.Background(), payload(i))
				if err != nil {
					t.Errorf("Append %d: %v", i, err)
					return
				}
				seqs[i] = seq
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if s.Durable() != total {
		t.Fatalf("Durable %d", s.Durable())
	}
	bySeq := make(map[uint64]int, total)
	for i, seq := range seqs {
		if seq < 1 || seq > total {
			t.Fatalf("payload %d got seq %d", i, seq)
		}
		if j, dup := bySeq[seq]; dup {
			t.Fatalf("seq %d given to payloads %d and %d", seq, j, i)
		}
		bySeq[seq] = i
	}
	check := func(recs []Record) {
		t.Helper()
		if len(recs) != total {
			t.Fatalf("read %d records", len(recs))
		}
		for k, r := range recs {
			if r.Seq != uint64(k+1) {
				t.Fatalf("record %d has seq %d", k, r.Seq)
			}
			if want := payload(bySeq[r.Seq]); !bytes.Equal(r.Data, want) {
				t.Fatalf("seq %d: %q, want %q", r.Seq, r.Data, want)
			}
		}
	}
	check(readAll(t, s.Spool, 1))
	s.stop(t)
	if len(segmentFiles(t, dir)) < 2 {
		t.Fatal("expected several segments")
	}
	s = start(t, Config{Dir: dir, SegmentSize: 64 << 10})
	check(readAll(t, s.Spool, 1))
}

// buildSpool writes n records with a small segment size and returns the
// closed directory.
func buildSpool(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s := start(t, Config{Dir: dir, SegmentSize: 1024})
	appendN(t, s.Spool, 0, n)
	s.stop(t)
	return dir
}

func TestTornTail(t *testing.T) {
	const n = 60
	orig := buildSpool(t, n)
	files := segmentFiles(t, orig)
	if len(files) < 3 {
		t.Fatalf("%d segments", len(files))
	}
	lastName := filepath.Base(files[len(files)-1])
	full, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	lastRec := recordSize(len(payload(n - 1)))
	start0 := int64(len(full)) - lastRec
	if start0 <= 0 {
		t.Fatalf("last segment holds only the last record")
	}
	garbage := []byte("\x07garbage that is not a record \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")

	try := func(t *testing.T, tail []byte, want int, wantLog bool) {
		t.Helper()
		dir := copyDir(t, orig)
		if err := os.WriteFile(filepath.Join(dir, lastName), tail, 0o640); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		cfg := Config{Dir: dir, SegmentSize: 1024, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		s, err := Open(cfg)
		if err != nil {
			t.Fatalf("Open with %d-byte last segment: %v", len(tail), err)
		}
		r := run(t, s)
		if s.Durable() != uint64(want) {
			t.Fatalf("Durable %d, want %d", s.Durable(), want)
		}
		if logged := strings.Contains(logs.String(), "torn tail"); logged != wantLog {
			t.Fatalf("torn tail logged %v, want %v: %s", logged, wantLog, logs.String())
		}
		checkRecords(t, readAll(t, s, 1), 1, want, 0)
		seq, err := s.Append(context.Background(), payload(want))
		if err != nil || seq != uint64(want+1) {
			t.Fatalf("Append after recovery: %d, %v", seq, err)
		}
		r.stop(t)
		r = start(t, cfg)
		checkRecords(t, readAll(t, r.Spool, 1), 1, want+1, 0)
		r.stop(t)
	}
	t.Run("cut", func(t *testing.T) {
		for cut := start0; cut < int64(len(full)); cut++ {
			try(t, full[:cut], n-1, cut != start0)
		}
	})
	t.Run("cut+garbage", func(t *testing.T) {
		for cut := start0; cut < int64(len(full)); cut += 7 {
			try(t, append(full[:cut:cut], garbage...), n-1, true)
		}
	})
	t.Run("complete+garbage", func(t *testing.T) {
		try(t, append(full[:len(full):len(full)], garbage...), n, true)
		try(t, append(full[:len(full):len(full)], make([]byte, 4096)...), n, true) // zero-filled tail
	})
	t.Run("flipped byte in last record", func(t *testing.T) {
		for _, at := range []int64{start0 + 1, start0 + 5, start0 + 9, int64(len(full)) - 1} {
			b := append([]byte(nil), full...)
			b[at] ^= 0x40
			try(t, b, n-1, true)
		}
	})
}

func TestCorruption(t *testing.T) {
	const n = 60
	orig := buildSpool(t, n)
	files := segmentFiles(t, orig)
	if len(files) < 3 {
		t.Fatalf("%d segments", len(files))
	}
	open := func(dir string) error {
		s, err := Open(Config{Dir: dir, SegmentSize: 1024})
		if err == nil {
			s.Close()
		}
		return err
	}
	t.Run("middle record of earlier segment", func(t *testing.T) {
		for _, seg := range files[:len(files)-1] {
			dir := copyDir(t, orig)
			path := filepath.Join(dir, filepath.Base(seg))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
			err = open(dir)
			mustErr(t, err, ErrCorrupt)
			if !strings.Contains(err.Error(), filepath.Base(seg)) || !strings.Contains(err.Error(), "offset") {
				t.Fatalf("error lacks file and offset: %v", err)
			}
		}
	})
	t.Run("torn end of earlier segment", func(t *testing.T) {
		dir := copyDir(t, orig)
		path := filepath.Join(dir, filepath.Base(files[0]))
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()-3); err != nil {
			t.Fatal(err)
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("gap", func(t *testing.T) {
		dir := copyDir(t, orig)
		if err := os.Remove(filepath.Join(dir, filepath.Base(files[1]))); err != nil {
			t.Fatal(err)
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("wrong name", func(t *testing.T) {
		dir := copyDir(t, orig)
		last := filepath.Base(files[len(files)-1])
		first, _ := parseSegmentName(last)
		if err := os.Rename(filepath.Join(dir, last), filepath.Join(dir, segmentName(first+1))); err != nil {
			t.Fatal(err)
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("only segment misnamed", func(t *testing.T) {
		dir := copyDir(t, orig)
		for _, f := range files[1:] {
			os.Remove(filepath.Join(dir, filepath.Base(f)))
		}
		if err := os.Rename(filepath.Join(dir, filepath.Base(files[0])), filepath.Join(dir, segmentName(2))); err != nil {
			t.Fatal(err)
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("bad segment name", func(t *testing.T) {
		dir := copyDir(t, orig)
		if err := os.WriteFile(filepath.Join(dir, "7.seg"), nil, 0o640); err != nil {
			t.Fatal(err)
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("no id", func(t *testing.T) {
		dir := copyDir(t, orig)
		if err := os.Remove(filepath.Join(dir, idFile)); err != nil {
			t.Fatal(err)
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("bad id", func(t *testing.T) {
		dir := copyDir(t, orig)
		if err := os.WriteFile(filepath.Join(dir, idFile), []byte("xyz\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("no segments", func(t *testing.T) {
		dir := copyDir(t, orig)
		for _, f := range files {
			os.Remove(filepath.Join(dir, filepath.Base(f)))
		}
		mustErr(t, open(dir), ErrCorrupt)
	})
	t.Run("MaxPayload lowered", func(t *testing.T) {
		// Valid records over the limit, even in the last segment, are an
		// error and are not cut off.
		dir := copyDir(t, orig)
		s, err := Open(Config{Dir: dir, SegmentSize: 1024, MaxPayload: 20})
		if err == nil {
			s.Close()
		}
		mustErr(t, err, ErrCorrupt)
		if err := open(dir); err != nil {
			t.Fatalf("reopen with the right limit: %v", err)
		}
	})
}

func TestInitCrashLeftovers(t *testing.T) {
	// A crash between creating the first segment and spool.id leaves an
	// empty first segment (and maybe a temp id file): Open adopts it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, segmentName(1)), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, idFile+".tmp"), []byte("partial"), 0o640); err != nil {
		t.Fatal(err)
	}
	s := start(t, Config{Dir: dir})
	if len(s.ID()) != 32 {
		t.Fatalf("ID %q", s.ID())
	}
	if _, err := os.Stat(filepath.Join(dir, idFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp id file left: %v", err)
	}
	appendN(t, s.Spool, 0, 3)

	// A new directory gets a different ID.
	other := start(t, Config{Dir: t.TempDir()})
	if other.ID() == s.ID() {
		t.Fatal("two spools share an ID")
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(Config{Dir: dir})
	mustErr(t, err, ErrLocked)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	t.Run("Run flushes queued appends when ctx ends", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const n = 10
		seqs := make(chan uint64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seq, err := s.Append(ctx, payload(i))
				if err != nil {
					t.Errorf("Append: %v", err)
				}
				seqs <- seq
			}()
		}
		waitQueued(t, s, n)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Run(cctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		wg.Wait()
		close(seqs)
		seen := map[uint64]bool{}
		for seq := range seqs {
			seen[seq] = true
		}
		if len(seen) != n || s.Durable() != n {
			t.Fatalf("seqs %v, Durable %d", seen, s.Durable())
		}
		_, err = s.Append(ctx, []byte("late"))
		mustErr(t, err, ErrClosed)
		if len(readAll(t, s, 1)) != n {
			t.Fatal("records missing after Run ended")
		}
	})
	t.Run("Run stops under sustained load", func(t *testing.T) {
		s, err := Open(Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		rctx, cancel := context.WithCancel(ctx)
		runErr := make(chan error, 1)
		go func() { runErr <- s.Run(rctx) }()
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			acked = map[uint64]bool{}
		)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					seq, err := s.Append(ctx, payload(g*1000000+i))
					if err != nil {
						mustErr(t, err, ErrClosed)
						return
					}
					mu.Lock()
					acked[seq] = true
					mu.Unlock()
				}
			}()
		}
		for s.Durable() < 2000 {
			<-s.Notify()
		}
		cancel()
		if err := <-runErr; err != nil {
			t.Fatalf("Run: %v", err)
		}
		wg.Wait()
		if uint64(len(acked)) != s.Durable() {
			t.Fatalf("%d acked, Durable %d", len(acked), s.Durable())
		}
		if n := len(readAll(t, s, 1)); uint64(n) != s.Durable() {
			t.Fatalf("read %d records, Durable %d", n, s.Durable())
		}
	})
	t.Run("Close without Run fails queued appends", func(t *testing.T) {
		s, err := Open(Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := s.Append(ctx, []byte("x"))
			errc <- err
		}()
		waitQueued(t, s, 1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		mustErr(t, <-errc, ErrClosed)
		mustErr(t, s.Run(ctx), ErrClosed)
		_, err = s.Read(1, 1, 0)
		mustErr(t, err, ErrClosed)
		mustErr(t, s.Trim(1), ErrClosed)
	})
	t.Run("Close stops Run", func(t *testing.T) {
		s, err := Open(Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- s.Run(ctx) }()
		if _, err := s.Append(ctx, []byte("a")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Run: %v", err)
		}
		_, err = s.Append(ctx, []byte("b"))
		mustErr(t, err, ErrClosed)
	})
	t.Run("cancelled append is withdrawn", func(t *testing.T) {
		s, err := Open(Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() {
			_, err := s.Append(actx, []byte("withdrawn"))
			errc <- err
		}()
		waitQueued(t, s, 1)
		cancel()
		mustErr(t, <-errc, context.Canceled)
		r := run(t, s)
		seq, err := r.Append(ctx, []byte("kept"))
		if err != nil || seq != 1 {
			t.Fatalf("Append: %d, %v", seq, err)
		}
		recs := readAll(t, s, 1)
		if len(recs) != 1 || string(recs[0].Data) != "kept" {
			t.Fatalf("records %v", recs)
		}
		_, err = s.Append(actx, []byte("dead ctx"))
		mustErr(t, err, context.Canceled)
	})
	t.Run("limits and notify", func(t *testing.T) {
		s := start(t, Config{Dir: t.TempDir(), MaxPayload: 10})
		_, err := s.Append(ctx, make([]byte, 11))
		mustErr(t, err, ErrTooLarge)
		_, err = s.AppendBatch(ctx, [][]byte{{1}, make([]byte, 11)})
		mustErr(t, err, ErrTooLarge)
		if first, err := s.AppendBatch(ctx, nil); first != 0 || err != nil {
			t.Fatalf("empty batch: %d, %v", first, err)
		}
		select {
		case <-s.Notify():
			t.Fatal("notified before any commit")
		default:
		}
		if _, err := s.Append(ctx, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-s.Notify():
		default:
			t.Fatal("no notification after a commit")
		}
		if s.Durable() != 1 {
			t.Fatalf("Durable %d", s.Durable())
		}
	})
}

// TestBlockSizedRecord: with the default limits a 4 MiB record (a share
// carrying a full block) is appended between small ones, read back whole
// even by a read whose byte budget it exceeds, and recovered by Open.
func TestBlockSizedRecord(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := start(t, Config{Dir: dir})
	big := bytes.Repeat([]byte{0xb1}, DefaultMaxPayload)
	for _, p := range [][]byte{[]byte("before"), big, []byte("after")} {
		if _, err := s.Append(ctx, p); err != nil {
			t.Fatalf("append %d bytes: %v", len(p), err)
		}
	}
	if _, err := s.Append(ctx, make([]byte, DefaultMaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	recs, err := s.Read(2, 10, 1<<20)
	if err != nil || len(recs) != 1 || !bytes.Equal(recs[0].Data, big) {
		t.Fatalf("read under a 1 MiB budget: %d records, %v", len(recs), err)
	}
	s.stop(t)
	s = start(t, Config{Dir: dir})
	recs = readAll(t, s.Spool, 1)
	if len(recs) != 3 || !bytes.Equal(recs[1].Data, big) || string(recs[2].Data) != "after" {
		t.Fatalf("after reopen: %d records", len(recs))
	}
}
