//go:build linux

package miner

import (
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, closed at the
// end of the test.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// stampsOn keeps a timestamping socket open for the test and returns once
// the kernel stamps packets: it turns receive timestamps on for the whole
// host lazily (a work item after the first SO_TIMESTAMPNS socket), so the
// first packets after that may carry none.
func stampsOn(t *testing.T) {
	t.Helper()
	client, server := tcpPair(t)
	rx, err := newRxStampReader(client)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if _, err := server.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := rx.Read(buf); err != nil {
			t.Fatal(err)
		}
		if !rx.stamp().IsZero() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the kernel never stamped a received packet")
}

// TestRxStampIsArrivalTime: a line that waited in the socket is timed at
// its arrival, not at the later read.
func TestRxStampIsArrivalTime(t *testing.T) {
	stampsOn(t)
	client, server := tcpPair(t)
	rx, err := newRxStampReader(client)
	if err != nil {
		t.Fatal(err)
	}
	if !rx.stamp().IsZero() {
		t.Fatal("stamp before any read")
	}
	before := time.Now()
	if _, err := server.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	// The line waits in the socket; the read comes well after it arrived.
	const wait = 50 * time.Millisecond
	time.Sleep(wait)
	buf := make([]byte, 64)
	n, err := rx.Read(buf)
	if err != nil || string(buf[:n]) != "first\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	readAt := time.Now()
	got := rx.stamp()
	if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
		t.Fatalf("stamp %v not within the write [%v, %v]", got, before, after)
	}
	if readAt.Sub(got) < wait {
		t.Fatalf("stamp %v is the read time %v, not the arrival", got, readAt)
	}

	// EOF after the peer closes.
	server.Close()
	if n, err := rx.Read(buf); n != 0 || err == nil {
		t.Fatalf("read after close: %d, %v", n, err)
	}
}

// TestMinerKernelTimestamps: with KernelTimestamps a notification that
// arrived while the reader was busy is timed at its arrival.
func TestMinerKernelTimestamps(t *testing.T) {
	stampsOn(t)
	conn, pool := tcpPair(t)

	block := make(chan struct{})
	events := make(chan Event, 2)
	m := New(conn, Options{User: "u", KernelTimestamps: true, OnEvent: func(e Event) {
		if e.Difficulty == 1 {
			<-block // the reader is busy while the next line arrives
		}
		events <- e
	}})
	defer m.Close()
	if _, err := pool.Write([]byte(`{"id":null,"method":"mining.set_difficulty","params":[1]}` + "\n")); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if _, err := pool.Write([]byte(`{"id":null,"method":"mining.set_difficulty","params":[2]}` + "\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	close(block)
	<-events
	e := <-events
	if e.Difficulty != 2 {
		t.Fatalf("second event %+v", e)
	}
	if d := e.Time.Sub(sent); d < -time.Millisecond || d > 25*time.Millisecond {
		t.Fatalf("event timed %v after its write; the reader was blocked 50ms: not the arrival time", d)
	}
}
