package miner

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// FuzzHandleLine feeds arbitrary pool lines to a Miner's line handler: it
// must return nil or an error wrapping ErrProtocol (or fail writing the
// client.get_version answer), never panic, and keep its state consistent.
func FuzzHandleLine(f *testing.F) {
	f.Add([]byte(`{"id":null,"method":"mining.notify","params":["1","` + strings.Repeat("ab", 32) +
		`","0100","ff",["` + strings.Repeat("cd", 32) + `"],"20000000","207fffff","68000000",true]}`))
	f.Add([]byte(`{"id":null,"method":"mining.set_difficulty","params":[0.0001]}`))
	f.Add([]byte(`{"id":1,"result":[[["mining.notify","1"]],"00000001",4],"error":null}`))
	f.Add([]byte(`{"id":1,"result":null,"error":[23,"Low difficulty share",null]}`))
	f.Add([]byte(`{"id":1,"result":null,"error":{"code":21,"message":"stale"}}`))
	f.Add([]byte(`{"id":null,"method":"client.reconnect","params":["h","3333",5]}`))
	f.Add([]byte(`{"id":null,"method":"mining.set_extranonce","params":["0a0b",8]}`))
	f.Add([]byte(`{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`))
	f.Add([]byte(`{"id":5,"method":"client.get_version","params":[]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		client, server := net.Pipe()
		go io.Copy(io.Discard, server)
		defer server.Close()
		defer client.Close()
		opts := Options{User: "u", VersionRolling: true}
		opts.setDefaults()
		m := &Miner{conn: client, opts: opts, pending: map[uint64]replyFunc{1: func(reply, error) {}},
			wake: make(chan struct{}), done: make(chan struct{}), workers: []string{"u"}}
		err := m.handleLine(line, opts.Now())
		if err != nil && !errors.Is(err, ErrProtocol) && !strings.Contains(err.Error(), "write") {
			t.Fatalf("error %v does not wrap ErrProtocol", err)
		}
		if j := m.CurrentJob(); j != nil && (j.ID == "" || len(j.MerkleBranch) > maxBranch) {
			t.Fatalf("job %+v", j)
		}
		if d := m.Difficulty(); d < 0 {
			t.Fatalf("difficulty %v", d)
		}
	})
}
