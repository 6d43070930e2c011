package spool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	idFile     = "spool.id"
	segSuffix  = ".seg"
	segNameLen = 20 + len(segSuffix)
)

// Open opens the spool in cfg.Dir, creating the directory and a new spool
// if needed, and recovers it: every record is verified, a torn tail of the
// last segment is cut off, and any other damage is reported as ErrCorrupt.
// Open starts nothing; call Run to accept appends and Close when done.
func Open(cfg Config) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("spool: Config.Dir is empty")
	}
	if cfg.SegmentSize < 0 || cfg.MaxPayload < 0 {
		return nil, errors.New("spool: negative SegmentSize or MaxPayload")
	}
	s := &Spool{
		dir:      cfg.Dir,
		segSize:  cfg.SegmentSize,
		interval: cfg.CommitInterval,
		maxPay:   cfg.MaxPayload,
		log:      cfg.Logger,
		notify:   make(chan struct{}, 1),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		runDone:  make(chan struct{}),
	}
	if s.segSize == 0 {
		s.segSize = DefaultSegmentSize
	}
	if s.interval == 0 {
		s.interval = DefaultCommitInterval
	}
	if s.maxPay == 0 {
		s.maxPay = DefaultMaxPayload
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := lockDir(d); err != nil {
		d.Close()
		return nil, fmt.Errorf("spool: %s: %w", s.dir, err)
	}
	s.dirFile = d
	if err := s.recover(); err != nil {
		if s.active != nil {
			s.active.Close()
		}
		d.Close()
		return nil, err
	}
	return s, nil
}

// recover reads or initializes the directory and verifies all segments.
func (s *Spool) recover() error {
	if err := os.Remove(filepath.Join(s.dir, idFile+".tmp")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: remove leftover: %w", err)
	}
	firsts, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	id, err := readID(s.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A new spool: the first segment is created, then spool.id, which
		// marks initialization complete. A crash in between leaves only an
		// empty first segment, which is fine to adopt.
		if err := s.checkUninitialized(firsts); err != nil {
			return err
		}
		if len(firsts) == 0 {
			if err := s.createSegment(1); err != nil {
				return err
			}
			firsts = []uint64{1}
		}
		if id, err = s.writeID(); err != nil {
			return err
		}
	case err != nil:
		return err
	case len(firsts) == 0:
		return fmt.Errorf("%w: %s has %s but no segments", ErrCorrupt, s.dir, idFile)
	}
	s.id = id

	next := firsts[0]
	for i, first := range firsts {
		last := i == len(firsts)-1
		if first != next {
			return fmt.Errorf("%w: %s: expected a segment starting at seq %d", ErrCorrupt, segmentName(first), next)
		}
		seg, f, n, err := s.scanSegment(first, last)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, seg)
		if last {
			s.active = f
		} else {
			f.Close()
		}
		next = n
	}
	s.next = next
	s.durable.Store(next - 1)
	return nil
}

// checkUninitialized returns nil if a directory without spool.id holds at
// most an empty first segment.
func (s *Spool) checkUninitialized(firsts []uint64) error {
	if len(firsts) == 0 {
		return nil
	}
	if len(firsts) == 1 && firsts[0] == 1 {
		fi, err := os.Stat(filepath.Join(s.dir, segmentName(1)))
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		if fi.Size() == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: %s has segments but no %s", ErrCorrupt, s.dir, idFile)
}

// scanSegment verifies the segment starting at first and returns it with
// its file (read-write if last) and the seq after its last record. A bad
// tail of the last segment is truncated.
func (s *Spool) scanSegment(first uint64, last bool) (*segment, *os.File, uint64, error) {
	seg := &segment{first: first, path: filepath.Join(s.dir, segmentName(first))}
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(seg.path, flag, 0)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("spool: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("spool: %w", err)
	}
	rr := newRecordReader(f, 0, fi.Size(), s.maxPay, readBufSize)
	next := first
	for {
		off := rr.off
		seq, _, err := rr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errBadRecord) && last {
			s.log.Warn("spool: cutting off torn tail of last segment",
				"file", seg.path, "offset", off, "bytes", fi.Size()-off, "reason", err)
			if err := f.Truncate(off); err != nil {
				f.Close()
				return nil, nil, 0, fmt.Errorf("spool: truncate %s: %w", seg.path, err)
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, nil, 0, fmt.Errorf("spool: sync %s: %w", seg.path, err)
			}
			break
		}
		if err == nil && seq != next {
			err = fmt.Errorf("seq %d, want %d", seq, next)
		}
		if err != nil {
			f.Close()
			return nil, nil, 0, fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, seg.path, off, err)
		}
		if off-seg.lastIdx >= indexEvery {
			seg.index = append(seg.index, indexEntry{seq: seq, off: off})
			seg.lastIdx = off
		}
		next++
	}
	seg.size.Store(rr.off)
	return seg, f, next, nil
}

// createSegment creates an empty segment file and syncs the directory.
func (s *Spool) createSegment(first uint64) error {
	f, err := os.OpenFile(filepath.Join(s.dir, segmentName(first)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := errors.Join(f.Sync(), f.Close(), s.dirFile.Sync()); err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	return nil
}

// writeID creates spool.id atomically with a new random identity.
func (s *Spool) writeID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("spool: id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	tmp := filepath.Join(s.dir, idFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return "", fmt.Errorf("spool: id: %w", err)
	}
	_, werr := f.WriteString(id + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return "", fmt.Errorf("spool: id: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, idFile)); err != nil {
		return "", fmt.Errorf("spool: id: %w", err)
	}
	if err := s.dirFile.Sync(); err != nil {
		return "", fmt.Errorf("spool: id: sync dir: %w", err)
	}
	return id, nil
}

// readID reads spool.id; a missing file gives an error matching
// os.ErrNotExist.
func readID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, idFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("spool: %w", err)
	}
	id := strings.TrimSuffix(string(b), "\n")
	if _, err := hex.DecodeString(id); err != nil || len(id) != 32 {
		return "", fmt.Errorf("%w: %s: %q is not 32 hex digits", ErrCorrupt, idFile, id)
	}
	return id, nil
}

// listSegments returns the first seqs of the segment files in dir, sorted.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var firsts []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		first, ok := parseSegmentName(name)
		if !ok || !e.Type().IsRegular() {
			return nil, fmt.Errorf("%w: %s: unexpected segment file %q", ErrCorrupt, dir, name)
		}
		firsts = append(firsts, first)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	return firsts, nil
}

// segmentName returns the file name of the segment starting at first.
func segmentName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }

// parseSegmentName parses a name made by segmentName; seq 0 is invalid.
func parseSegmentName(name string) (uint64, bool) {
	if len(name) != segNameLen || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[:20]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	return first, err == nil && first > 0
}
