package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultSegmentSize    = 64 << 20
	DefaultCommitInterval = 2 * time.Millisecond
	// DefaultMaxPayload takes the largest record stratumd writes: a share
	// that solved a block carries the serialized block, at most 4,000,000
	// bytes (weight limit), plus about 1.4 KB of share and block fields.
	DefaultMaxPayload = 4 << 20
)

const (
	// maxBatchBytes bounds the bytes one commit writes (a single larger
	// append is still written whole).
	maxBatchBytes = 4 << 20
	// indexEvery is the distance in bytes between sparse index entries.
	indexEvery = 64 << 10
	// readBufSize is the buffer size used when reading segments.
	readBufSize = 64 << 10
)

var (
	// ErrClosed is returned by Append and AppendBatch once Run has ended or
	// Close was called, by Run after Close, and by Read and Trim after Close.
	ErrClosed = errors.New("spool: closed")
	// ErrCorrupt is returned by Open and Read when the spool's files are
	// damaged in a way that may lose acknowledged records. It is wrapped
	// with the file and offset.
	ErrCorrupt = errors.New("spool: corrupt")
	// ErrWrite is matched by the error every waiter of a batch gets when
	// writing or syncing the batch failed; the cause (e.g. syscall.ENOSPC)
	// is wrapped as well. No record of the batch was stored.
	ErrWrite = errors.New("spool: write failed")
	// ErrTooLarge is returned by Append and AppendBatch for a payload
	// longer than Config.MaxPayload.
	ErrTooLarge = errors.New("spool: payload too large")
	// ErrTrimmed is returned by Read when records at or after from were
	// already trimmed.
	ErrTrimmed = errors.New("spool: records already trimmed")
	// ErrLocked is returned by Open when another Spool holds the directory.
	ErrLocked = errors.New("spool: directory in use")
)

// Config configures a Spool. Only Dir is required.
type Config struct {
	// Dir is the spool directory; Open creates it if needed.
	Dir string
	// SegmentSize is the size at which a segment file is closed and a new
	// one started. Default DefaultSegmentSize.
	SegmentSize int64
	// CommitInterval is the longest the committer waits for more appends
	// to group with the ones queued. Zero means DefaultCommitInterval; a
	// negative value disables waiting.
	CommitInterval time.Duration
	// MaxPayload is the largest payload accepted, and the most a reader
	// allocates for one record. It must not be lowered below the size of
	// records already in the spool. Default DefaultMaxPayload.
	MaxPayload int
	// Logger receives recovery notices. Default: discard.
	Logger *slog.Logger
}

// Spool is an open spool directory. All methods are safe for concurrent use.
type Spool struct {
	dir      string
	segSize  int64
	interval time.Duration
	maxPay   int
	log      *slog.Logger
	id       string
	dirFile  *os.File // held open for flock and directory fsync

	durable atomic.Uint64
	notify  chan struct{}
	wake    chan struct{}
	stop    chan struct{}
	runDone chan struct{}
	reqs    sync.Pool

	// Owned by the committer (Run), or by Open/Close when Run is not running.
	active    *os.File // the last segment, open for writing
	next      uint64   // seq of the next record to commit
	lastBatch int      // requests in the last commit
	broken    error    // set when a failed batch could not be rolled back
	buf       []byte
	batch     []*request
	idx       []indexEntry

	mu        sync.Mutex // guards the fields below
	queue     []*request
	want      int  // queue length at which appenders wake the committer
	closed    bool // no more appends
	running   bool // Run was called
	closeDone bool // Close was called

	trimMu sync.Mutex // serializes Trim and Close

	segMu sync.RWMutex // guards segs and each segment's index
	segs  []*segment
}

// segment is one segment file.
type segment struct {
	first   uint64
	path    string
	size    atomic.Int64 // durable size: readers read below it
	lastIdx int64        // offset of the last index entry (committer/Open)
	index   []indexEntry // sparse (seq, offset) pairs, guarded by Spool.segMu
}

// indexEntry locates record seq at offset off of its segment.
type indexEntry struct {
	seq uint64
	off int64
}

