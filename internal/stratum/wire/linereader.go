package wire

import (
	"bytes"
	"errors"
	"io"
)

const (
	// DefaultMaxLineLength is the longest line a LineReader accepts when
	// NewLineReader is given no positive maximum.
	DefaultMaxLineLength = 16 << 10

	// initialLineBuffer is a LineReader's buffer size between large lines:
	// it holds any ordinary Stratum request, keeping idle connections small.
	initialLineBuffer = 512

	// maxEmptyReads is how many (0, nil) reads in a row ReadLine tolerates
	// before failing with io.ErrNoProgress.
	maxEmptyReads = 100
)

// LineReader reads '\n'-terminated lines from one miner connection with the
// maximum line length enforced while reading: it never buffers more than the
// maximum plus the terminator. Its buffer starts at 512 bytes, grows (by
// doubling) only while a line needs it and shrinks back once the large line
// has been consumed, so an idle connection costs little memory.
//
// A LineReader is not safe for concurrent use; the session's reader loop owns it.
type LineReader struct {
	r     io.Reader
	max   int
	buf   []byte
	start int   // first unconsumed byte in buf
	end   int   // end of buffered data
	scan  int   // buf[start:scan] is known to hold no '\n'
	rerr  error // read error to report once the buffered data is used up
	fatal error // ErrLineTooLong, returned forever once hit
}

// NewLineReader returns a LineReader reading from r that accepts lines of at
// most max bytes, not counting the "\n" or "\r\n" terminator. A max <= 0
// means DefaultMaxLineLength. No buffer is allocated until the first read.
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = DefaultMaxLineLength
	}
	return &LineReader{r: r, max: max}
}

// ReadLine returns the next non-empty line without its "\n" or "\r\n"
// terminator. The returned slice aliases the internal buffer and is valid
// only until the next call.
//
// It returns ErrLineTooLong as soon as the pending line is known to exceed
// the maximum (without waiting for its end), and keeps returning it on later
// calls; io.EOF when the input ends after a complete line (or is empty); and
// io.ErrUnexpectedEOF when it ends in the middle of a line, whose bytes are
// dropped. Any other read error is returned as is, after the complete lines
// read before it; the partial line stays buffered, so a call after a read
// timeout continues where the last one stopped.
func (lr *LineReader) ReadLine() ([]byte, error) {
	if lr.fatal != nil {
		return nil, lr.fatal
	}
	lr.shrink()
	for {
		if i := bytes.IndexByte(lr.buf[lr.scan:lr.end], '\n'); i >= 0 {
			nl := lr.scan + i
			line := lr.buf[lr.start:nl]
			lr.start = nl + 1
			lr.scan = lr.start
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if len(line) > lr.max {
				lr.fatal = ErrLineTooLong
				return nil, lr.fatal
			}
			if len(line) == 0 {
				continue
			}
			return line, nil
		}
		lr.scan = lr.end
		// No terminator yet: fail as soon as the line cannot end within the
		// limit. max+1 bytes are still fine if the last is the '\r' of "\r\n".
		pending := lr.end - lr.start
		if pending > lr.max+1 || (pending == lr.max+1 && lr.buf[lr.end-1] != '\r') {
			lr.fatal = ErrLineTooLong
			return nil, lr.fatal
		}
		if err := lr.fill(); err != nil {
			if errors.Is(err, io.EOF) && lr.end > lr.start {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// fill reads more data into the buffer, making room first by compacting or
// growing it. It returns an error only when it read nothing.
func (lr *LineReader) fill() error {
	if lr.rerr != nil {
		err := lr.rerr
		if !errors.Is(err, io.EOF) {
			lr.rerr = nil
		}
		return err
	}
	if lr.buf == nil {
		lr.buf = make([]byte, min(initialLineBuffer, lr.max+2))
	}
	if lr.start == lr.end {
		lr.start, lr.end, lr.scan = 0, 0, 0
	}
	if lr.end == len(lr.buf) {
		if lr.start > 0 {
			n := copy(lr.buf, lr.buf[lr.start:lr.end])
			lr.scan -= lr.start
			lr.start, lr.end = 0, n
		} else {
			// The pending line fills the buffer; the length check in
			// ReadLine guarantees len(lr.buf) < max+2 here.
			nb := make([]byte, min(2*len(lr.buf), lr.max+2))
			copy(nb, lr.buf[:lr.end])
			lr.buf = nb
		}
	}
	for range maxEmptyReads {
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		if n > 0 {
			lr.rerr = err
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				lr.rerr = err
			}
			return err
		}
	}
	return io.ErrNoProgress
}

// Buffered returns how many bytes are read but not yet returned as lines
// (a partial line, or lines not asked for yet).
func (lr *LineReader) Buffered() int { return lr.end - lr.start }

// Release drops the buffer when it holds nothing, so that a connection
// with nothing to read costs no buffer; the next read allocates a fresh
// one. It keeps the buffer while data is pending (a partial line) and
// reports whether it dropped it.
func (lr *LineReader) Release() bool {
	if lr.buf == nil || lr.end != lr.start {
		return false
	}
	lr.buf = nil
	lr.start, lr.end, lr.scan = 0, 0, 0
	return true
}

// shrink replaces a grown buffer by a small one once the data it still holds
// fits, so that one large line does not pin memory for the connection's life.
func (lr *LineReader) shrink() {
	if len(lr.buf) <= initialLineBuffer {
		return
	}
	pending := lr.end - lr.start
	if pending > initialLineBuffer/2 {
		return
	}
	nb := make([]byte, initialLineBuffer)
	copy(nb, lr.buf[lr.start:lr.end])
	lr.scan -= lr.start
	lr.start, lr.end = 0, pending
	lr.buf = nb
}
