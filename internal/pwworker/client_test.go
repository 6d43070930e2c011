package pwworker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/stratumd/stratumd/internal/password"
)

// legacy returns the stored bcoin-stratum hash of pw.
func legacy(t *testing.T, pw string) string {
	t.Helper()
	h, err := password.LegacyHash(sha256dHex(pw))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type verifyCase struct {
	name, stored, password string
}

// verifyCases are stored hashes and passwords whose answers must not
// depend on where they are computed.
func verifyCases(t *testing.T) []verifyCase {
	t.Helper()
	mustHash := func(h password.Argon2id, pw string) string {
		s, err := h.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other := password.Argon2id{Params: password.Params{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}}
	right := mustHash(cheap, "correct horse")
	odd := "p\xff\xfe\x00w" // not UTF-8, with a NUL: must travel byte for byte
	return []verifyCase{
		{"argon right", right, "correct horse"},
		{"argon wrong", right, "correct horsf"},
		{"argon empty password", right, ""},
		{"argon other params right (rehash)", mustHash(other, "x"), "x"},
		{"argon other params wrong", mustHash(other, "x"), "y"},
		{"argon odd bytes right", mustHash(cheap, odd), odd},
		{"argon odd bytes, replaced by U+FFFD", mustHash(cheap, odd), strings.ToValidUTF8(odd, "\uFFFD")},
		{"legacy right (rehash)", legacy(t, "old secret"), "old secret"},
		{"legacy wrong", legacy(t, "old secret"), "old secreT"},
		{"malformed argon", "$argon2id$v=19$m=64,t=1,p=1$bad", "correct horse"},
		{"argon costs out of range", "$argon2id$v=19$m=9999999,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5", "x"},
		{"malformed legacy", "$sha256d$zz", "x"},
		{"unknown scheme", "plaintext", "plaintext"},
		{"password too long", right, strings.Repeat("a", 1025)},
	}
}

func TestVerifyMatchesInProcess(t *testing.T) {
	h := startHarness(t, Options{})
	for _, tc := range verifyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			wantOK, wantRehash, wantErr := cheap.Verify(tc.stored, tc.password)
			ok, rehash, err := h.c.Verify(tc.stored, tc.password)
			if ok != wantOK || rehash != wantRehash || (err == nil) != (wantErr == nil) {
				t.Fatalf("worker: %v %v %v; in-process: %v %v %v", ok, rehash, err, wantOK, wantRehash, wantErr)
			}
			if errors.Is(err, password.ErrInvalid) != errors.Is(wantErr, password.ErrInvalid) {
				t.Fatalf("worker error %v, in-process %v: not the same class", err, wantErr)
			}
			if err != nil && !strings.HasSuffix(err.Error(), wantErr.Error()) {
				t.Fatalf("worker error %q, in-process %q", err, wantErr)
			}
		})
	}
	if s := h.c.Stats(); s.InProcess != 0 || s.Starts != 1 || s.Deaths != 0 {
		t.Fatalf("stats %+v: want every call answered by one child", s)
	}
	// The cases that expect a match did match (the table is not vacuous).
	if ok, _, _ := h.c.Verify(verifyCases(t)[0].stored, "correct horse"); !ok {
		t.Fatal("right password refused")
	}
}

