package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns its data in chunks of the given sizes (cycled), then
// err (io.EOF when nil).
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
	err   error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		n = min(n, max(c.sizes[c.i%len(c.sizes)], 1))
		c.i++
	}
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// readAll reads lines until an error and returns them with the error.
func readAll(lr *LineReader) ([]string, error) {
	var lines []string
	for {
		line, err := lr.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

func TestLineReader(t *testing.T) {
	const limit = 32
	exact := strings.Repeat("a", limit)
	over := strings.Repeat("b", limit+1)
	cases := []struct {
		name  string
		input string
		lines []string
		err   error
	}{
		{"empty", "", nil, io.EOF},
		{"one", "abc\n", []string{"abc"}, io.EOF},
		{"crlf", "abc\r\ndef\r\n", []string{"abc", "def"}, io.EOF},
		{"empty lines skipped", "\n\r\n\nabc\n\n\r\n", []string{"abc"}, io.EOF},
		{"inner cr kept", "a\rb\r\r\n", []string{"a\rb\r"}, io.EOF},
		{"exact limit", exact + "\n", []string{exact}, io.EOF},
		{"exact limit crlf", exact + "\r\n", []string{exact}, io.EOF},
		{"over limit", "ok\n" + over + "\n", []string{"ok"}, ErrLineTooLong},
		{"over limit crlf", exact + "x\r\n", nil, ErrLineTooLong},
		{"over limit no end", over, nil, ErrLineTooLong},
		{"limit then cr without lf", exact + "\rx\n", nil, ErrLineTooLong},
		{"partial at EOF", "abc\ndef", []string{"abc"}, io.ErrUnexpectedEOF},
		{"partial cr at EOF", "abc\r", nil, io.ErrUnexpectedEOF},
		{"many", strings.Repeat("l1\nl22\r\n", 50), repeatLines([]string{"l1", "l22"}, 50), io.EOF},
	}
	for _, tc := range cases {
		for _, sizes := range [][]int{nil, {1}, {2, 3, 7}, {limit + 5}} {
			lr := NewLineReader(&chunkReader{data: []byte(tc.input), sizes: sizes}, limit)
			lines, err := readAll(lr)
			if !equalLines(lines, tc.lines) || !errors.Is(err, tc.err) {
				t.Errorf("%s (chunks %v): got %q, %v; want %q, %v", tc.name, sizes, lines, err, tc.lines, tc.err)
			}
			if len(lr.buf) > limit+2 {
				t.Errorf("%s: buffer %d bytes, limit %d", tc.name, len(lr.buf), limit+2)
			}
		}
	}
}

func repeatLines(l []string, n int) []string {
	var out []string
	for range n {
		out = append(out, l...)
	}
	return out
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLineReaderSlowloris(t *testing.T) {
	// An endless line sent one byte per read: rejected once limit+2 bytes
	// are buffered, never growing past that.
	const limit = 1000
	r := &countingReader{}
	lr := NewLineReader(r, limit)
	if _, err := lr.ReadLine(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err %v, want ErrLineTooLong", err)
	}
	if r.n > limit+2 {
		t.Errorf("read %d bytes before rejecting, want at most %d", r.n, limit+2)
	}
	if len(lr.buf) > limit+2 {
		t.Errorf("buffer grew to %d", len(lr.buf))
	}
	if _, err := lr.ReadLine(); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("second call: %v, want ErrLineTooLong again", err)
	}
}

// countingReader returns 'x' one byte at a time, forever.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = 'x'
	c.n++
	return 1, nil
}

func TestLineReaderMiB(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 1<<20)
	t.Run("rejected at default max", func(t *testing.T) {
		r := &chunkReader{data: append(append([]byte("small\n"), big...), '\n'), sizes: []int{4096}}
		lr := NewLineReader(r, 0)
		lines, err := readAll(lr)
		if !equalLines(lines, []string{"small"}) || !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("got %q, %v", lines, err)
		}
		if consumed := 6 + (1 << 20) - len(r.data); consumed > DefaultMaxLineLength+4096+6 {
			t.Errorf("consumed %d bytes before rejecting", consumed)
		}
		if len(lr.buf) > DefaultMaxLineLength+2 {
			t.Errorf("buffer %d bytes", len(lr.buf))
		}
	})
	t.Run("accepted with a 1 MiB max, then shrinks", func(t *testing.T) {
		input := append(append([]byte("a\n"), big...), "\nb\nc\n"...)
		lr := NewLineReader(iotest.HalfReader(bytes.NewReader(input)), 1<<20)
		if l, err := lr.ReadLine(); err != nil || string(l) != "a" {
			t.Fatalf("first line %q, %v", l, err)
		}
		if len(lr.buf) != initialLineBuffer {
			t.Fatalf("initial buffer %d, want %d", len(lr.buf), initialLineBuffer)
		}
		l, err := lr.ReadLine()
		if err != nil || !bytes.Equal(l, big) {
			t.Fatalf("big line: len %d, %v", len(l), err)
		}
		if l, err := lr.ReadLine(); err != nil || string(l) != "b" {
			t.Fatalf("after big line %q, %v", l, err)
		}
		if len(lr.buf) != initialLineBuffer {
			t.Errorf("buffer %d bytes after the big line, want it shrunk to %d", len(lr.buf), initialLineBuffer)
		}
		if l, err := lr.ReadLine(); err != nil || string(l) != "c" {
			t.Fatalf("last line %q, %v", l, err)
		}
		if _, err := lr.ReadLine(); !errors.Is(err, io.EOF) {
			t.Fatalf("end: %v, want io.EOF", err)
		}
	})
}

func TestLineReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("error after data", func(t *testing.T) {
		lr := NewLineReader(iotest.DataErrReader(&chunkReader{data: []byte("a\nb\npart"), err: boom}), 64)
		lines, err := readAll(lr)
		if !equalLines(lines, []string{"a", "b"}) || !errors.Is(err, boom) {
			t.Fatalf("got %q, %v", lines, err)
		}
	})
	t.Run("timeout then continue", func(t *testing.T) {
		// A read error (a deadline) leaves the partial line buffered.
		r := &scriptReader{steps: []step{{data: "hel"}, {err: iotest.ErrTimeout}, {data: "lo\nx\n"}}}
		lr := NewLineReader(r, 64)
		if _, err := lr.ReadLine(); !errors.Is(err, iotest.ErrTimeout) {
			t.Fatalf("err %v, want timeout", err)
		}
		lines, err := readAll(lr)
		if !equalLines(lines, []string{"hello", "x"}) || !errors.Is(err, io.EOF) {
			t.Fatalf("after timeout: %q, %v", lines, err)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		lr := NewLineReader(&scriptReader{steps: []step{{data: "ab"}}, stall: true}, 64)
		if _, err := lr.ReadLine(); !errors.Is(err, io.ErrNoProgress) {
			t.Fatalf("err %v, want io.ErrNoProgress", err)
		}
	})
	t.Run("one-byte reads", func(t *testing.T) {
		lr := NewLineReader(iotest.OneByteReader(strings.NewReader("x\r\ny\n")), 64)
		lines, err := readAll(lr)
		if !equalLines(lines, []string{"x", "y"}) || !errors.Is(err, io.EOF) {
			t.Fatalf("got %q, %v", lines, err)
		}
	})
}

type step struct {
	data string
	err  error
}

// scriptReader plays steps, then io.EOF (or (0, nil) forever when stall).
type scriptReader struct {
	steps []step
	stall bool
}

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		if s.stall {
			return 0, nil
		}
		return 0, io.EOF
	}
	st := &s.steps[0]
	if st.err != nil {
		s.steps = s.steps[1:]
		return 0, st.err
	}
	n := copy(p, st.data)
	st.data = st.data[n:]
	if st.data == "" {
		s.steps = s.steps[1:]
	}
	return n, nil
}

