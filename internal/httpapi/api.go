package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stratumd/stratumd/internal/store"
	"github.com/stratumd/stratumd/internal/username"
)

// workerStatsPeriod is the period /api/users/{name} sums stored shares over.
const workerStatsPeriod = time.Hour

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

// dbError answers a failed query: 503 when the database is unreachable or
// the query timed out, 500 otherwise.
func (s *Server) dbError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Warn("api: database query failed", "path", r.URL.Path, "err", err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		writeError(w, http.StatusServiceUnavailable, "database unavailable")
		return
	}
	writeError(w, http.StatusInternalServerError, "internal error")
}

// limitParam reads ?limit=N within [1, MaxListLimit] (default
// DefaultListLimit); false after answering 400.
func limitParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return DefaultListLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxListLimit {
		writeError(w, http.StatusBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(MaxListLimit))
		return 0, false
	}
	return n, true
}

// BlockJSON is a block as the API shows it.
type BlockJSON struct {
	Height            int32     `json:"height"`
	Hash              string    `json:"hash"`
	FoundAt           time.Time `json:"found_at"`
	User              string    `json:"user"`
	Worker            string    `json:"worker"`
	Reward            int64     `json:"reward"` // satoshis
	NetworkDifficulty float64   `json:"network_difficulty"`
	Status            string    `json:"status"`
	StatusReason      string    `json:"status_reason,omitempty"`
	// Mode is "pplns" (the pool's block) or "solo" (its coinbase paid the
	// finder, user "solo:<address>"; payout never credits it).
	Mode string `json:"mode"`
}

func blockJSON(b store.Block) BlockJSON {
	return BlockJSON{Height: b.Height, Hash: b.Hash, FoundAt: b.FoundAt.UTC(), User: b.Username, Worker: b.Worker,
		Reward: b.Reward, NetworkDifficulty: b.NetworkDifficulty, Status: string(b.Status), StatusReason: b.StatusReason,
		Mode: string(store.ModeOf(b.Username))}
}

// PoolJSON is the body of GET /api/pool.
type PoolJSON struct {
	Time            time.Time `json:"time"`
	Hashrate        float64   `json:"hashrate"` // hashes per second over the window
	WindowSeconds   float64   `json:"window_seconds"`
	SharesPerSecond float64   `json:"shares_per_second"`
	SharesAccepted  uint64    `json:"shares_accepted"` // since start
	Users           int       `json:"users"`           // with a share in the window
	Workers         int       `json:"workers"`         // with a share in the window
	Miners          int64     `json:"miners"`          // authorized sessions now
	Connections     int64     `json:"connections"`
	Network         struct {
		Height     int32   `json:"height"` // of the tip the current job builds on
		Difficulty float64 `json:"difficulty"`
	} `json:"network"`
	TemplateAgeSeconds *float64 `json:"template_age_seconds"` // null before the first job
	// From the database; null (and DatabaseOK false) when it cannot be
	// queried.
	DatabaseOK  bool             `json:"database_ok"`
	BlocksFound *int64           `json:"blocks_found"` // every block not rejected
	Blocks      map[string]int64 `json:"blocks"`       // by status
	LastBlock   *BlockJSON       `json:"last_block"`
}

