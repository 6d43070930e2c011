package httpapi_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/testutil"
)

// chromiumPath finds (or installs) chromium through scripts/chromium.sh.
func chromiumPath(t *testing.T) string {
	t.Helper()
	root, err := testutil.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(root, "scripts", "chromium.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("no headless browser for the web page test: scripts/chromium.sh: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out))
}

// runChromium runs headless chromium on url with a fresh profile, letting
// the page's scripts run for up to 10 s of virtual time, and returns its
// stdout. The whole process group is killed if it overstays.
func runChromium(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=10000", "--window-size=1200,1600"}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// tbodyRows counts the rows of the table body with the given id.
func tbodyRows(t *testing.T, dom, id string) int {
	t.Helper()
	start := strings.Index(dom, `<tbody id="`+id+`">`)
	if start < 0 {
		t.Fatalf("no tbody %s in the DOM", id)
	}
	end := strings.Index(dom[start:], "</tbody>")
	if end < 0 {
		t.Fatalf("tbody %s not closed", id)
	}
	return len(regexp.MustCompile(`<tr[ >]`).FindAllStringIndex(dom[start:start+end], -1))
}

// textOf returns the text of the element with the given id (no markup
// inside).
func textOf(t *testing.T, dom, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no element %s in the DOM", id)
	}
	return m[1]
}

