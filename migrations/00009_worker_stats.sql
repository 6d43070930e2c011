-- +goose Up
-- Per-worker statistics that match what a miner shows on its own screen:
-- best share difficulty (all time and this round), accepted and rejected
-- shares (rejected by reason), and hashrate from accepted work.
--
-- A "round" is the time since the pool's last found block: the shares
-- after the share of the newest block not rejected by the node, in the
-- (time, instance_id, seq) order PPLNS and block_rounds use. Before the
-- pool's first block the round is all time.
--
-- Share difficulty is the achieved difficulty of a share's hash
-- (shares.share_difficulty, difficulty 1 = 0xffff × 2^208, as Bitcoin Core,
-- cgminer and ESP-Miner count it), not the difficulty it was assigned.

-- worker_daily: one row per user, worker and UTC day with accepted shares,
-- written by stratumd's drainer in the same transaction as the shares it
-- sums (so it is exact and never counts a share twice). It outlives the
-- daily share partitions that --retention drops: all-time counts and the
-- all-time best share come from here.
CREATE TABLE worker_daily (
    username              text             NOT NULL,
    worker                text             NOT NULL,
    day                   date             NOT NULL,
    shares                bigint           NOT NULL CHECK (shares > 0),
    -- sum of the shares' assigned difficulty (what they are worth)
    difficulty_sum        double precision NOT NULL CHECK (difficulty_sum > 0),
    best_share_difficulty double precision NOT NULL CHECK (best_share_difficulty > 0),
    best_share_at         timestamptz      NOT NULL,
    last_share            timestamptz      NOT NULL,
    PRIMARY KEY (username, worker, day)
) WITH (fillfactor = 50);
-- fillfactor 50: a row is updated by every batch of shares with that
-- worker in it; room on its page lets PostgreSQL update it in place (HOT,
-- no index entry per update), which makes the drainer's upsert 2-4× faster
-- (docs/BENCHMARKS.md, "Per-worker stats").

