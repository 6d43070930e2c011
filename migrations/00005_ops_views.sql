-- +goose Up
-- Views and functions for the questions operators ask, over the shares,
-- blocks and payout ledger tables. Hashrates are in hashes per second:
-- a share of (assigned) difficulty D stands for D × 2^32 hashes.

-- worker_hashrate(window): per user and worker, the shares of the last
-- `window`.
-- +goose StatementBegin
CREATE FUNCTION worker_hashrate(win interval)
RETURNS TABLE (
    username       text,
    worker         text,
    shares         bigint,
    difficulty_sum double precision,
    hashrate       double precision,
    last_share     timestamptz
)
LANGUAGE sql STABLE
AS $$
    SELECT s.username,
           s.worker,
           count(*),
           sum(s.difficulty),
           sum(s.difficulty) * 4294967296 / extract(epoch FROM win)::double precision,
           max(s.time)
    FROM shares s
    WHERE s.time >= now() - win
    GROUP BY s.username, s.worker
$$;
-- +goose StatementEnd

-- user_hashrate(window): the same summed per user.
-- Example: SELECT * FROM user_hashrate('15 minutes') ORDER BY hashrate DESC;
-- +goose StatementBegin
CREATE FUNCTION user_hashrate(win interval)
RETURNS TABLE (
    username       text,
    workers        bigint,
    shares         bigint,
    difficulty_sum double precision,
    hashrate       double precision,
    last_share     timestamptz
)
LANGUAGE sql STABLE
AS $$
    SELECT w.username, count(*), sum(w.shares)::bigint, sum(w.difficulty_sum), sum(w.hashrate), max(w.last_share)
    FROM worker_hashrate(win) w
    GROUP BY w.username
$$;
-- +goose StatementEnd

-- user_hashrate_1h: user_hashrate over the last hour.
CREATE VIEW user_hashrate_1h AS
SELECT * FROM user_hashrate('1 hour');

-- block_rounds: per block the pool found (rejected ones aside), the round
-- that led to it: the shares after the previous such block's share up to
-- and including its own, ordered by (share_time, share_instance,
-- share_seq) as PPLNS orders them. effort is the round's share difficulty
-- over the network difficulty (1.0: as lucky as expected). Rounds whose
-- shares were dropped by retention count only what is left.
CREATE VIEW block_rounds AS
SELECT b.id AS block_id,
       b.height,
       b.hash,
       b.status,
       b.found_at,
       b.username AS found_by,
       b.network_difficulty,
       b.prev_share_time AS round_start,
       b.share_time AS round_end,
       r.shares,
       r.users,
       r.difficulty_sum,
       r.difficulty_sum / b.network_difficulty AS effort
FROM (
    SELECT bl.*,
           lag(bl.share_time)     OVER w AS prev_share_time,
           lag(bl.share_instance) OVER w AS prev_share_instance,
           lag(bl.share_seq)      OVER w AS prev_share_seq
    FROM blocks bl
    WHERE bl.status <> 'rejected'
    WINDOW w AS (ORDER BY bl.share_time, bl.share_instance, bl.share_seq)
) b
CROSS JOIN LATERAL (
    SELECT count(*)                           AS shares,
           count(DISTINCT s.username)         AS users,
           coalesce(sum(s.difficulty), 0)     AS difficulty_sum
    FROM shares s
    WHERE (s.time, s.instance_id, s.seq) >
          (coalesce(b.prev_share_time, '-infinity'), coalesce(b.prev_share_instance, -1), coalesce(b.prev_share_seq, -1))
      AND (s.time, s.instance_id, s.seq) <= (b.share_time, b.share_instance, b.share_seq)
) r;

-- block_round_users: each round of block_rounds split by user.
CREATE VIEW block_round_users AS
SELECT b.block_id,
       b.height,
       b.hash,
       s.username,
       count(*)          AS shares,
       sum(s.difficulty) AS difficulty_sum
FROM (
    SELECT bl.id AS block_id, bl.height, bl.hash, bl.share_time, bl.share_instance, bl.share_seq,
           lag(bl.share_time)     OVER w AS prev_share_time,
           lag(bl.share_instance) OVER w AS prev_share_instance,
           lag(bl.share_seq)      OVER w AS prev_share_seq
    FROM blocks bl
    WHERE bl.status <> 'rejected'
    WINDOW w AS (ORDER BY bl.share_time, bl.share_instance, bl.share_seq)
) b
JOIN shares s
  ON (s.time, s.instance_id, s.seq) >
     (coalesce(b.prev_share_time, '-infinity'), coalesce(b.prev_share_instance, -1), coalesce(b.prev_share_seq, -1))
 AND (s.time, s.instance_id, s.seq) <= (b.share_time, b.share_instance, b.share_seq)
GROUP BY b.block_id, b.height, b.hash, s.username;

-- unpaid_balances: every user the pool owes (balance > 0 in the payout
-- ledger's balances view) with the address `payout` pays, amounts in
-- satoshis, and when the user was last credited. Whether a balance is paid
-- is `payout run`'s decision (--min-payout).
CREATE VIEW unpaid_balances AS
SELECT bal.username,
       u.payout_address,
       bal.balance,
       bal.pending,
       bal.credited,
       bal.paid,
       (SELECT max(c.created_at) FROM credits c WHERE c.username = bal.username) AS last_credit_at
FROM balances bal
LEFT JOIN users u ON u.name = bal.username
WHERE bal.balance > 0;

-- +goose Down
DROP VIEW unpaid_balances;
DROP VIEW block_round_users;
DROP VIEW block_rounds;
DROP VIEW user_hashrate_1h;
DROP FUNCTION user_hashrate(interval);
DROP FUNCTION worker_hashrate(interval);