// TestWebPageInBrowser loads the page in a real headless chromium against
// the API over a seeded PostgreSQL: the blocks table gets the blocks, the
// user lookup (from the URL) the workers and payments, and the chart
// canvas gets drawn: its line colour is on the screenshot.
func TestWebPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("headless browser test in -short mode")
	}
	bin := chromiumPath(t)
	f := newAPIFixture(t)
	// A few more samples for the chart, with rising hashrate.
	for i := range 4 {
		f.clk.Advance(time.Minute)
		f.tr.ObserveShare(alice, "rig1", float64(200*(i+1)), f.clk.Now())
		f.tr.Sample()
	}
	points := len(f.tr.History())
	// Rejects of alice's rig1, as the stratum server reports them.
	rc, err := store.NewRejectCounter(store.RejectCounterConfig{Store: f.st})
	if err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"stale", "stale", "duplicate"} {
		rc.ObserveReject(alice, "rig1", reason, f.now)
	}
	if err := rc.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// A lucky share of rig1 before the round in progress, three hours ago.
	lucky := store.StoredShare{Seq: 1, Share: store.Share{Time: f.now.Add(-3 * time.Hour), Username: alice, Worker: "rig1",
		JobID: "1", Height: 500, Difficulty: 100, ShareDifficulty: 123456.5, InstanceID: 1}}
	if err := f.st.StoreShares(ctxT(t), [16]byte{2}, 1, []store.StoredShare{lucky}); err != nil {
		t.Fatal(err)
	}
	// rig1's best share of all time and of the round after b3 (orphaned,
	// so still a round boundary; b2 was rejected and is not).
	var best, roundBest float64
	var accepted int
	b3 := f.shares[f.blockIdx["b3"]].Time
	for _, sh := range append([]store.StoredShare{lucky}, f.shares...) {
		if sh.Username != alice || sh.Worker != "rig1" {
			continue
		}
		accepted++
		best = max(best, sh.ShareDifficulty)
		if sh.Time.After(b3) {
			roundBest = max(roundBest, sh.ShareDifficulty)
		}
	}
	if roundBest == 0 || roundBest == best {
		t.Fatalf("the seed does not tell the round's best (%v) from the all-time best (%v)", roundBest, best)
	}

	dom := string(runChromium(t, bin, f.srv.URL+"/#user=alice", "--dump-dom"))
	if strings.Contains(dom, "could not load") {
		t.Fatalf("the page could not load its data:\n%s", dom)
	}
	if n := tbodyRows(t, dom, "blocks-body"); n != 3 {
		t.Errorf("blocks table has %d rows, want 3", n)
	}
	for _, b := range f.blocks {
		if !strings.Contains(dom, b.Hash) {
			t.Errorf("block %s not on the page", b.Hash)
		}
	}
	if !regexp.MustCompile(`<canvas id="chart"[^>]*data-points="` + strconv.Itoa(points) + `"`).MatchString(dom) {
		t.Errorf("chart not drawn with %d points: %s", points, regexp.MustCompile(`<canvas[^>]*>`).FindString(dom))
	}
	if got := textOf(t, dom, "pool-blocks"); got != "2" {
		t.Errorf("blocks found shows %q", got)
	}
	if got := textOf(t, dom, "pool-hashrate"); !strings.HasSuffix(got, "H/s") || got == "0 H/s" {
		t.Errorf("pool hashrate shows %q", got)
	}
	if got := textOf(t, dom, "net-height"); got != "602" {
		t.Errorf("network height shows %q", got)
	}
	// The user looked up from the URL.
	if got := textOf(t, dom, "user-name"); got != alice {
		t.Errorf("user shows %q", got)
	}
	if n := tbodyRows(t, dom, "workers-body"); n != 3 {
		t.Errorf("workers table has %d rows, want 3", n)
	}
	// rig1's row: the stats a miner compares with its own screen.
	row := regexp.MustCompile(`<tr data-worker="rig1">(.*?)</tr>`).FindStringSubmatch(dom)
	if row == nil {
		t.Fatalf("no row for rig1 in the workers table")
	}
	cellValue := func(class string) string {
		m := regexp.MustCompile(`<td class="` + class + `" data-value="([^"]*)">([^<]*)</td>`).FindStringSubmatch(row[1])
		if m == nil {
			t.Fatalf("no %s cell in rig1's row: %s", class, row[1])
		}
		return m[1] + "|" + m[2]
	}
	for class, want := range map[string]string{
		"w-accepted":   strconv.Itoa(accepted) + "|" + strconv.Itoa(accepted),
		"w-rejected":   "3|3 (stale 2, duplicate 1)",
		"w-best":       strconv.FormatFloat(best, 'g', -1, 64) + "|123k",
		"w-round-best": strconv.FormatFloat(roundBest, 'g', -1, 64) + "|" + strconv.FormatFloat(roundBest, 'f', 2, 64),
	} {
		if got := cellValue(class); got != want {
			t.Errorf("rig1 %s shows %q, want %q", class, got, want)
		}
	}
	if got := textOf(t, dom, "user-round"); !strings.Contains(got, "block 602") {
		t.Errorf("round line shows %q, want the round after block 602 (b3)", got)
	}
	if n := tbodyRows(t, dom, "payments-body"); n != 2 {
		t.Errorf("payments table has %d rows, want 2", n)
	}
	if got := textOf(t, dom, "user-balance"); got != "15.00000000" {
		t.Errorf("balance shows %q", got)
	}

	// An unknown user gets a message, not a table.
	dom = string(runChromium(t, bin, f.srv.URL+"/#user=nobody", "--dump-dom"))
	if got := textOf(t, dom, "user-error"); !strings.Contains(got, "No user named nobody") {
		t.Errorf("unknown user shows %q", got)
	}

	// The screenshot has the chart's line colour (#f7931a), which nothing
	// else on the page uses.
	shot := filepath.Join(t.TempDir(), "page.png")
	if d := os.Getenv("STRATUMD_SCREENSHOT_DIR"); d != "" {
		shot = filepath.Join(d, "page.png")
	}
	runChromium(t, bin, f.srv.URL+"/#user=alice", "--screenshot="+shot)
	fh, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if closeTo(r>>8, 0xf7) && closeTo(g>>8, 0x93) && closeTo(bl>>8, 0x1a) {
				line++
			}
		}
	}
	if line < 300 {
		t.Errorf("only %d pixels of the chart's line colour on the screenshot", line)
	}
	t.Logf("chart line pixels: %d", line)
}

func closeTo(v, want uint32) bool { return v+12 >= want && v <= want+12 }