func (s *Server) handlePool(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	st := s.cfg.Stratum.Stats()
	rate, users, workers := s.cfg.Tracker.Pool()
	out := PoolJSON{
		Time: now.UTC(), Hashrate: rate.Hashrate, WindowSeconds: s.cfg.Tracker.Window().Seconds(),
		SharesPerSecond: rate.SharesPerSecond, SharesAccepted: st.SharesAccepted,
		Users: users, Workers: workers, Miners: st.Authorized, Connections: st.Connections,
	}
	if !st.LastJob.IsZero() {
		age := now.Sub(st.LastJob).Seconds()
		out.TemplateAgeSeconds = &age
		out.Network.Height = st.JobHeight - 1
		out.Network.Difficulty = st.NetworkDifficulty
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	counts, err := s.cfg.Store.BlockCounts(ctx)
	var last []store.Block
	if err == nil {
		last, err = s.cfg.Store.Blocks(ctx, 1)
	}
	if err != nil {
		s.log.Warn("api: pool: database query failed", "err", err)
	} else {
		out.DatabaseOK = true
		out.Blocks = make(map[string]int64, len(counts))
		var found int64
		for st, n := range counts {
			out.Blocks[string(st)] = n
			if st != store.BlockRejected {
				found += n
			}
		}
		out.BlocksFound = &found
		if len(last) > 0 {
			b := blockJSON(last[0])
			out.LastBlock = &b
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// HistoryJSON is the body of GET /api/pool/history.
type HistoryJSON struct {
	IntervalSeconds float64     `json:"interval_seconds"`
	WindowSeconds   float64     `json:"window_seconds"`
	Points          []PointJSON `json:"points"` // oldest first
}

// PointJSON is one sample of the pool's hashrate.
type PointJSON struct {
	Time     int64   `json:"t"` // unix seconds
	Hashrate float64 `json:"hashrate"`
	Workers  int     `json:"workers"`
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	h := s.cfg.Tracker.History()
	out := HistoryJSON{
		IntervalSeconds: s.cfg.Tracker.HistoryInterval().Seconds(),
		WindowSeconds:   s.cfg.Tracker.Window().Seconds(),
		Points:          make([]PointJSON, len(h)),
	}
	for i, p := range h {
		out.Points[i] = PointJSON{Time: p.Time.Unix(), Hashrate: p.Hashrate, Workers: p.Workers}
	}
	writeJSON(w, http.StatusOK, out)
}

// UserJSON is the body of GET /api/users/{name}.
type UserJSON struct {
	User            string       `json:"user"`
	Hashrate        float64      `json:"hashrate"` // over the window, this instance
	WindowSeconds   float64      `json:"window_seconds"`
	SharesPerSecond float64      `json:"shares_per_second"`
	LastShare       *time.Time   `json:"last_share"`
	Workers         []WorkerJSON `json:"workers"`
	// Round is the round the workers' round_* fields count in.
	Round RoundJSON `json:"round"`
	// Balance is from the payout ledger; null when the user was never
	// credited.
	Balance *BalanceJSON `json:"balance"`
}

// WorkerJSON is one worker of a user: its hashrate over the window on this
// instance, and from the database (all instances, migration 00009's
// user_worker_stats): its stored shares and hashrate of the last hour and
// 10 minutes, accepted and rejected counts of all time (rejected by
// reason), and the best share difficulty of all time and of this round.
type WorkerJSON struct {
	Name        string     `json:"name"`
	Hashrate    float64    `json:"hashrate"`
	Hashrate10m float64    `json:"hashrate_10m"`
	Hashrate1h  float64    `json:"hashrate_1h"`
	Shares1h    int64      `json:"shares_1h"`
	LastShare   *time.Time `json:"last_share"`
	// Accepted and Rejected count the worker's shares of all time;
	// RejectedByReason splits Rejected by reason (stale, duplicate,
	// low-difficulty, ...). Rejects reach the database every few seconds.
	Accepted         int64            `json:"accepted"`
	Rejected         int64            `json:"rejected"`
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	LastReject       *time.Time       `json:"last_reject"`
	// BestShareDifficulty is the highest achieved difficulty of the
	// worker's accepted shares, of all time (0 without any);
	// RoundBestShareDifficulty the same over this round (null without a
	// share in it), RoundShares the round's accepted shares.
	BestShareDifficulty      float64    `json:"best_share_difficulty"`
	BestShareAt              *time.Time `json:"best_share_at"`
	RoundShares              int64      `json:"round_shares"`
	RoundBestShareDifficulty *float64   `json:"round_best_share_difficulty"`
}

// RoundJSON says where the round in progress starts: after the pool's
// last found block (not rejected), or at the pool's start (null fields).
type RoundJSON struct {
	Start       *time.Time `json:"start"`
	AfterHeight *int32     `json:"after_height"`
	AfterHash   string     `json:"after_hash,omitempty"`
}

// BalanceJSON is a user's ledger balance in satoshis.
type BalanceJSON struct {
	Credited int64 `json:"credited"`
	Paid     int64 `json:"paid"`
	Pending  int64 `json:"pending"`
	Balance  int64 `json:"balance"`
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := username.Valid(name); err != nil {
		writeError(w, http.StatusBadRequest, "invalid user name")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	// A solo miner ("solo:<address>") has shares but no account.
	if _, err := s.cfg.Store.UserByName(ctx, name); err != nil && !username.IsSolo(name) {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "no such user")
			return
		}
		s.dbError(w, r, err)
		return
	}
	now := s.cfg.Now()
	stored, err := s.cfg.Store.WorkerStats(ctx, name, now.Add(-workerStatsPeriod))
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	details, round, err := s.cfg.Store.WorkerDetails(ctx, name)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	var bal *BalanceJSON
	if b, err := s.cfg.Store.UserBalance(ctx, name); err == nil {
		bal = &BalanceJSON{Credited: b.Credited, Paid: b.Paid, Pending: b.Pending, Balance: b.Balance}
	} else if !errors.Is(err, store.ErrNotFound) {
		s.dbError(w, r, err)
		return
	}

	out := UserJSON{User: name, WindowSeconds: s.cfg.Tracker.Window().Seconds(), Workers: []WorkerJSON{}, Balance: bal}
	byName := make(map[string]int)
	worker := func(n string) *WorkerJSON {
		i, ok := byName[n]
		if !ok {
			i = len(out.Workers)
			byName[n] = i
			out.Workers = append(out.Workers, WorkerJSON{Name: n})
		}
		return &out.Workers[i]
	}
	later := func(p **time.Time, t time.Time) {
		if t.IsZero() {
			return
		}
		if *p == nil || t.After(**p) {
			u := t.UTC()
			*p = &u
		}
	}
	if ur, ok := s.cfg.Tracker.User(name); ok {
		out.Hashrate, out.SharesPerSecond = ur.Rate.Hashrate, ur.Rate.SharesPerSecond
		later(&out.LastShare, ur.LastShare)
		for _, wr := range ur.Workers {
			wj := worker(wr.Name)
			wj.Hashrate = wr.Rate.Hashrate
			later(&wj.LastShare, wr.LastShare)
		}
	}
	for _, ws := range stored {
		wj := worker(ws.Worker)
		wj.Shares1h = ws.Shares
		later(&wj.LastShare, ws.LastShare)
		later(&out.LastShare, ws.LastShare)
	}
	for _, d := range details {
		wj := worker(d.Worker)
		wj.Hashrate10m, wj.Hashrate1h = d.Hashrate10m, d.Hashrate1h
		wj.Accepted, wj.Rejected, wj.RejectedByReason = d.Accepted, d.Rejected, d.RejectedByReason
		wj.BestShareDifficulty, wj.RoundShares = d.BestShareDifficulty, d.RoundShares
		later(&wj.BestShareAt, d.BestShareAt)
		later(&wj.LastReject, d.LastReject)
		later(&wj.LastShare, d.LastShare)
		later(&out.LastShare, d.LastShare)
		if d.RoundShares > 0 {
			best := d.RoundBestShareDifficulty
			wj.RoundBestShareDifficulty = &best
		}
	}
	for i := range out.Workers {
		if out.Workers[i].RejectedByReason == nil {
			out.Workers[i].RejectedByReason = map[string]int64{}
		}
	}
	if round.AfterHash != "" {
		start, h := round.Start.UTC(), round.AfterHeight
		out.Round = RoundJSON{Start: &start, AfterHeight: &h, AfterHash: round.AfterHash}
	}
	slices.SortFunc(out.Workers, func(a, b WorkerJSON) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleBlocks(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	blocks, err := s.cfg.Store.Blocks(ctx, limit)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]BlockJSON, len(blocks))
	for i, b := range blocks {
		out[i] = blockJSON(b)
	}
	writeJSON(w, http.StatusOK, struct {
		Blocks []BlockJSON `json:"blocks"`
	}{out})
}

// PaymentJSON is a payment as the API shows it; amounts in satoshis.
type PaymentJSON struct {
	ID        int64        `json:"id"`
	State     string       `json:"state"`
	Total     int64        `json:"total"`
	Fee       int64        `json:"fee"`
	FeeRate   int64        `json:"fee_rate"` // sat/vB
	TxID      string       `json:"txid,omitempty"`
	BlockHash string       `json:"block_hash,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
	Outputs   []OutputJSON `json:"outputs"`
}

// OutputJSON is what a payment pays one user.
type OutputJSON struct {
	User    string `json:"user"`
	Address string `json:"address"`
	Amount  int64  `json:"amount"`
}

func (s *Server) handlePayments(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r)
	if !ok {
		return
	}
	user := r.URL.Query().Get("user")
	if _, given := r.URL.Query()["user"]; given {
		if err := username.Valid(user); err != nil {
			writeError(w, http.StatusBadRequest, "invalid user name")
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	pays, err := s.cfg.Store.Payments(ctx, user, limit)
	if err != nil {
		s.dbError(w, r, err)
		return
	}
	out := make([]PaymentJSON, len(pays))
	for i, p := range pays {
		pj := PaymentJSON{ID: p.ID, State: p.State, Total: p.Total, Fee: p.Fee, FeeRate: p.FeeRate, TxID: p.TxID,
			BlockHash: p.BlockHash, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
			Outputs: make([]OutputJSON, len(p.Outputs))}
		for j, o := range p.Outputs {
			pj.Outputs[j] = OutputJSON{User: o.Username, Address: o.Address, Amount: o.Amount}
		}
		out[i] = pj
	}
	writeJSON(w, http.StatusOK, struct {
		Payments []PaymentJSON `json:"payments"`
	}{out})
}
