package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The shares table is partitioned by UTC day: shares_pYYYYMMDD holds
// [day 00:00, next day 00:00).
const partitionLayout = "20060102"

func partitionName(day time.Time) string { return "shares_p" + day.UTC().Format(partitionLayout) }

var partitionRE = regexp.MustCompile(`^shares_p(\d{8})$`)

func utcDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// EnsurePartitions creates the daily partitions of shares covering [from, to]
// that do not exist yet. It is idempotent and safe to run from several
// instances at once.
func (s *Store) EnsurePartitions(ctx context.Context, from, to time.Time) error {
	for day := utcDay(from); !day.After(to.UTC()); day = day.AddDate(0, 0, 1) {
		if err := s.createPartition(ctx, day); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) createPartition(ctx context.Context, day time.Time) error {
	s.partMu.Lock()
	known := s.partDays[day]
	s.partMu.Unlock()
	if known {
		return nil
	}
	name := partitionName(day)
	sql := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF shares FOR VALUES FROM ('%s') TO ('%s')`,
		pgx.Identifier{name}.Sanitize(), day.Format(time.RFC3339), day.AddDate(0, 0, 1).Format(time.RFC3339))
	_, err := s.pool.Exec(ctx, sql)
	if err != nil {
		err = mapErr("create partition "+name, err)
		// Two creators racing on the same partition (two instances, or the
		// drainer and the daemon's ahead-of-need loop): the loser sees a
		// unique violation on the catalog or "relation already exists";
		// the partition exists either way.
		if !errors.Is(err, ErrExists) && !isDuplicateTable(err) {
			return err
		}
	}
	s.partMu.Lock()
	s.partDays[day] = true
	s.partMu.Unlock()
	return nil
}

// forgetPartitions clears the cache of partitions known to exist, after one
// was found missing (dropped by an operator).
func (s *Store) forgetPartitions() {
	s.partMu.Lock()
	clear(s.partDays)
	s.partMu.Unlock()
}

// isDuplicateTable reports PostgreSQL's 42P07 duplicate_table.
func isDuplicateTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P07"
}

// isNoPartition reports whether err is PostgreSQL's "no partition of
// relation found for row".
func isNoPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.Contains(pgErr.Message, "no partition")
}

// ensurePartitionsFor makes sure the days of shares have partitions.
func (s *Store) ensurePartitionsFor(ctx context.Context, shares []StoredShare) error {
	lo, hi := shares[0].Time, shares[0].Time
	for i := range shares {
		if t := shares[i].Time; t.Before(lo) {
			lo = t
		} else if t.After(hi) {
			hi = t
		}
	}
	return s.EnsurePartitions(ctx, lo, hi)
}

// Partition describes one daily partition of shares.
type Partition struct {
	Name string
	Day  time.Time // UTC midnight of the day it holds
}

// Partitions lists the daily partitions of shares, oldest first.
func (s *Store) Partitions(ctx context.Context) ([]Partition, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'shares'`)
	if err != nil {
		return nil, mapErr("list partitions", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, mapErr("list partitions", err)
	}
	var out []Partition
	for _, n := range names {
		m := partitionRE.FindStringSubmatch(n)
		if m == nil {
			continue // not ours: leave it alone
		}
		day, err := time.Parse(partitionLayout, m[1])
		if err != nil {
			continue
		}
		out = append(out, Partition{Name: n, Day: day})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day.Before(out[j].Day) })
	return out, nil
}

// DropPartitionsBefore drops the daily partitions whose whole day lies before
// cutoff and returns their names. The caller decides the cutoff (retention,
// and never what a pending payout still needs).
func (s *Store) DropPartitionsBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	parts, err := s.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, p := range parts {
		if p.Day.AddDate(0, 0, 1).After(cutoff) {
			break
		}
		if _, err := s.pool.Exec(ctx, `DROP TABLE `+pgx.Identifier{p.Name}.Sanitize()); err != nil {
			return dropped, mapErr("drop partition "+p.Name, err)
		}
		s.partMu.Lock()
		delete(s.partDays, p.Day)
		s.partMu.Unlock()
		dropped = append(dropped, p.Name)
	}
	return dropped, nil
}
