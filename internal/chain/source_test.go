package chain

import (
	"sync"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

func TestNotifierCoalesces(t *testing.T) {
	tests := []struct {
		name  string
		kinds []UpdateKind
		want  UpdateKind
	}{
		{"mempool only", []UpdateKind{MempoolChanged, MempoolChanged}, MempoolChanged},
		{"tip then mempool", []UpdateKind{NewTip, MempoolChanged, MempoolChanged}, NewTip},
		{"mempool then tip", []UpdateKind{MempoolChanged, NewTip}, NewTip},
		{"single", []UpdateKind{MempoolChanged}, MempoolChanged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := NewNotifier()
			for i, k := range tc.kinds { // no reader: must not block
				n.Notify(Update{Kind: k, Height: int32(i), Tip: chainhash.Hash{byte(i)}})
			}
			last := len(tc.kinds) - 1
			select {
			case u := <-n.Updates():
				if u.Kind != tc.want || u.Height != int32(last) || u.Tip != (chainhash.Hash{byte(last)}) {
					t.Fatalf("got %+v, want kind %v at height %d", u, tc.want, last)
				}
			default:
				t.Fatal("no update pending")
			}
			select {
			case u := <-n.Updates():
				t.Fatalf("second update %+v; updates must coalesce", u)
			default:
			}
		})
	}
}

func TestNotifierClose(t *testing.T) {
	n := NewNotifier()
	n.Notify(Update{Kind: NewTip, Height: 7})
	n.Close()
	n.Close()                              // idempotent
	n.Notify(Update{Kind: MempoolChanged}) // ignored, no panic
	if u, ok := <-n.Updates(); !ok || u.Kind != NewTip || u.Height != 7 {
		t.Fatalf("pending update lost: %+v %v", u, ok)
	}
	if _, ok := <-n.Updates(); ok {
		t.Fatal("channel not closed")
	}
}

func TestNotifierConcurrent(t *testing.T) {
	n := NewNotifier()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				kind := MempoolChanged
				if i%10 == 0 {
					kind = NewTip
				}
				n.Notify(Update{Kind: kind, Height: int32(g*1000 + i)})
			}
		}()
	}
	done := make(chan int)
	go func() {
		count := 0
		for range n.Updates() {
			count++
		}
		done <- count
	}()
	wg.Wait()
	n.Close()
	if count := <-done; count < 1 || count > 4000 {
		t.Fatalf("received %d updates", count)
	}
}

func TestKindStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{NewTip.String(), "new-tip"}, {MempoolChanged.String(), "mempool-changed"},
		{UpdateKind(0).String(), "UpdateKind(0)"},
		{Accepted.String(), "accepted"}, {Duplicate.String(), "duplicate"},
		{Inconclusive.String(), "inconclusive"}, {Rejected.String(), "rejected"},
		{SubmitStatus(9).String(), "SubmitStatus(9)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
