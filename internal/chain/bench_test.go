package chain

import (
	"testing"
)

// BenchmarkJobHash measures the share-validation hot path (coinbase hash,
// merkle branch, header hash, target check) on a job built from real block
// 574,200 (3,314 transactions, 12-step branch) and on a small template.
func BenchmarkJobHash(b *testing.B) {
	blk := loadBlock(b, "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk")
	cases := []struct {
		name string
		tmpl *Template
	}{
		{"segwit-3315tx", templateFromBlock(blk, 574200)},
		{"small-3tx", smallTemplate(840000, fakeTx(1, false), fakeTx(2, true), fakeTx(3, false))},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			job, err := NewJob("bench", bc.tmpl, testConfig())
			if err != nil {
				b.Fatal(err)
			}
			en1 := []byte{1, 2, 3, 4}
			en2 := []byte{5, 6, 7, 8, 9, 10, 11, 12}
			ntime := uint32(bc.tmpl.CurTime.Unix())
			met := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h, _ := job.Hash(en1, en2, ntime, uint32(i), bc.tmpl.Version)
				if job.Target.Meets(&h) {
					met++
				}
			}
			b.ReportMetric(float64(len(job.MerkleBranch)), "branch")
			_ = met
		})
	}
}

// BenchmarkNewJob measures building a job from a template of a real block.
func BenchmarkNewJob(b *testing.B) {
	blk := loadBlock(b, "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk")
	tmpl := templateFromBlock(blk, 574200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewJob("bench", tmpl, testConfig()); err != nil {
			b.Fatal(err)
		}
	}
}
