package miner

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkHeaderHash measures the miner's inner loop: one double SHA-256
// of an 80-byte header and a share-target comparison per nonce.
func BenchmarkHeaderHash(b *testing.B) {
	params := json.RawMessage(`["1","` + strings.Repeat("00", 32) +
		`","01000000","ffffffff",[],"20000000","1d00ffff","68000000",true]`)
	job, err := parseNotify(params)
	if err != nil {
		b.Fatal(err)
	}
	job.Extranonce1, job.Extranonce2Size, job.Difficulty = []byte{0, 0, 0, 1}, 4, 1e12
	target := job.ShareTarget()
	var hdr [80]byte
	job.fillHeader(&hdr, job.MerkleRoot([]byte{0, 0, 0, 1}), job.NTime, job.Version)
	met := 0
	for i := 0; b.Loop(); i++ {
		hdr[76], hdr[77], hdr[78] = byte(i), byte(i>>8), byte(i>>16)
		h := doubleSHA(&hdr)
		if target.Meets(&h) {
			met++
		}
	}
	if met > 1 {
		b.Fatalf("%d hashes met difficulty 1e12", met)
	}
}
