package chain

import "testing"

// TestBIP22Result maps every BIP 22 answer stratumd knows, and unknown
// ones, to an outcome. The answers are Core's: submitblock's own
// ("duplicate", "inconclusive", null), BIP22ValidationResult's ("rejected"
// for an empty reason) and validation.cpp's reject reasons, several of
// which Core's test/functional/mining_basic.py sees a live node give
// ("high-hash", "bad-txnmrklroot", "bad-txns-nonfinal", "duplicate-invalid").
func TestBIP22Result(t *testing.T) {
	cases := []struct {
		answer string
		want   SubmitStatus
	}{
		{BIP22Accepted, Accepted},
		{BIP22Duplicate, Duplicate},
		{BIP22DuplicateInconclusive, Duplicate},
		{BIP22DuplicateInvalid, Rejected},
		{BIP22Inconclusive, Inconclusive},
		{BIP22InconclusiveNotBestPrevBlk, Inconclusive},
		{"inconclusive-anything-else", Inconclusive},
		{BIP22PrevBlkNotFound, Inconclusive},
		{BIP22Rejected, Rejected},
		{BIP22HighHash, Rejected},
		{BIP22BadDiffBits, Rejected},
		{BIP22TimeTooOld, Rejected},
		{BIP22TimeTooNew, Rejected},
		{BIP22TimewarpAttack, Rejected},
		{BIP22BadVersion, Rejected},
		{"bad-version(0x00000001)", Rejected},
		{BIP22BadPrevBlk, Rejected},
		{BIP22BadForkPriorToCheckpoint, Rejected},
		{BIP22CheckpointMismatch, Rejected},
		{BIP22BadTxnMrklRoot, Rejected},
		{BIP22BadTxnsDuplicate, Rejected},
		{BIP22BadBlkLength, Rejected},
		{BIP22BadBlkWeight, Rejected},
		{BIP22BadBlkSigops, Rejected},
		{BIP22BadCbMissing, Rejected},
		{BIP22BadCbMultiple, Rejected},
		{BIP22BadCbLength, Rejected},
		{BIP22BadCbHeight, Rejected},
		{BIP22BadCbAmount, Rejected},
		{BIP22BadWitnessNonceSize, Rejected},
		{BIP22BadWitnessMerkleMatch, Rejected},
		{BIP22UnexpectedWitness, Rejected},
		{BIP22BadTxnsNonFinal, Rejected},
		{BIP22BadSignetBlkSig, Rejected},
		{BIP22BadTxnsVinEmpty, Rejected},
		{BIP22BadTxnsVoutEmpty, Rejected},
		{BIP22BadTxnsOversize, Rejected},
		{BIP22BadTxnsVoutTooLarge, Rejected},
		{BIP22BadTxnsInputsDuplicate, Rejected},
		{BIP22BadTxnsPrevoutNull, Rejected},
		{BIP22BadTxnsInputsMissingOrSpent, Rejected},
		{BIP22BadTxnsBIP30, Rejected},
		{BIP22BadTxnsPrematureCoinbaseSpend, Rejected},
		{BIP22BadTxnsInBelowOut, Rejected},
		{BIP22BadTxnsFeeOutOfRange, Rejected},
		{BIP22ScriptVerifyFailed + " (Script failed an OP_EQUALVERIFY operation)", Rejected},
		// A reason this build does not know is still a rejection.
		{"some-future-reason", Rejected},
		// Near misses of the non-rejections are rejections.
		{"Duplicate", Rejected},
		{"duplicate-", Rejected},
		{"inconclusive-", Inconclusive},
		{"prev-blk-not-found ", Rejected},
	}
	for _, c := range cases {
		got := BIP22Result(c.answer)
		if got.Status != c.want {
			t.Errorf("%q: %v, want %v", c.answer, got.Status, c.want)
		}
		if got.Reason != c.answer {
			t.Errorf("%q: reason %q, want the answer kept", c.answer, got.Reason)
		}
	}
}