// request is one Append or AppendBatch waiting for the committer.
type request struct {
	payloads [][]byte
	one      [1][]byte
	size     int64
	state    int // guarded by Spool.mu
	done     chan struct{}
	first    uint64 // set by the committer before done
	err      error  // set by the committer before done
}

// Request states.
const (
	stateQueued = iota
	stateTaken
	stateCancelled
)

// ID returns the spool's identity: 32 hex digits created with the spool.
func (s *Spool) ID() string { return s.id }

// Durable returns the highest sequence number made durable, or 0 if none.
func (s *Spool) Durable() uint64 { return s.durable.Load() }

// First returns the lowest sequence number still held. When the spool holds
// no records it is Durable()+1.
func (s *Spool) First() uint64 {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	return s.segs[0].first
}

// Notify returns a channel that receives a value after durable commits.
// Signals are coalesced: one value may stand for many commits.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Append writes payload as the next record and returns its sequence number
// once the record is durable. Many concurrent appends share one write and
// one fsync. Append needs Run to be running; it returns ErrClosed once Run
// has ended or Close was called, and an error matching ErrWrite if the batch
// could not be written.
//
// If ctx ends before the committer has taken the record, Append withdraws
// it and returns ctx.Err(): the record is never written. Once taken, Append
// waits for the outcome of that one write and fsync. payload must not be
// modified until Append returns.
func (s *Spool) Append(ctx context.Context, payload []byte) (seq uint64, err error) {
	if len(payload) > s.maxPay {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), s.maxPay)
	}
	r := s.getRequest()
	r.one[0] = payload
	r.payloads = r.one[:]
	r.size = recordSize(len(payload))
	return s.submit(ctx, r)
}

// AppendBatch is Append for several payloads: they get contiguous sequence
// numbers in one commit, and AppendBatch returns the first. An empty batch
// returns 0 and nil.
func (s *Spool) AppendBatch(ctx context.Context, payloads [][]byte) (first uint64, err error) {
	if len(payloads) == 0 {
		return 0, nil
	}
	var size int64
	for i, p := range payloads {
		if len(p) > s.maxPay {
			return 0, fmt.Errorf("%w: payload %d has %d bytes, limit %d", ErrTooLarge, i, len(p), s.maxPay)
		}
		size += recordSize(len(p))
	}
	r := s.getRequest()
	r.payloads = payloads
	r.size = size
	return s.submit(ctx, r)
}

// getRequest returns a request from the pool.
func (s *Spool) getRequest() *request {
	if r, ok := s.reqs.Get().(*request); ok {
		return r
	}
	return &request{done: make(chan struct{}, 1)}
}

// submit queues r, waits for its outcome and recycles r.
func (s *Spool) submit(ctx context.Context, r *request) (uint64, error) {
	if err := ctx.Err(); err != nil {
		s.putRequest(r)
		return 0, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.putRequest(r)
		return 0, ErrClosed
	}
	r.state = stateQueued
	s.queue = append(s.queue, r)
	if n := len(s.queue); n == 1 || n == s.want {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		s.mu.Lock()
		if r.state == stateQueued {
			// The committer will drop it; it still holds r, so r is not recycled.
			r.state = stateCancelled
			s.mu.Unlock()
			return 0, ctx.Err()
		}
		s.mu.Unlock()
		<-r.done
	}
	first, err := r.first, r.err
	s.putRequest(r)
	return first, err
}

// putRequest clears r and returns it to the pool.
func (s *Spool) putRequest(r *request) {
	r.one[0] = nil
	r.payloads = nil
	r.first, r.err = 0, nil
	s.reqs.Put(r)
}

