package stratum

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/stratum/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/sessions/*.golden")

// TestGoldenSessions replays testdata/sessions/*.jsonl (client lines)
// against a deterministic server (fixed clock, first extranonce1, scripted
// chain) and compares every line the server sends with the .golden file.
// Placeholders in the client lines: ADDR (a regtest address), JOB (the
// current job id), NTIME (its ntime), SHARE_NONCE (a nonce meeting the
// session's difficulty, mined against the server's job) and LOW_NONCE (one
// that does not).
func TestGoldenSessions(t *testing.T) {
	files, err := filepath.Glob("testdata/sessions/*.jsonl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".jsonl")
		t.Run(name, func(t *testing.T) {
			got := runTranscript(t, in)
			golden := strings.TrimSuffix(in, ".jsonl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("transcript differs from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func runTranscript(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, harnessOpts{bits: hardBits, config: func(c *Config) {
		c.AdminPassword = "golden-admin"
		c.MinDiff, c.StartDiff = 1e-7, 1e-5
	}})
	e := h.srv.currentJob()
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	var out strings.Builder
	readLine := func() (string, bool) {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			return "", false
		}
		out.WriteString(line)
		return line, true
	}
	addr := regtestAddress(t, 9)
	seenNonce := uint32(0)
	notified, authorized := false, false
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		line = strings.ReplaceAll(line, "ADDR", addr)
		line = strings.ReplaceAll(line, "JOB", e.job.ID)
		line = strings.ReplaceAll(line, "NTIME", fmt.Sprintf("%08x", e.job.Template.CurTime.Unix()))
		if strings.Contains(line, "_NONCE") {
			c := onlySession(t, h.srv)
			c.mu.Lock()
			diff := c.diff
			c.mu.Unlock()
			target := chain.NewTarget(chain.DifficultyToTarget(diff))
			en1 := c.en1
			want := strings.Contains(line, "SHARE_NONCE")
			nonce := uint32(0)
			if want && seenNonce != 0 {
				nonce = seenNonce
			} else {
				for ; ; nonce++ {
					hash, _ := e.job.Hash(en1[:], make([]byte, 8), uint32(e.job.Template.CurTime.Unix()), nonce, int32(e.version))
					if target.Meets(&hash) == want && !e.job.Target.Meets(&hash) {
						break
					}
				}
				if want {
					seenNonce = nonce
				}
			}
			line = strings.NewReplacer("SHARE_NONCE", fmt.Sprintf("%08x", nonce), "LOW_NONCE", fmt.Sprintf("%08x", nonce)).Replace(line)
		}
		if _, err := conn.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal([]byte(line), &req) != nil {
			break // malformed: the server answers and closes
		}
		replied := false
		for {
			got, ok := readLine()
			if !ok {
				t.Fatalf("no reply to %s", line)
			}
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			json.Unmarshal([]byte(got), &m)
			if m.Method == "mining.notify" {
				notified = true
			}
			if m.Method == "" && string(m.ID) == string(req.ID) {
				replied = true
				authorized = authorized || (req.Method == wire.MethodAuthorize && strings.Contains(got, `"result":true`))
			}
			// A miner works only once it has a job: after its first
			// successful authorize, wait for the notify that follows the
			// reply too.
			if replied && (notified || !authorized) {
				break
			}
		}
	}
	conn.(*net.TCPConn).CloseWrite()
	for {
		if _, ok := readLine(); !ok {
			break
		}
	}
	return strings.ReplaceAll(out.String(), addr, "ADDR")
}

// onlySession returns the server's single session.
func onlySession(t *testing.T, s *Server) *session {
	t.Helper()
	list := s.snapshot(func(*session) bool { return true })
	if len(list) != 1 {
		t.Fatalf("%d sessions", len(list))
	}
	return list[0]
}
