//go:build linux

package miner

import (
	"io"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/stratum/stratumtest"
)

// TestTxStampIsWriteTime: each write's transmit timestamp is found by its
// key, lies within the write call, and an older key is forgotten once a
// newer one was asked for.
func TestTxStampIsWriteTime(t *testing.T) {
	client, server := tcpPair(t)
	go io.Copy(io.Discard, server)
	tx, err := newTxStamper(client)
	if err != nil {
		t.Fatal(err)
	}
	type write struct {
		key           uint32
		before, after time.Time
	}
	var ws []write
	for _, line := range []string{"first line\n", "second, longer line\n", "3\n"} {
		before := time.Now()
		if _, err := client.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		ws = append(ws, write{tx.wrote(len(line)), before, after})
	}
	if want := uint32(len("first line\n") - 1); ws[0].key != want {
		t.Fatalf("first write's key %d, want the offset of its last byte %d", ws[0].key, want)
	}
	// Reports may lag the write a little: ask until the newest arrives.
	var got time.Time
	for deadline := time.Now().Add(5 * time.Second); ; {
		var ok bool
		if got, ok = tx.stamp(ws[1].key); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no transmit timestamp for the second write")
		}
		time.Sleep(time.Millisecond)
	}
	if got.Before(ws[1].before) || got.After(ws[1].after) {
		t.Fatalf("second write stamped %v, outside its write call [%v, %v]", got, ws[1].before, ws[1].after)
	}
	if _, ok := tx.stamp(ws[0].key); ok {
		t.Fatal("the first write's stamp was kept after a newer one was read")
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if got, ok := tx.stamp(ws[2].key); ok {
			if got.Before(ws[2].before) || got.After(ws[2].after) {
				t.Fatalf("third write stamped %v, outside [%v, %v]", got, ws[2].before, ws[2].after)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no transmit timestamp for the third write")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMinerKernelTxTimestamps: with both kernel timestamps a submit's
// latency is kernel time to kernel time: a Now an hour behind, used only
// when a stamp is missing, shows in no result.
func TestMinerKernelTxTimestamps(t *testing.T) {
	stampsOn(t)
	ctx := testContext(t)
	p := startPool(t, stratumtest.Config{}, hardBits, 1)
	behind := func() time.Time { return time.Now().Add(-time.Hour) }
	m := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(1), Now: behind, KernelTimestamps: true, KernelTxTimestamps: true})
	results, err := m.Mine(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Latency <= 0 || r.Latency > 10*time.Second {
			t.Fatalf("latency %v: not timed by the kernel on both ends", r.Latency)
		}
	}
	// The control: transmit time from the clock an hour behind.
	m2 := dial(t, ctx, p.Addr, Options{User: stratumtest.Address(1), Now: behind, KernelTimestamps: true})
	results, err = m2.Mine(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := results[0]; r.Latency < 59*time.Minute {
		t.Fatalf("latency %v without transmit timestamps: the clock was not used", r.Latency)
	}
}