func TestLineReaderIdleMemory(t *testing.T) {
	// A connection that only sends ordinary requests keeps a 512-byte buffer.
	var in bytes.Buffer
	for _, ml := range minerLines {
		in.WriteString(strings.TrimSuffix(ml.line, "\n") + "\n")
	}
	lr := NewLineReader(&in, 0)
	n := 0
	for {
		if _, err := lr.ReadLine(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		n++
	}
	if n != len(minerLines) {
		t.Fatalf("read %d lines, want %d", n, len(minerLines))
	}
	if len(lr.buf) != initialLineBuffer {
		t.Errorf("buffer %d bytes, want %d", len(lr.buf), initialLineBuffer)
	}
}

// stepReader returns its chunks one per Read; a nil chunk is a read
// error (a timeout), and past the last chunk it reports io.EOF.
type stepReader struct{ chunks [][]byte }

var errChunkTimeout = errors.New("timeout")

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	c := r.chunks[0]
	r.chunks = r.chunks[1:]
	if c == nil {
		return 0, errChunkTimeout
	}
	return copy(p, c), nil
}

// Release drops the buffer only when nothing is pending: a partial line
// survives it and is completed by later input.
func TestLineReaderRelease(t *testing.T) {
	lr := NewLineReader(&stepReader{chunks: [][]byte{[]byte("one\n"), []byte("tw"), nil, []byte("o\n")}}, 0)
	if lr.Release() {
		t.Error("released a buffer never allocated")
	}
	if line, err := lr.ReadLine(); err != nil || string(line) != "one" {
		t.Fatalf("ReadLine = %q, %v", line, err)
	}
	if lr.Buffered() != 0 || !lr.Release() || lr.buf != nil {
		t.Fatalf("after a whole line: buffered %d, buf %d bytes; want both released", lr.Buffered(), len(lr.buf))
	}
	if _, err := lr.ReadLine(); !errors.Is(err, errChunkTimeout) {
		t.Fatalf("ReadLine error %v, want the timeout", err)
	}
	if lr.Buffered() != 2 || lr.Release() {
		t.Fatalf("partial line: buffered %d, want 2 and the buffer kept", lr.Buffered())
	}
	if line, err := lr.ReadLine(); err != nil || string(line) != "two" {
		t.Fatalf("ReadLine = %q, %v, want two", line, err)
	}
}

// referenceLines is the obvious, unbounded implementation: split the whole
// input on '\n'.
func referenceLines(input []byte, limit int) ([]string, error) {
	var lines []string
	parts := bytes.Split(input, []byte("\n"))
	for i, p := range parts {
		last := i == len(parts)-1
		if last {
			switch {
			case len(p) == 0:
				return lines, io.EOF
			case len(p) > limit+1 || (len(p) == limit+1 && p[limit] != '\r'):
				return lines, ErrLineTooLong
			default:
				return lines, io.ErrUnexpectedEOF
			}
		}
		p = bytes.TrimSuffix(p, []byte("\r"))
		if len(p) > limit {
			return lines, ErrLineTooLong
		}
		if len(p) > 0 {
			lines = append(lines, string(p))
		}
	}
	panic("unreachable")
}

func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nbb\r\n\nccc"), uint8(3), []byte{1, 2, 3})
	f.Add([]byte(strings.Repeat("x", 40)+"\n"), uint8(8), []byte{5})
	f.Add([]byte("\r\n\r\n"), uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, input []byte, limit uint8, sizes []byte) {
		m := int(limit) + 1
		chunks := make([]int, len(sizes))
		for i, s := range sizes {
			chunks[i] = int(s)
		}
		lr := NewLineReader(&chunkReader{data: input, sizes: chunks}, m)
		got, gotErr := readAll(lr)
		want, wantErr := referenceLines(input, m)
		if !equalLines(got, want) || !errors.Is(gotErr, wantErr) {
			t.Fatalf("max %d chunks %v input %q:\n got %q, %v\nwant %q, %v", m, chunks, input, got, gotErr, want, wantErr)
		}
		if len(lr.buf) > max(m+2, initialLineBuffer) {
			t.Fatalf("buffer %d bytes for max %d", len(lr.buf), m)
		}
	})
}

func BenchmarkLineReader(b *testing.B) {
	var in bytes.Buffer
	for range 100 {
		in.WriteString(minerLines[15].line + "\n")
	}
	data := in.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	r := bytes.NewReader(data)
	lr := NewLineReader(r, 0)
	for b.Loop() {
		r.Reset(data)
		lr.rerr = nil
		for {
			if _, err := lr.ReadLine(); err != nil {
				break
			}
		}
	}
}