func TestHashThenVerify(t *testing.T) {
	h := startHarness(t, Options{})
	for _, pw := range []string{"s3cret", "", "p\xff\xfe\x00w", strings.Repeat("é", 512)} {
		stored, err := h.c.Hash(pw)
		if err != nil {
			t.Fatalf("Hash: %v", err)
		}
		if !strings.HasPrefix(stored, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("hash %q: not argon2id with the child's costs", stored)
		}
		if ok, rehash, err := cheap.Verify(stored, pw); !ok || rehash || err != nil {
			t.Fatalf("in-process Verify of the worker's hash: %v %v %v", ok, rehash, err)
		}
		if ok, rehash, err := h.c.Verify(stored, pw); !ok || rehash || err != nil {
			t.Fatalf("worker Verify of its own hash: %v %v %v", ok, rehash, err)
		}
		if ok, _, err := h.c.Verify(stored, pw+"x"); ok || err != nil {
			t.Fatalf("wrong password: %v %v", ok, err)
		}
	}
	second, _ := h.c.Hash("s3cret")
	first, _ := h.c.Hash("s3cret")
	if first == second {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	_, err := h.c.Hash(strings.Repeat("a", 1025))
	if !errors.Is(err, password.ErrInvalid) {
		t.Fatalf("Hash of an overlong password: %v, want ErrInvalid", err)
	}
	if s := h.c.Stats(); s.InProcess != 0 {
		t.Fatalf("stats %+v: calls went in-process\n%s", s, h.logs)
	}
}

// TestDefaultParams runs one check at the production costs (19 MiB).
func TestDefaultParams(t *testing.T) {
	def := password.Argon2id{Params: password.DefaultParams()}
	h := startHarness(t, Options{Hasher: def}, "params=default")
	stored, err := h.c.Hash("production")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", def.Params.Memory, def.Params.Time, def.Params.Threads)
	if !strings.HasPrefix(stored, want) {
		t.Fatalf("hash %q, want prefix %q", stored, want)
	}
	if ok, rehash, err := h.c.Verify(stored, "production"); !ok || rehash || err != nil {
		t.Fatalf("Verify: %v %v %v", ok, rehash, err)
	}
	// A cheap hash verifies and asks for a rehash to the defaults.
	cheapHash, _ := cheap.Hash("production")
	if ok, rehash, err := h.c.Verify(cheapHash, "production"); !ok || !rehash || err != nil {
		t.Fatalf("Verify of a cheap hash: %v %v %v, want ok and rehash", ok, rehash, err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	h := startHarness(t, Options{Concurrency: 4}, "conc=4")
	stored := make([]string, 8)
	for i := range stored {
		stored[i], _ = cheap.Hash("pw" + strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			for k := range 5 {
				i := (g + k) % len(stored)
				pw := "pw" + strconv.Itoa(i)
				if (g+k)%3 == 0 {
					pw += "!"
				}
				ok, _, err := h.c.Verify(stored[i], pw)
				if err != nil || ok != ((g+k)%3 != 0) {
					errs <- fmt.Errorf("goroutine %d call %d: ok=%v err=%w", g, k, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := h.c.Stats(); s.InProcess != 0 || s.Starts != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestChildKilledWithCallsPending: the first child reads requests and never
// answers; it is killed with calls waiting on it. Each call is answered
// correctly in-process, a second child starts and serves later calls.
func TestChildKilledWithCallsPending(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHarness(t, Options{Concurrency: 4}, "blackhole-once="+filepath.Join(dir, "marker")+","+fifo+",4")
	first := <-h.started
	right, _ := cheap.Hash("pending pw")
	var wg sync.WaitGroup
	results := make([]bool, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			pw := "pending pw"
			if i%2 == 1 {
				pw = "wrong pw"
			}
			results[i], _, errs[i] = h.c.Verify(right, pw)
		})
	}
	// Opening the pipe waits for the child to have read the 4 requests.
	if b, err := os.ReadFile(fifo); err != nil || string(b) != "read\n" {
		t.Fatalf("from the child: %q, %v", b, err)
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range 4 {
		if errs[i] != nil || results[i] != (i%2 == 0) {
			t.Errorf("call %d: ok=%v err=%v, want ok=%v", i, results[i], errs[i], i%2 == 0)
		}
	}
	second := <-h.started
	if second == first {
		t.Fatalf("restarted child has the old pid %d", first)
	}
	if ok, _, err := h.c.Verify(right, "pending pw"); !ok || err != nil {
		t.Fatalf("after restart: %v %v", ok, err)
	}
	s := h.c.Stats()
	if s.InProcess != 4 || s.Deaths != 1 || s.Starts != 2 {
		t.Fatalf("stats %+v, want 4 in-process calls, 1 death, 2 starts", s)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "password worker exited; restarting it") || strings.Count(logs, "password worker unavailable") != 1 {
		t.Fatalf("logs:\n%s", logs)
	}
	checkNoSecrets(t, logs, "pending pw", "wrong pw")
	h.c.Close()
}

// TestChildKilledUnderLoad kills a working child while calls stream: no
// call gets a wrong answer or an error.
func TestChildKilledUnderLoad(t *testing.T) {
	h := startHarness(t, Options{Concurrency: 3}, "conc=3")
	first := <-h.started
	right, _ := cheap.Hash("load pw")
	if ok, _, err := h.c.Verify(right, "load pw"); !ok || err != nil || h.c.Stats().InProcess != 0 {
		t.Fatalf("first call: %v %v %+v", ok, err, h.c.Stats()) // the child is up
	}
	var wg sync.WaitGroup
	var bad sync.Map
	for g := range 6 {
		wg.Go(func() {
			for k := range 30 {
				pw := "load pw"
				if k%2 == 1 {
					pw = "nope"
				}
				if ok, _, err := h.c.Verify(right, pw); err != nil || ok != (k%2 == 0) {
					bad.Store(fmt.Sprintf("%d/%d", g, k), fmt.Sprintf("ok=%v err=%v", ok, err))
				}
			}
		})
	}
	for range 20 {
		<-h.sent
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := <-h.started
	wg.Wait()
	bad.Range(func(k, v any) bool { t.Errorf("call %v: %v", k, v); return true })
	if second == first || h.c.Stats().Deaths != 1 {
		t.Fatalf("pids %d %d, stats %+v", first, second, h.c.Stats())
	}
}

func TestCommandCannotStart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := startHarness(t, Options{Command: []string{filepath.Join(t.TempDir(), "no-such-binary")}})
	right, _ := cheap.Hash("fallback pw")
	if ok, _, err := h.c.Verify(right, "fallback pw"); !ok || err != nil {
		t.Fatalf("Verify right: %v %v", ok, err)
	}
	if ok, _, err := h.c.Verify(right, "fallback pX"); ok || err != nil {
		t.Fatalf("Verify wrong: %v %v", ok, err)
	}
	stored, err := h.c.Hash("fallback pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := cheap.Verify(stored, "fallback pw"); !ok {
		t.Fatal("in-process hash does not verify")
	}
	if s := h.c.Stats(); s.InProcess != 3 || s.Starts != 0 {
		t.Fatalf("stats %+v, want 3 in-process calls and no start", s)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "password worker did not start") || strings.Count(logs, "password worker unavailable") != 1 {
		t.Fatalf("logs:\n%s", logs)
	}
	checkNoSecrets(t, logs, "fallback pw", "fallback pX")
	h.c.Close()
}

func TestStartBadOptions(t *testing.T) {
	if _, err := Start(t.Context(), Options{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no command: %v, want ErrConfig", err)
	}
}

// TestChildNice: every thread of the child runs at the nice value asked.
func TestChildNice(t *testing.T) {
	h := startHarness(t, Options{}, "nice=7")
	pid := <-h.started
	right, _ := cheap.Hash("nice")
	if ok, _, err := h.c.Verify(right, "nice"); !ok || err != nil { // the child is up and has served
		t.Fatalf("Verify: %v %v", ok, err)
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 2 {
		t.Fatalf("child has %d threads; a Go process has several", len(tasks))
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// Fields after "(comm)" start at field 3; nice is field 19.
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		fields := strings.Fields(rest)
		if nice := fields[19-3]; nice != "7" {
			t.Errorf("thread %s: nice %s, want 7", task.Name(), nice)
		}
	}
}

// TestNoPasswordInLogsOrErrors drives every error path with recognisable
// passwords and looks for them in the logs and in the errors.
func TestNoPasswordInLogsOrErrors(t *testing.T) {
	secret := "Tr0ub4dor&3-unique"
	h := startHarness(t, Options{})
	var errs []error
	for _, stored := range []string{"$argon2id$v=19$m=64,t=1,p=1$bad", "$sha256d$zz", "plaintext", "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRz$a2V5a2V5a2V5a2V5a2V5"} {
		_, _, err := h.c.Verify(stored, secret)
		if err == nil {
			t.Fatalf("Verify against %q: no error", stored)
		}
		errs = append(errs, err)
	}
	_, err := h.c.Hash(secret + strings.Repeat("x", 1024))
	errs = append(errs, err)
	// A request the child cannot read is refused and answered in-process.
	pid := <-h.started
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-h.started
	if ok, _, err := h.c.Verify(legacy(t, secret), secret); !ok || err != nil {
		t.Fatalf("Verify after restart: %v %v", ok, err)
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Tr0ub") {
			t.Errorf("error %q holds the password", err)
		}
	}
	checkNoSecrets(t, h.logs.String(), secret, "Tr0ub")
}

func checkNoSecrets(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	if logs == "" {
		t.Fatal("no logs captured")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs hold the password %q:\n%s", s, logs)
		}
	}
}
