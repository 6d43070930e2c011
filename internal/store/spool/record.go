package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// headerSize is the size of a record's frame header: length, CRC, seq.
const headerSize = 16

// errBadRecord reports a record that is incomplete or fails its checksum: the
// trace of a torn write when it is at the end of the last segment.
var errBadRecord = errors.New("bad record")

// Record is one record read back from the spool.
type Record struct {
	// Seq is the record's sequence number.
	Seq uint64
	// Data is the payload given to Append; it belongs to the caller.
	Data []byte
}

// checksum returns the CRC-32C of a record: its length and seq (taken from
// the header h) and its payload.
func checksum(h []byte, payload []byte) uint32 {
	tab := crc32.MakeTable(crc32.Castagnoli)
	c := crc32.Update(0, tab, h[0:4])
	c = crc32.Update(c, tab, h[8:16])
	return crc32.Update(c, tab, payload)
}

// recordSize is the number of bytes a record with the given payload length
// takes on disk.
func recordSize(payloadLen int) int64 { return headerSize + int64(payloadLen) }

// appendRecord appends the encoded record (seq, payload) to dst.
func appendRecord(dst []byte, seq uint64, payload []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint64(h[8:16], seq)
	binary.LittleEndian.PutUint32(h[4:8], checksum(h[:], payload))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// recordReader decodes records from a byte stream of known length. It never
// allocates more than maxPayload bytes for a payload.
type recordReader struct {
	r          *bufio.Reader
	off        int64 // offset of the next record, relative to the stream's base
	end        int64 // offset where the stream ends
	maxPayload int
	hdr        [headerSize]byte
	buf        []byte // reused payload buffer
}

// newRecordReader returns a reader for the records in r, which holds the
// bytes from offset off up to offset end.
func newRecordReader(r io.Reader, off, end int64, maxPayload, bufSize int) *recordReader {
	return &recordReader{
		r:          bufio.NewReaderSize(r, bufSize),
		off:        off,
		end:        end,
		maxPayload: maxPayload,
	}
}

// next decodes the record at rr.off. The returned payload is valid until the
// next call. It returns io.EOF when rr.off is exactly at the end, an error
// wrapping errBadRecord when the record is incomplete or fails its checksum
// (rr.off then still points at it), and an error wrapping ErrCorrupt for a
// valid record larger than maxPayload.
func (rr *recordReader) next() (seq uint64, payload []byte, err error) {
	left := rr.end - rr.off
	if left == 0 {
		return 0, nil, io.EOF
	}
	if left < headerSize {
		return 0, nil, fmt.Errorf("%w: %d bytes left, header needs %d", errBadRecord, left, headerSize)
	}
	if _, err := io.ReadFull(rr.r, rr.hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read header: %w", err)
	}
	n := int64(binary.LittleEndian.Uint32(rr.hdr[0:4]))
	sum := binary.LittleEndian.Uint32(rr.hdr[4:8])
	seq = binary.LittleEndian.Uint64(rr.hdr[8:16])
	if n > left-headerSize {
		return 0, nil, fmt.Errorf("%w: length %d past end (%d bytes left)", errBadRecord, n, left-headerSize)
	}
	if n > int64(rr.maxPayload) {
		// Check the checksum without allocating: a valid record over the
		// limit means MaxPayload was lowered, and must not be cut off.
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		h.Write(rr.hdr[0:4])
		h.Write(rr.hdr[8:16])
		if _, err := io.CopyN(h, rr.r, n); err != nil {
			return 0, nil, fmt.Errorf("read payload: %w", err)
		}
		if h.Sum32() == sum {
			return 0, nil, fmt.Errorf("%w: valid record seq %d of %d bytes exceeds MaxPayload %d", ErrCorrupt, seq, n, rr.maxPayload)
		}
		return 0, nil, fmt.Errorf("%w: length %d over limit %d", errBadRecord, n, rr.maxPayload)
	}
	if int64(cap(rr.buf)) < n {
		rr.buf = make([]byte, n)
	}
	payload = rr.buf[:n]
	if _, err := io.ReadFull(rr.r, payload); err != nil {
		return 0, nil, fmt.Errorf("read payload: %w", err)
	}
	if checksum(rr.hdr[:], payload) != sum {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", errBadRecord)
	}
	rr.off += headerSize + n
	return seq, payload, nil
}