-- worker_rejects: rejected submits per user, worker, UTC day and reason
-- (stratum's reason names: stale, duplicate, low-difficulty, ntime, ...).
-- stratumd counts rejects in memory and adds its counts here every few
-- seconds (and when it stops), one upsert per worker and reason, so that a
-- flood of rejected submits never becomes a flood of rows. A reject is
-- counted here only when its submit named a worker the session authorized;
-- the pool-wide count by reason is in /metrics
-- (stratumd_shares_rejected_total). Counts of the last few seconds before a
-- crash (SIGKILL) are lost.
CREATE TABLE worker_rejects (
    username text        NOT NULL,
    worker   text        NOT NULL,
    day      date        NOT NULL,
    reason   text        NOT NULL CHECK (reason ~ '^[a-z0-9-]{1,32}$'),
    count    bigint      NOT NULL CHECK (count > 0),
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (username, worker, day, reason)
) WITH (fillfactor = 50);

-- Workers of the shares stored before this migration.
INSERT INTO worker_daily (username, worker, day, shares, difficulty_sum, best_share_difficulty, best_share_at, last_share)
SELECT username, worker, (time AT TIME ZONE 'UTC')::date, count(*), sum(difficulty),
       max(share_difficulty), (array_agg(time ORDER BY share_difficulty DESC, time))[1], max(time)
FROM shares
GROUP BY username, worker, (time AT TIME ZONE 'UTC')::date;

-- current_round: where the round in progress starts: the share of the
-- newest pool block not rejected (-infinity and no block before the
-- first). A solo block (00008) does not end the pool's round.
CREATE VIEW current_round AS
SELECT coalesce(b.share_time, '-infinity'::timestamptz) AS start_time,
       coalesce(b.share_instance, -1::smallint)        AS start_instance,
       coalesce(b.share_seq, -1::bigint)               AS start_seq,
       b.id     AS after_block_id,
       b.height AS after_height,
       b.hash   AS after_hash
FROM (SELECT 1) one
LEFT JOIN LATERAL (
    SELECT id, height, hash, share_time, share_instance, share_seq FROM blocks
    WHERE status <> 'rejected' AND mode = 'pplns'
    ORDER BY share_time DESC, share_instance DESC, share_seq DESC
    LIMIT 1
) b ON true;

-- user_worker_stats(user): one row per worker of the user that ever had a
-- share accepted or rejected:
--   accepted, accepted_difficulty    all time (worker_daily)
--   rejected, rejected_by_reason     all time (worker_rejects), a JSON
--                                    object {"stale": 3, ...}
--   best_share_difficulty, best_share_at                 all time
--   round_shares, round_best_share_difficulty, round_best_share_at
--                                    this round (see current_round): the
--                                    round's first UTC day from the shares
--                                    table, the days after it from
--                                    worker_daily; NULL best without a share
--                                    in the round (a round so long that
--                                    --retention dropped its first day's
--                                    partition misses that day)
--   hashrate_10m, hashrate_1h        H/s: the assigned difficulty of the
--                                    shares accepted in the last 10 minutes
--                                    (1 hour) × 2^32 / 600 (3600) seconds
--   last_share, last_reject
-- Example: SELECT * FROM user_worker_stats('bcrt1q...') ORDER BY worker;
-- +goose StatementBegin
CREATE FUNCTION user_worker_stats(u text)
RETURNS TABLE (
    username                    text,
    worker                      text,
    accepted                    bigint,
    accepted_difficulty         double precision,
    rejected                    bigint,
    rejected_by_reason          jsonb,
    best_share_difficulty       double precision,
    best_share_at               timestamptz,
    round_shares                bigint,
    round_best_share_difficulty double precision,
    round_best_share_at         timestamptz,
    hashrate_10m                double precision,
    hashrate_1h                 double precision,
    last_share                  timestamptz,
    last_reject                 timestamptz
)
LANGUAGE sql STABLE
AS $$
    WITH r AS (SELECT * FROM current_round),
    r_day AS (
        SELECT CASE WHEN r.start_time = '-infinity' THEN NULL
                    ELSE (r.start_time AT TIME ZONE 'UTC')::date END AS d,
               r.start_time, r.start_instance, r.start_seq
        FROM r
    ),
    totals AS (
        SELECT d.worker,
               sum(d.shares)::bigint AS accepted,
               sum(d.difficulty_sum) AS accepted_difficulty,
               max(d.last_share)     AS last_share
        FROM worker_daily d WHERE d.username = u
        GROUP BY d.worker
    ),
    best AS (
        SELECT DISTINCT ON (d.worker) d.worker, d.best_share_difficulty, d.best_share_at
        FROM worker_daily d WHERE d.username = u
        ORDER BY d.worker, d.best_share_difficulty DESC, d.best_share_at
    ),
    -- the round: whole days after its first day from the rollup, its
    -- first day (after the block's share) from the shares themselves
    round_parts AS (
        SELECT d.worker, d.shares, d.best_share_difficulty AS best, d.best_share_at AS best_at
        FROM worker_daily d, r_day
        WHERE d.username = u AND (r_day.d IS NULL OR d.day > r_day.d)
        UNION ALL
        SELECT s.worker, 1, s.share_difficulty, s.time
        FROM shares s, r_day
        WHERE r_day.d IS NOT NULL AND s.username = u
          AND s.time >= r_day.start_time AND s.time < (r_day.d + 1)::timestamp AT TIME ZONE 'UTC'
          AND (s.time, s.instance_id, s.seq) > (r_day.start_time, r_day.start_instance, r_day.start_seq)
    ),
    round AS (
        SELECT DISTINCT ON (p.worker) p.worker,
               sum(p.shares) OVER (PARTITION BY p.worker)::bigint AS shares,
               p.best, p.best_at
        FROM round_parts p
        ORDER BY p.worker, p.best DESC, p.best_at
    ),
    recent AS (
        SELECT s.worker,
               coalesce(sum(s.difficulty) FILTER (WHERE s.time >= now() - interval '10 minutes'), 0) AS diff_10m,
               sum(s.difficulty) AS diff_1h
        FROM shares s
        WHERE s.username = u AND s.time >= now() - interval '1 hour'
        GROUP BY s.worker
    ),
    rej_reason AS (
        SELECT j.worker, j.reason, sum(j.count)::bigint AS n, max(j.last_at) AS last_at
        FROM worker_rejects j WHERE j.username = u
        GROUP BY j.worker, j.reason
    ),
    rej AS (
        SELECT worker, sum(n)::bigint AS rejected, jsonb_object_agg(reason, n) AS by_reason, max(last_at) AS last_at
        FROM rej_reason GROUP BY worker
    ),
    workers AS (
        SELECT worker FROM totals UNION SELECT worker FROM rej
    )
    SELECT u,
           w.worker,
           coalesce(t.accepted, 0),
           coalesce(t.accepted_difficulty, 0),
           coalesce(j.rejected, 0),
           coalesce(j.by_reason, '{}'::jsonb),
           b.best_share_difficulty,
           b.best_share_at,
           coalesce(rd.shares, 0),
           rd.best,
           rd.best_at,
           coalesce(rc.diff_10m, 0) * 4294967296 / 600,
           coalesce(rc.diff_1h, 0) * 4294967296 / 3600,
           t.last_share,
           j.last_at
    FROM workers w
    LEFT JOIN totals t ON t.worker = w.worker
    LEFT JOIN best b ON b.worker = w.worker
    LEFT JOIN round rd ON rd.worker = w.worker
    LEFT JOIN recent rc ON rc.worker = w.worker
    LEFT JOIN rej j ON j.worker = w.worker
$$;
-- +goose StatementEnd

-- worker_stats: user_worker_stats for every user with a worker.
-- Example: SELECT username, worker, best_share_difficulty, round_best_share_difficulty,
--                 accepted, rejected, rejected_by_reason, hashrate_10m, hashrate_1h
--          FROM worker_stats ORDER BY hashrate_1h DESC LIMIT 20;
CREATE VIEW worker_stats AS
SELECT ws.*
FROM (SELECT DISTINCT username FROM worker_daily
      UNION SELECT DISTINCT username FROM worker_rejects) us
CROSS JOIN LATERAL user_worker_stats(us.username) ws;

-- +goose Down
DROP VIEW worker_stats;
DROP FUNCTION user_worker_stats(text);
DROP VIEW current_round;
DROP TABLE worker_rejects;
DROP TABLE worker_daily;
