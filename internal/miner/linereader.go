package miner

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// readBufferSize is the per-connection read buffer: it holds any ordinary
// Stratum line (a mining.notify with a dozen branch hashes is about 1.5 KB);
// longer lines are assembled in a separate slice up to the maximum.
const readBufferSize = 2048

// lineReader reads '\n'-terminated lines of at most max bytes (terminator
// excluded), failing as soon as a line is known to be longer. It is not safe
// for concurrent use.
type lineReader struct {
	br   *bufio.Reader
	max  int
	long []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, readBufferSize), max: max}
}

// readLine returns the next non-empty line without its "\n" or "\r\n". The
// slice is valid until the next call. A partial line at EOF gives
// io.ErrUnexpectedEOF.
func (lr *lineReader) readLine() ([]byte, error) {
	for {
		line, err := lr.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line, err = lr.assemble(line)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
		if len(line) > lr.max {
			return nil, ErrLineTooLong
		}
		if len(line) > 0 {
			return line, nil
		}
	}
}

// assemble continues a line that did not fit the bufio buffer.
func (lr *lineReader) assemble(first []byte) ([]byte, error) {
	if cap(lr.long) > 4*readBufferSize {
		lr.long = nil // do not pin the last large line's memory
	}
	lr.long = append(lr.long[:0], first...)
	for {
		if len(lr.long) > lr.max+2 {
			return nil, ErrLineTooLong
		}
		part, err := lr.br.ReadSlice('\n')
		lr.long = append(lr.long, part...)
		if err == nil {
			return lr.long, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return lr.long, err
		}
	}
}
