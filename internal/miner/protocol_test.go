package miner

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// pipeMiner returns a Miner on one end of a net.Pipe and the other end,
// from which the test reads the miner's requests (drained in the
// background) and to which it writes the pool's lines.
func pipeMiner(t *testing.T, opts Options) (*Miner, net.Conn) {
	t.Helper()
	client, server := net.Pipe()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(io.Discard, server)
	}()
	m := New(client, opts)
	t.Cleanup(func() {
		m.Close()
		server.Close()
		<-drained
	})
	return m, server
}

func TestProtocolViolations(t *testing.T) {
	validNotify := `{"id":null,"method":"mining.notify","params":["1","` + strings.Repeat("00", 32) +
		`","01000000","ffffffff",[],"20000000","1d00ffff","68000000",true]}`
	cases := []struct {
		name, line string
		want       error
	}{
		{"not json", "hello", ErrProtocol},
		{"reply to unknown id", `{"id":77,"result":true,"error":null}`, ErrProtocol},
		{"bad error member", `{"id":1,"result":null,"error":5}`, ErrProtocol},
		{"notify too few params", `{"id":null,"method":"mining.notify","params":["1"]}`, ErrProtocol},
		{"notify short prevhash", strings.Replace(validNotify, strings.Repeat("00", 32), "00", 1), ErrProtocol},
		{"notify bad branch", strings.Replace(validNotify, "[]", `["zz"]`, 1), ErrProtocol},
		{"notify bad ntime", strings.Replace(validNotify, "68000000", "680000", 1), ErrProtocol},
		{"notify clean not bool", strings.Replace(validNotify, "true]", `"yes"]`, 1), ErrProtocol},
		{"zero difficulty", `{"id":null,"method":"mining.set_difficulty","params":[0]}`, ErrProtocol},
		{"negative difficulty", `{"id":null,"method":"mining.set_difficulty","params":[-1]}`, ErrProtocol},
		{"bad extranonce", `{"id":null,"method":"mining.set_extranonce","params":["zz",4]}`, ErrProtocol},
		{"bad reconnect port", `{"id":null,"method":"client.reconnect","params":["h","x",0]}`, ErrProtocol},
		{"line too long", `{"id":null,"method":"x","params":["` + strings.Repeat("a", 70000) + `"]}`, ErrLineTooLong},
		{"eof", "", ErrClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, server := pipeMiner(t, Options{User: "u"})
			if tc.line != "" {
				// The miner may hang up before a long line is fully written.
				_, _ = io.WriteString(server, tc.line+"\n")
			} else {
				server.Close()
			}
			<-m.Done()
			if err := m.Err(); !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAcceptsValidLines(t *testing.T) {
	m, server := pipeMiner(t, Options{User: "u"})
	lines := []string{
		`{"id":null,"method":"mining.set_difficulty","params":[0.5]}`,
		`{"id":null,"method":"mining.notify","params":["a1","` + strings.Repeat("11", 32) +
			`","01000000","ffffffff",["` + strings.Repeat("22", 32) + `"],"20000000","1d00ffff","68000000",false]}`,
		`{"id":null,"method":"client.show_message","params":["hello"]}`,
		`{"id":null,"method":"client.reconnect","params":["pool.example",3333,10]}`,
	}
	for _, l := range lines {
		if _, err := io.WriteString(server, l+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	ctx := testContext(t)
	rc, err := m.WaitReconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != "pool.example" || rc.Port != 3333 || rc.Wait.Seconds() != 10 {
		t.Fatalf("reconnect %+v", rc)
	}
	job := m.CurrentJob()
	if job == nil || job.ID != "a1" || job.Difficulty != 0.5 || job.Clean || job.NTime != 0x68000000 ||
		job.Bits != 0x1d00ffff || len(job.MerkleBranch) != 1 || job.MerkleBranch[0][0] != 0x22 {
		t.Fatalf("job %+v", job)
	}
	if evs := m.Events(); len(evs) != 4 || evs[2].Method != "client.show_message" {
		t.Fatalf("events %+v", evs)
	}
	if m.Err() != nil {
		t.Fatal(m.Err())
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.WaitEvent(ctx2, func(Event) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitEvent on a cancelled context: %v", err)
	}
}

func TestScatter(t *testing.T) {
	cases := []struct {
		v    uint64
		mask uint32
		want uint32
	}{
		{0, 0x1fffe000, 0},
		{1, 0x1fffe000, 0x2000},
		{3, 0x1fffe000, 0x6000},
		{0xffff, 0x1fffe000, 0x1fffe000},
		{0x1ffff, 0x1fffe000, 0x1fffe000}, // bits beyond the mask are dropped
		{5, 0x00010100, 0x00000100},       // 0b101: bit 0 to the lowest mask bit, bit 1 clear, bit 2 dropped
		{2, 0x00010100, 0x00010000},
	}
	for _, c := range cases {
		if got := scatter(c.v, c.mask); got != c.want {
			t.Errorf("scatter(%#x, %08x) = %08x, want %08x", c.v, c.mask, got, c.want)
		}
	}
}
