//go:build unix

package stratum

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tryWrite writes what the send buffer takes and never waits: a reader
// that does not read leaves it a partial count, the ordinary write then
// finishes the line, and the bytes arrive whole and in order.
func TestTryWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	rc := rawSocket(server)
	if rc == nil {
		t.Fatal("no raw socket for a *net.TCPConn")
	}
	if rawSocket(&net.IPConn{}) != nil {
		t.Fatal("raw socket for a connection that is not TCP")
	}

	if n := tryWrite(rc, []byte("hello\n")); n != 6 {
		t.Fatalf("tryWrite of a short line wrote %d", n)
	}
	// Far more than the socket buffers hold while the client does not read.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	start := time.Now()
	n := tryWrite(rc, big)
	if n <= 0 || n >= len(big) {
		t.Fatalf("tryWrite of %d bytes to a reader that does not read wrote %d", len(big), n)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("tryWrite waited %v", d)
	}
	done := make(chan error, 1)
	go func() {
		server.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := server.Write(big[n:])
		server.Close()
		done <- err
	}()
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("hello\n"), big...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want %d in order", len(got), len(want))
	}
	if n := tryWrite(rc, []byte("x")); n != 0 {
		t.Fatalf("tryWrite on a closed connection wrote %d", n)
	}
}
