package stratum

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/wire"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/chain/chaintest"
	"github.com/stratumd/stratumd/internal/password"
	"github.com/stratumd/stratumd/internal/store"
)

// FuzzSessionLine feeds arbitrary lines, twice each, to a session of a
// server with a job: whatever a miner sends, the session answers or
// disconnects, and never panics.
func FuzzSessionLine(f *testing.F) {
	files, _ := filepath.Glob("testdata/sessions/*.jsonl")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	srv, err := New(Config{
		Source: acceptAll{chaintest.New(&chaincfg.RegressionNetParams)}, Network: &chaincfg.RegressionNetParams, Users: newFakeUsers(), Shares: nopSink{},
		Blocks: nopSink{}, PayoutScript: payoutScript(f),
		Auth: AuthOpen, AdminPassword: "admin",
		AdminHasher: password.Argon2id{Params: password.Params{Memory: 8, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
		Limits:      Limits{MinDiff: 1e-12, StartDiff: 1e-12},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.buildJob(context.Background()); err != nil {
		f.Fatal(err)
	}
	job := srv.currentJob().job.ID
	addr := regtestAddress(f, 1)
	f.Fuzz(func(t *testing.T, line []byte) {
		line = []byte(strings.NewReplacer("ADDR", addr, "JOB", job).Replace(string(line)))
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, b); close(done) }()
		g := &serveGroup{ctx: context.Background()}
		c := newSession(srv, g, a, "192.0.2.1")
		srv.mu.Lock()
		srv.sessions[c] = struct{}{}
		srv.mu.Unlock()
		var err error
		for range 2 {
			if err = c.handleLine(line); err != nil {
				break
			}
		}
		if err == nil {
			err = endSession(closeHungUp, nil) // as if the miner left
		}
		c.end(err)
		b.Close()
		<-done
		g.wg.Wait()
		srv.Unban("192.0.2.1")
	})
}

// nopSink validates shares and forgets them; it records no blocks. Unlike
// the fakes it keeps no state, so fuzzing does not slow down as it runs.
type nopSink struct{}

func (nopSink) Write(_ context.Context, s *store.Share) (uint64, error) { return 1, s.Validate() }

func (nopSink) InsertBlock(_ context.Context, b store.Block) (store.Block, error) { return b, nil }

// acceptAll is a chain source that accepts every block and keeps none.
type acceptAll struct{ chain.Source }

func (acceptAll) SubmitBlock(context.Context, *wire.MsgBlock) (chain.SubmitResult, error) {
	return chain.SubmitResult{Status: chain.Accepted}, nil
}
