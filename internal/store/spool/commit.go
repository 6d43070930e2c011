package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Run is the group-commit loop. It must be called once; appends wait for it.
// When ctx ends or Close is called, Run stops accepting appends, commits
// everything already queued and returns nil. If a failed batch cannot be
// rolled back (the segment could not be truncated), Run fails all waiting
// appends and returns that error wrapped with ErrWrite; the spool must then
// be closed and reopened, which repairs the segment.
func (s *Spool) Run(ctx context.Context) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case s.running:
		s.mu.Unlock()
		return errors.New("spool: Run called twice")
	}
	s.running = true
	s.mu.Unlock()
	defer close(s.runDone)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		// Checked first so that a queue that never empties cannot keep Run
		// from stopping.
		select {
		case <-ctx.Done():
			return s.shutdown()
		case <-s.stop:
			return s.shutdown()
		default:
		}
		s.mu.Lock()
		n := len(s.queue)
		s.want = 0
		if n > 0 && n < s.lastBatch && s.interval > 0 {
			s.want = s.lastBatch
		}
		want := s.want
		s.mu.Unlock()

		switch {
		case n == 0:
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return s.shutdown()
			case <-s.stop:
				return s.shutdown()
			}
		case want > 0:
			s.gather(ctx, timer)
		}
		if err := s.commit(); err != nil {
			return err
		}
	}
}

// gather waits, at most s.interval, until the queue holds s.want requests:
// the appenders released together by the last commit are usually back
// within microseconds, and committing them together saves fsyncs.
func (s *Spool) gather(ctx context.Context, timer *time.Timer) {
	timer.Reset(s.interval)
	defer timer.Stop()
	for {
		select {
		case <-s.wake:
			s.mu.Lock()
			ok := len(s.queue) >= s.want
			s.mu.Unlock()
			if ok {
				return
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		}
	}
}

// shutdown refuses further appends and commits everything queued.
func (s *Spool) shutdown() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for {
		s.mu.Lock()
		n := len(s.queue)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := s.commit(); err != nil {
			return err
		}
	}
}

// commit takes one batch from the queue, writes and syncs it, and releases
// its waiters. It returns an error only when the spool is broken.
func (s *Spool) commit() error {
	batch, size := s.take()
	if len(batch) > 0 {
		s.lastBatch = len(batch)
		first, err := s.write(batch, size)
		for _, r := range batch {
			r.first, r.err = first, err
			first += uint64(len(r.payloads))
			r.done <- struct{}{}
		}
		clear(batch)
	}
	if s.broken == nil {
		return nil
	}
	// Fail everything else too: nothing more can be written safely.
	s.mu.Lock()
	s.closed = true
	var rest []*request
	for _, r := range s.queue {
		if r.state == stateQueued {
			r.state = stateTaken
			rest = append(rest, r)
		}
	}
	s.queue = nil
	s.mu.Unlock()
	for _, r := range rest {
		r.err = s.broken
		r.done <- struct{}{}
	}
	return s.broken
}

// take removes from the queue the requests of the next batch: as many as
// fit in maxBatchBytes (and the segment), but at least one. Withdrawn
// requests are dropped.
func (s *Spool) take() (batch []*request, size int64) {
	limit := min(int64(maxBatchBytes), s.segSize)
	batch = s.batch[:0]
	s.mu.Lock()
	defer s.mu.Unlock()
	i := 0
	for ; i < len(s.queue); i++ {
		r := s.queue[i]
		if r.state == stateCancelled {
			continue
		}
		if len(batch) > 0 && size+r.size > limit {
			break
		}
		r.state = stateTaken
		batch = append(batch, r)
		size += r.size
	}
	n := copy(s.queue, s.queue[i:])
	clear(s.queue[n:])
	s.queue = s.queue[:n]
	s.want = 0
	s.batch = batch
	return batch, size
}

// write encodes batch (size bytes) at the end of the active segment, rolling
// over first if the segment would grow past s.segSize, and syncs it. It
// returns the first seq of the batch. On failure nothing of the batch stays
// in the segment and no seq is used up.
func (s *Spool) write(batch []*request, size int64) (first uint64, err error) {
	seg := s.lastSegment()
	if off := seg.size.Load(); off > 0 && off+size > s.segSize {
		if seg, err = s.roll(); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrWrite, err)
		}
	}
	base := seg.size.Load()
	first = s.next
	seq, buf, idx, lastIdx := first, s.buf[:0], s.idx[:0], seg.lastIdx
	for _, r := range batch {
		for _, p := range r.payloads {
			if off := base + int64(len(buf)); off-lastIdx >= indexEvery {
				idx = append(idx, indexEntry{seq: seq, off: off})
				lastIdx = off
			}
			buf = appendRecord(buf, seq, p)
			seq++
		}
	}
	s.buf, s.idx = buf, idx
	if _, err := s.active.WriteAt(buf, base); err != nil {
		return 0, s.rollback(seg, base, fmt.Errorf("write %s: %w", seg.path, err))
	}
	if err := s.active.Sync(); err != nil {
		return 0, s.rollback(seg, base, fmt.Errorf("sync %s: %w", seg.path, err))
	}
	if len(idx) > 0 {
		s.segMu.Lock()
		seg.index = append(seg.index, idx...)
		s.segMu.Unlock()
		seg.lastIdx = lastIdx
	}
	seg.size.Store(base + int64(len(buf)))
	s.next = seq
	s.durable.Store(seq - 1)
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return first, nil
}

// rollback truncates seg back to size after a failed write and returns the
// error for the batch's waiters. If the truncation fails, the spool is
// marked broken.
func (s *Spool) rollback(seg *segment, size int64, cause error) error {
	err := fmt.Errorf("%w: %w", ErrWrite, cause)
	if terr := s.active.Truncate(size); terr != nil {
		s.broken = fmt.Errorf("%w: %w; rollback: %w", ErrWrite, cause, terr)
	} else if serr := s.active.Sync(); serr != nil {
		s.broken = fmt.Errorf("%w: %w; rollback sync: %w", ErrWrite, cause, serr)
	}
	if s.broken != nil {
		s.log.Error("spool: cannot roll back failed batch; spool stopped", "file", seg.path, "err", s.broken)
		return s.broken
	}
	return err
}

// roll starts a new segment named after s.next and makes it the active one.
func (s *Spool) roll() (*segment, error) {
	path := filepath.Join(s.dir, segmentName(s.next))
	// No live segment has this name (the active one is older and not
	// empty), so a leftover of a failed roll may be overwritten.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if err := s.dirFile.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync dir for %s: %w", path, err)
	}
	seg := &segment{first: s.next, path: path}
	s.segMu.Lock()
	s.segs = append(s.segs, seg)
	s.segMu.Unlock()
	old := s.active
	s.active = f
	if err := old.Close(); err != nil {
		s.log.Warn("spool: close old segment", "err", err)
	}
	return seg, nil
}

// lastSegment returns the active segment.
func (s *Spool) lastSegment() *segment {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	return s.segs[len(s.segs)-1]
}
