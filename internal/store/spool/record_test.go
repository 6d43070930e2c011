package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// decodeAll decodes every record in b.
func decodeAll(b []byte, maxPayload int) ([]Record, error) {
	rr := newRecordReader(bytes.NewReader(b), 0, int64(len(b)), maxPayload, 64)
	var out []Record
	for {
		seq, p, err := rr.next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, Record{Seq: seq, Data: append([]byte(nil), p...)})
	}
}

func TestRecordFraming(t *testing.T) {
	rec := appendRecord(nil, 0x0102030405060708, []byte("hello"))
	if len(rec) != headerSize+5 {
		t.Fatalf("encoded %d bytes", len(rec))
	}
	if n := binary.LittleEndian.Uint32(rec[0:4]); n != 5 {
		t.Fatalf("length field %d", n)
	}
	if seq := binary.LittleEndian.Uint64(rec[8:16]); seq != 0x0102030405060708 {
		t.Fatalf("seq field %x", seq)
	}
	good := appendRecord(appendRecord(nil, 7, []byte("a")), 8, nil)
	recs, err := decodeAll(good, 10)
	if err != nil || len(recs) != 2 || recs[0].Seq != 7 || string(recs[0].Data) != "a" || recs[1].Seq != 8 || len(recs[1].Data) != 0 {
		t.Fatalf("decode: %v, %v", recs, err)
	}

	for name, tc := range map[string]struct {
		b    []byte
		max  int
		want error
	}{
		"short header":     {good[:10], 10, errBadRecord},
		"short payload":    {rec[:len(rec)-1], 10, errBadRecord},
		"flipped length":   {flip(rec, 0), 10, errBadRecord},
		"flipped crc":      {flip(rec, 4), 10, errBadRecord},
		"flipped seq":      {flip(rec, 8), 10, errBadRecord},
		"flipped payload":  {flip(rec, 16), 10, errBadRecord},
		"huge length":      {append([]byte{0xff, 0xff, 0xff, 0x7f}, rec[4:]...), 10, errBadRecord},
		"valid over limit": {rec, 4, ErrCorrupt},
		"zeros":            {make([]byte, 64), 10, errBadRecord},
	} {
		_, err := decodeAll(tc.b, tc.max)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// crc32c is a bitwise CRC-32C (reflected polynomial 0x82F63B78), written
// independently of hash/crc32 to check the record checksum against.
func crc32c(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x82f63b78
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

func TestChecksumIsCRC32C(t *testing.T) {
	// RFC 3720 check value.
	if got := crc32c([]byte("123456789")); got != 0xe3069283 {
		t.Fatalf("reference CRC-32C %08x", got)
	}
	for _, p := range [][]byte{nil, []byte("123456789"), bytes.Repeat([]byte{0xa5}, 1000)} {
		rec := appendRecord(nil, 0xdeadbeef01, p)
		covered := append(append(append([]byte(nil), rec[0:4]...), rec[8:16]...), p...)
		if got, want := binary.LittleEndian.Uint32(rec[4:8]), crc32c(covered); got != want {
			t.Fatalf("%d-byte payload: stored %08x, CRC-32C of len||seq||payload %08x", len(p), got, want)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x01
	return c
}

// FuzzDecodeRecord feeds arbitrary bytes to the record decoder (it must not
// panic and must only return records that re-encode to the same bytes) and
// checks that an encoded (seq, payload) decodes to itself.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, 1, []byte("share")), uint64(1), []byte("share"))
	f.Add(appendRecord(appendRecord(nil, 1, nil), 2, []byte{0}), uint64(2), []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, uint64(1<<63), []byte("x"))
	f.Add(make([]byte, 32), uint64(0), make([]byte, 300))
	f.Fuzz(func(t *testing.T, data []byte, seq uint64, payload []byte) {
		const max = 256
		recs, err := decodeAll(data, max)
		var re []byte
		for _, r := range recs {
			if len(r.Data) > max {
				t.Fatalf("payload of %d bytes over limit", len(r.Data))
			}
			re = appendRecord(re, r.Seq, r.Data)
		}
		if !bytes.HasPrefix(data, re) {
			t.Fatalf("decoded records do not re-encode to the input")
		}
		if err == nil && len(re) != len(data) {
			t.Fatalf("no error but %d of %d bytes decoded", len(re), len(data))
		}
		if err != nil && !errors.Is(err, errBadRecord) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error kind: %v", err)
		}

		enc := appendRecord(nil, seq, payload)
		got, err := decodeAll(enc, max)
		if len(payload) > max {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("valid record over limit: %v", err)
			}
			return
		}
		if err != nil || len(got) != 1 || got[0].Seq != seq || !bytes.Equal(got[0].Data, payload) {
			t.Fatalf("round trip of seq %d, %d bytes: %v, %v", seq, len(payload), got, err)
		}
	})
}