// Read returns up to max durable records with seq >= from, in order, with at
// most maxBytes of payload in total, but always at least one record when one
// is available. max <= 0 or maxBytes <= 0 means no such limit. It returns no
// records when from > Durable(), and ErrTrimmed when from < First(); from 0
// is read as 1. Read does not block appenders.
func (s *Spool) Read(from uint64, max int, maxBytes int) ([]Record, error) {
	if from == 0 {
		from = 1
	}
	type view struct {
		path      string
		seq       uint64 // seq of the record at off
		off, size int64
	}
	s.mu.Lock()
	closed := s.closeDone
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if from > s.Durable() {
		return nil, nil
	}
	var views []view
	s.segMu.RLock()
	if first := s.segs[0].first; from < first {
		s.segMu.RUnlock()
		return nil, fmt.Errorf("%w: from %d, first held %d", ErrTrimmed, from, first)
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > from }) - 1
	for j, seg := range s.segs[i:] {
		v := view{path: seg.path, seq: seg.first, size: seg.size.Load()}
		if j == 0 {
			k := sort.Search(len(seg.index), func(k int) bool { return seg.index[k].seq > from }) - 1
			if k >= 0 {
				v.seq, v.off = seg.index[k].seq, seg.index[k].off
			}
		}
		views = append(views, v)
	}
	s.segMu.RUnlock()

	var (
		out    []Record
		nbytes int
	)
	full := func(n int) bool {
		return len(out) > 0 && ((max > 0 && len(out) >= max) || (maxBytes > 0 && nbytes+n > maxBytes))
	}
	for _, v := range views {
		if v.off >= v.size {
			continue
		}
		done, err := func() (bool, error) {
			f, err := os.Open(v.path)
			if errors.Is(err, os.ErrNotExist) {
				return false, fmt.Errorf("%w: %s removed while reading: %w", ErrTrimmed, v.path, err)
			}
			if err != nil {
				return false, fmt.Errorf("spool: read: %w", err)
			}
			defer f.Close()
			rr := newRecordReader(io.NewSectionReader(f, v.off, v.size-v.off), v.off, v.size, s.maxPay, readBufSize)
			want := v.seq
			for {
				off := rr.off
				seq, p, err := rr.next()
				if errors.Is(err, io.EOF) {
					return false, nil
				}
				if err != nil {
					return false, fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, v.path, off, err)
				}
				if seq != want {
					return false, fmt.Errorf("%w: %s at offset %d: seq %d, want %d", ErrCorrupt, v.path, off, seq, want)
				}
				want++
				if seq < from {
					continue
				}
				if full(len(p)) {
					return true, nil
				}
				out = append(out, Record{Seq: seq, Data: append([]byte(nil), p...)})
				nbytes += len(p)
			}
		}()
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
	}
	return out, nil
}

// Trim removes whole segments whose records all have seq <= through, oldest
// first. The last (active) segment is never removed, so records after the
// last rollover stay until the next one.
func (s *Spool) Trim(through uint64) error {
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	s.mu.Lock()
	closed := s.closeDone
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var victims []*segment
	s.segMu.RLock()
	for i := 0; i+1 < len(s.segs) && s.segs[i+1].first-1 <= through; i++ {
		victims = append(victims, s.segs[i])
	}
	s.segMu.RUnlock()
	if len(victims) == 0 {
		return nil
	}
	removed := 0
	var rmErr error
	for _, seg := range victims {
		// Oldest first, stopping at the first failure, so the files left
		// are always contiguous.
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			rmErr = fmt.Errorf("spool: trim: %w", err)
			break
		}
		removed++
	}
	s.segMu.Lock()
	s.segs = append([]*segment(nil), s.segs[removed:]...)
	s.segMu.Unlock()
	if removed > 0 {
		if err := s.dirFile.Sync(); err != nil {
			return errors.Join(rmErr, fmt.Errorf("spool: trim: sync dir: %w", err))
		}
	}
	return rmErr
}

// Close stops Run (which first commits what is queued), fails appends that
// no Run will commit with ErrClosed, and releases the directory. Close is
// idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closeDone {
		s.mu.Unlock()
		return nil
	}
	s.closeDone = true
	s.closed = true
	running := s.running
	var orphans []*request
	if !running {
		for _, r := range s.queue {
			if r.state == stateQueued {
				r.state = stateTaken
				orphans = append(orphans, r)
			}
		}
		s.queue = nil
	}
	s.mu.Unlock()
	if running {
		close(s.stop)
		<-s.runDone
	}
	for _, r := range orphans {
		r.err = ErrClosed
		r.done <- struct{}{}
	}
	s.trimMu.Lock()
	defer s.trimMu.Unlock()
	return errors.Join(s.active.Close(), s.dirFile.Close())
}
