//go:build chaos

package hostile

import (
	"net"
	"os"
	"testing"
	"time"
)

// envFloodSink, when set to 1, sends the 10,000-connection flood to a sink
// in this test process instead of stratumd: a control measurement of what
// the flood costs the honest miners on the shared cores whoever serves it.
// The sink accepts every connection, closes five in six at once and the
// sixth after the handshake timeout (about what stratumd does with the
// flood). The other attacks still go to stratumd.
const envFloodSink = "STRATUMD_HOSTILE_FLOOD_SINK"

// floodTarget returns the address the flood connects to: addr, or a sink's
// when envFloodSink is set.
func floodTarget(t *testing.T, addr string, hold time.Duration) string {
	t.Helper()
	if os.Getenv(envFloodSink) != "1" {
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for n := 0; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if n%6 != 5 {
				c.Close()
				continue
			}
			time.AfterFunc(hold, func() { c.Close() })
		}
	}()
	t.Logf("control run: the connection flood goes to a sink in the test process (%s), not to stratumd", ln.Addr())
	return ln.Addr().String()
}
