package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/jackc/pgx/v5"

	"github.com/stratumd/stratumd/internal/chain"
	"github.com/stratumd/stratumd/internal/pgtest"
	"github.com/stratumd/stratumd/internal/store"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func tables(t *testing.T, url string) []string {
	t.Helper()
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'goose_db_version' ORDER BY 1`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrationsUpDownUp(t *testing.T) {
	url := pgtest.NewEmptyDatabase(t)
	ctx := ctxT(t)
	m, err := store.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if pending, err := m.Pending(ctx); err != nil || !pending {
		t.Fatalf("fresh database: pending = %v, %v; want true", pending, err)
	}
	if err := m.CheckCurrent(ctx); !errors.Is(err, store.ErrPendingMigrations) {
		t.Fatalf("CheckCurrent on fresh database = %v, want ErrPendingMigrations", err)
	}
	applied, err := m.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) < 3 {
		t.Fatalf("applied %v, want at least 3 migrations", applied)
	}
	want := tables(t, url)
	for _, name := range []string{"users", "shares", "blocks", "spool_progress"} {
		if !strings.Contains(strings.Join(want, ","), name) {
			t.Fatalf("after up, tables %v lack %s", want, name)
		}
	}
	if err := m.CheckCurrent(ctx); err != nil {
		t.Fatalf("CheckCurrent after up: %v", err)
	}
	var sb strings.Builder
	if err := m.Status(ctx, &sb); err != nil || !strings.Contains(sb.String(), "00001") {
		t.Fatalf("status = %q, %v", sb.String(), err)
	}
	// Down one at a time to zero: every Down section works.
	for range applied {
		if _, err := m.Down(ctx); err != nil {
			t.Fatalf("down: %v", err)
		}
	}
	if left := tables(t, url); len(left) != 0 {
		t.Fatalf("after all downs, tables left: %v", left)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if got := tables(t, url); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("second up gave tables %v, first %v", got, want)
	}
}

func TestUsers(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	u, err := st.CreateUser(ctx, store.NewUser{Name: "alice", Password: "s3cret", PayoutAddress: "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"})
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || !u.HasPassword || u.IsAdmin || u.PayoutAddress == "" {
		t.Fatalf("created %+v", u)
	}
	if _, err := st.CreateUser(ctx, store.NewUser{Name: "alice", Password: "x"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate create: %v, want ErrExists", err)
	}
	if _, err := st.VerifyPassword(ctx, "alice", "wrong"); !errors.Is(err, store.ErrBadPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := st.VerifyPassword(ctx, "bob", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	got, err := st.VerifyPassword(ctx, "alice", "s3cret")
	if err != nil || got.LastLoginAt.IsZero() {
		t.Fatalf("right password: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "a b", "a.b", "x\x00y", "tab\there", strings.Repeat("z", 129), "'; DROP TABLE users; --",
		"solo:bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"} { // a solo miner's name is no account
		if _, err := st.CreateUser(ctx, store.NewUser{Name: bad, Password: "x"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateUser(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	// SQL metacharacters without spaces are valid names and stay inert.
	if _, err := st.CreateUser(ctx, store.NewUser{Name: "o'neil;--", Password: "x"}); err != nil {
		t.Fatalf("quote in name: %v", err)
	}
	if _, err := st.UserByName(ctx, "o'neil;--"); err != nil {
		t.Fatal(err)
	}
	// Open mode: EnsureUser creates once, then returns the same row.
	e1, err := st.EnsureUser(ctx, "bcrt1qexample", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
	if err != nil {
		t.Fatal(err)
	}
	e2, err := st.EnsureUser(ctx, "bcrt1qexample", "")
	if err != nil || e2.ID != e1.ID || e2.HasPassword {
		t.Fatalf("EnsureUser twice: %+v / %+v, %v", e1, e2, err)
	}
	if _, err := st.VerifyPassword(ctx, "bcrt1qexample", ""); !errors.Is(err, store.ErrBadPassword) {
		t.Fatalf("password login of a user without password: %v", err)
	}
}

func TestImportLegacyUsers(t *testing.T) {
	st, url := pgtest.NewStore(t)
	ctx := ctxT(t)
	var lines []string
	for i, pw := range []string{"pw-zero", "pw-one", "pw-two"} {
		a := sha256.Sum256([]byte(pw))
		b := sha256.Sum256(a[:])
		lines = append(lines, fmt.Sprintf(`{"username":"miner%d","password":"%s"}`, i, hex.EncodeToString(b[:])))
	}
	file := strings.Join(lines, "\n") + "\n\n"
	res, err := st.ImportUsers(ctx, strings.NewReader(file), regtestAddress)
	if err != nil || res.Created != 3 || res.Skipped != 0 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	// Importing again changes nothing.
	res, err = st.ImportUsers(ctx, strings.NewReader(file), regtestAddress)
	if err != nil || res.Created != 0 || res.Skipped != 3 {
		t.Fatalf("re-import: %+v, %v", res, err)
	}
	storedHash := func(name string) string {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var h string
		if err := conn.QueryRow(ctx, `SELECT password_hash FROM users WHERE name = $1`, name).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := storedHash("miner1"); !strings.HasPrefix(h, "$sha256d$") {
		t.Fatalf("imported hash %q", h)
	}
	if _, err := st.VerifyPassword(ctx, "miner1", "pw-zero"); !errors.Is(err, store.ErrBadPassword) {
		t.Fatalf("legacy user, wrong password: %v", err)
	}
	if h := storedHash("miner1"); !strings.HasPrefix(h, "$sha256d$") {
		t.Fatalf("failed login changed the hash to %q", h)
	}
	if _, err := st.VerifyPassword(ctx, "miner1", "pw-one"); err != nil {
		t.Fatalf("legacy user, right password: %v", err)
	}
	if h := storedHash("miner1"); !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("after login the hash is %q, want argon2id", h)
	}
	if _, err := st.VerifyPassword(ctx, "miner1", "pw-one"); err != nil {
		t.Fatalf("re-hashed user, right password: %v", err)
	}
	for _, bad := range []string{
		`{"username":"x","password":"abc"}`,
		`{"username":"x"}`,
		`{"username":"has space","password":"` + strings.Repeat("00", 32) + `"}`,
		`not json`,
		`{"username":"x","password":"` + strings.Repeat("00", 32) + `","extra":1}`,
		`{"username":"x","password":"` + strings.Repeat("00", 32) + `"} {}`,
	} {
		if _, err := st.ImportUsers(ctx, strings.NewReader(bad), regtestAddress); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("import %s: %v, want ErrInvalid", bad, err)
		}
	}
}

// regtestAddress is ImportUsers' address check for a regtest pool.
func regtestAddress(s string) (string, error) {
	a, err := chain.PayoutAddress(s, &chaincfg.RegressionNetParams)
	if err != nil {
		return "", err
	}
	return a.EncodeAddress(), nil
}

// Regtest addresses of each kind, for the address tests.
const (
	regP2WPKH = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	regP2PKH  = "mrCDrCybB6J1vRfbwM5hemdJz73FwDBC8r"
	mainP2PKH = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
)

func TestImportUsersAddresses(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	hash := strings.Repeat("ab", 32)
	entry := func(name, addr string) string {
		if addr == "" {
			return fmt.Sprintf(`{"username":%q,"password":%q}`, name, hash)
		}
		return fmt.Sprintf(`{"username":%q,"password":%q,"address":%q}`, name, hash, addr)
	}
	if _, err := st.CreateUser(ctx, store.NewUser{Name: "old", Password: "x", PayoutAddress: regP2PKH}); err != nil {
		t.Fatal(err)
	}
	file := strings.Join([]string{
		entry("upper", strings.ToUpper(regP2WPKH)),
		entry("legacy", regP2PKH),
		entry("none", ""),
		entry("old", regP2WPKH), // present: left alone
	}, "\n")
	res, err := st.ImportUsers(ctx, strings.NewReader(file), regtestAddress)
	if err != nil || res.Created != 3 || res.Skipped != 1 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	for name, want := range map[string]string{"upper": regP2WPKH, "legacy": regP2PKH, "none": "", "old": regP2PKH} {
		if u, err := st.UserByName(ctx, name); err != nil || u.PayoutAddress != want {
			t.Errorf("%s: address %q, %v; want %q", name, u.PayoutAddress, err, want)
		}
	}

	// One bad address refuses the whole file; the error names every bad line.
	file = strings.Join([]string{
		entry("good", regP2WPKH),
		entry("mainnet", mainP2PKH),
		entry("garbage", "not-an-address-at-all"),
		entry("long", "bcrt1q"+strings.Repeat("q", 200)),
	}, "\n")
	_, err = st.ImportUsers(ctx, strings.NewReader(file), regtestAddress)
	if !errors.Is(err, store.ErrInvalid) || !errors.Is(err, chain.ErrBadAddress) {
		t.Fatalf("bad addresses: %v, want ErrInvalid and ErrBadAddress", err)
	}
	for _, want := range []string{"3 bad lines", "nothing imported", `line 2: "mainnet"`, `line 3: "garbage"`, `line 4: "long"`, "regtest"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "line 1") {
		t.Errorf("error %q names the good line", err)
	}
	if _, err := st.UserByName(ctx, "good"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the good line of a refused file was imported: %v", err)
	}

	// Without an address check, an address is refused.
	if _, err := st.ImportUsers(ctx, strings.NewReader(entry("nocheck", regP2WPKH)), nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("address without a check: %v", err)
	}

	// Many bad lines: the first 20 are named, the rest counted.
	var lines []string
	for i := range 25 {
		lines = append(lines, entry(fmt.Sprintf("m%d", i), mainP2PKH))
	}
	_, err = st.ImportUsers(ctx, strings.NewReader(strings.Join(lines, "\n")), regtestAddress)
	if err == nil || !strings.Contains(err.Error(), "25 bad lines") || !strings.Contains(err.Error(), "and 5 more") ||
		strings.Contains(err.Error(), "line 21:") {
		t.Errorf("25 bad lines: %v", err)
	}
}

func TestSetPayoutAddress(t *testing.T) {
	st, url := pgtest.NewStore(t)
	ctx := ctxT(t)
	if _, err := st.CreateUser(ctx, store.NewUser{Name: "alice", Password: "x"}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	backdate := func() time.Time {
		t.Helper()
		var at time.Time
		if err := conn.QueryRow(ctx, `UPDATE users SET updated_at = now() - interval '1 hour' WHERE name = 'alice' RETURNING updated_at`).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}

	before := backdate()
	if err := st.SetPayoutAddress(ctx, "alice", regP2WPKH); err != nil {
		t.Fatal(err)
	}
	u, err := st.UserByName(ctx, "alice")
	if err != nil || u.PayoutAddress != regP2WPKH || !u.UpdatedAt.After(before) {
		t.Fatalf("after set: %+v, %v", u, err)
	}
	if err := st.SetPayoutAddress(ctx, "alice", regP2PKH); err != nil {
		t.Fatal(err)
	}
	if u, _ := st.UserByName(ctx, "alice"); u.PayoutAddress != regP2PKH {
		t.Fatalf("after second set: %q", u.PayoutAddress)
	}

	if err := st.SetPayoutAddress(ctx, "bob", regP2WPKH); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "short", strings.Repeat("q", 101)} {
		if err := st.SetPayoutAddress(ctx, "alice", bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("SetPayoutAddress(%.20q): %v, want ErrInvalid", bad, err)
		}
	}
	if u, _ := st.UserByName(ctx, "alice"); u.PayoutAddress != regP2PKH {
		t.Fatalf("a refused address changed it to %q", u.PayoutAddress)
	}

	before = backdate()
	if err := st.ClearPayoutAddress(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if u, err := st.UserByName(ctx, "alice"); err != nil || u.PayoutAddress != "" || !u.UpdatedAt.After(before) {
		t.Fatalf("after clear: %+v, %v", u, err)
	}
	var isNull bool
	if err := conn.QueryRow(ctx, `SELECT payout_address IS NULL FROM users WHERE name = 'alice'`).Scan(&isNull); err != nil || !isNull {
		t.Fatalf("cleared address stored as NULL: %v, %v", isNull, err)
	}
	if err := st.ClearPayoutAddress(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("clear unknown user: %v, want ErrNotFound", err)
	}
}

func TestBlocks(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	hash := strings.Repeat("ab", 32)
	b, err := st.InsertBlock(ctx, store.Block{Height: 500, Hash: hash, PrevHash: strings.Repeat("00", 32),
		FoundAt: now, Username: "alice", Worker: "rig1", Reward: 5000000000, NetworkDifficulty: 1,
		LastShare: store.SharePos{Time: now, Instance: 1, Seq: 42}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != store.BlockSubmitted || b.LastShare.Seq != 42 || b.LastShare.Instance != 1 {
		t.Fatalf("inserted %+v", b)
	}
	if _, err := st.InsertBlock(ctx, b); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate block: %v", err)
	}
	if _, err := st.InsertBlock(ctx, store.Block{Hash: "nothex", PrevHash: hash, FoundAt: now, NetworkDifficulty: 1}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad hash: %v", err)
	}
	if err := st.SetBlockStatus(ctx, hash, store.BlockConfirmed, "", store.BlockSubmitted); err != nil {
		t.Fatal(err)
	}
	if err := st.SetBlockStatus(ctx, hash, store.BlockCredited, "", store.BlockMatured); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("status move from the wrong state: %v", err)
	}
	if err := st.SetBlockStatus(ctx, strings.Repeat("cd", 32), store.BlockConfirmed, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown block: %v", err)
	}
	got, err := st.BlockByHash(ctx, hash)
	if err != nil || got.Status != store.BlockConfirmed {
		t.Fatalf("after status change: %+v, %v", got, err)
	}
	list, err := st.Blocks(ctx, 10, store.BlockConfirmed)
	if err != nil || len(list) != 1 {
		t.Fatalf("Blocks = %v, %v", list, err)
	}
	if _, err := st.PreviousBlock(ctx, b.LastShare, b.Username); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("previous block of the first: %v", err)
	}
	later := store.SharePos{Time: now.Add(time.Hour), Instance: 0, Seq: 7}
	prev, err := st.PreviousBlock(ctx, later, "")
	if err != nil || prev.Hash != hash {
		t.Fatalf("previous block: %+v, %v", prev, err)
	}
}

// TestFoundBlockColumns: the raw block and the resubmitter's and
// recorder's columns: pending blocks (status submitted) lowest height
// first, attempts counted, on-chain moves submitted and orphaned blocks to
// confirmed once, dumps marked.
func TestFoundBlockColumns(t *testing.T) {
	st, _ := pgtest.NewStore(t)
	ctx := ctxT(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	raw := make([]byte, 200)
	raw[0] = 7
	insert := func(height int32, hash string, raw []byte) {
		t.Helper()
		if _, err := st.InsertBlock(ctx, store.Block{Height: height, Hash: hash, PrevHash: strings.Repeat("00", 32),
			FoundAt: now, Username: "alice", Worker: "rig1", Reward: 5000000000, NetworkDifficulty: 1, Raw: raw,
			LastShare: store.SharePos{Time: now.Add(time.Duration(height) * time.Second), Instance: 1, Seq: uint64(height)}}); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := strings.Repeat("aa", 32), strings.Repeat("bb", 32), strings.Repeat("cc", 32)
	insert(12, a, raw)
	insert(11, b, nil)
	insert(13, c, raw)
	if got, err := st.BlockRaw(ctx, a); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("raw: %d bytes, %v", len(got), err)
	}
	if _, err := st.BlockRaw(ctx, b); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("raw of a block without: %v", err)
	}
	if _, err := st.BlockRaw(ctx, strings.Repeat("dd", 32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("raw of an unknown block: %v", err)
	}
	if _, err := st.InsertBlock(ctx, store.Block{Height: 1, Hash: strings.Repeat("ee", 32), PrevHash: a, FoundAt: now,
		NetworkDifficulty: 1, Raw: make([]byte, 79)}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a raw block shorter than a header: %v", err)
	}

	if err := st.RecordSubmitAttempt(ctx, a, now.Add(time.Minute), "error: "+strings.Repeat("x", 300)); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSubmitAttempt(ctx, a, now.Add(2*time.Minute), "duplicate: duplicate"); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordSubmitAttempt(ctx, strings.Repeat("dd", 32), now, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("attempt on an unknown block: %v", err)
	}
	pending, err := st.PendingBlocks(ctx, 10)
	if err != nil || len(pending) != 3 || pending[0].Hash != b || pending[1].Hash != a || pending[2].Hash != c {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	if p := pending[1]; !p.HasRaw || p.SubmitAttempts != 2 || !p.LastSubmitAt.Equal(now.Add(2*time.Minute)) || p.Height != 12 {
		t.Fatalf("pending a: %+v", p)
	}
	if p := pending[0]; p.HasRaw || p.SubmitAttempts != 0 || !p.LastSubmitAt.IsZero() {
		t.Fatalf("pending b: %+v", p)
	}

	if err := st.MarkBlockOnChain(ctx, a, now.Add(3*time.Minute), "in the best chain of node1"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetBlockStatus(ctx, c, store.BlockOrphaned, "best chain has another block", store.BlockSubmitted); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkBlockOnChain(ctx, c, now.Add(4*time.Minute), "back"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetBlockStatus(ctx, a, store.BlockMatured, "101 confirmations", store.BlockConfirmed); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkBlockOnChain(ctx, a, now.Add(5*time.Minute), "again"); err != nil {
		t.Fatal(err)
	}
	for hash, want := range map[string]store.BlockStatus{a: store.BlockMatured, c: store.BlockConfirmed} {
		got, err := st.BlockByHash(ctx, hash)
		if err != nil || got.Status != want {
			t.Fatalf("block %s: %+v, %v; want %s", hash, got, err, want)
		}
	}
	if got, _ := st.BlockByHash(ctx, c); got.StatusReason != "back" {
		t.Fatalf("reason %q", got.StatusReason)
	}
	if err := st.MarkBlockOnChain(ctx, strings.Repeat("dd", 32), now, ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("on chain: unknown block: %v", err)
	}
	if pending, err := st.PendingBlocks(ctx, 10); err != nil || len(pending) != 1 || pending[0].Hash != b {
		t.Fatalf("pending after: %+v, %v", pending, err)
	}

	todo, err := st.BlocksToDump(ctx, 10)
	if err != nil || len(todo) != 3 || todo[0].Hash != b || todo[2].Hash != c {
		t.Fatalf("to dump %+v, %v", todo, err)
	}
	if err := st.MarkDumped(ctx, b, now); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDumped(ctx, strings.Repeat("dd", 32), now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dumped: unknown block: %v", err)
	}
	if todo, err := st.BlocksToDump(ctx, 10); err != nil || len(todo) != 2 || todo[0].Hash != a {
		t.Fatalf("to dump after: %+v, %v", todo, err)
	}
}
