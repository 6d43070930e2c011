-- +goose Up
-- SOLO mode (issue 18): a miner whose user name is "solo:<address>" (or
-- who connects to a listener marked solo) mines blocks whose coinbase pays
-- its own address, less the optional --solo-fee-bps output to the pool.
--   blocks.mode  'pplns' (the pool's block: payout splits it) or 'solo'
--                (the coinbase paid the finder: payout never credits it;
--                it moves submitted -> confirmed -> matured like any block
--                and stays matured)
-- Solo shares are stored like any other under the user name
-- "solo:<address>" (for statistics) and are never counted in a PPLNS
-- window or round: the payout's window walk, the recorder's round
-- summary and the views below skip user names starting with "solo:".
-- A solo block does not end the pool's round either.
-- See solo blocks:
--   SELECT height, hash, username, worker, reward, status FROM blocks WHERE mode = 'solo';
ALTER TABLE blocks
    ADD COLUMN mode text NOT NULL DEFAULT 'pplns' CHECK (mode IN ('pplns', 'solo'));

-- block_rounds and block_round_users (00005): pool blocks and pool shares
-- only. They name the columns of blocks they use (00005 took "bl.*").
CREATE OR REPLACE VIEW block_rounds AS
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
    SELECT bl.id, bl.height, bl.hash, bl.status, bl.found_at, bl.username, bl.network_difficulty,
           bl.share_time, bl.share_instance, bl.share_seq,
           lag(bl.share_time)     OVER w AS prev_share_time,
           lag(bl.share_instance) OVER w AS prev_share_instance,
           lag(bl.share_seq)      OVER w AS prev_share_seq
    FROM blocks bl
    WHERE bl.status <> 'rejected' AND bl.mode = 'pplns'
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
      AND NOT starts_with(s.username, 'solo:')
) r;

-- block_round_users: each round of block_rounds split by user.
CREATE OR REPLACE VIEW block_round_users AS
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
    WHERE bl.status <> 'rejected' AND bl.mode = 'pplns'
    WINDOW w AS (ORDER BY bl.share_time, bl.share_instance, bl.share_seq)
) b
JOIN shares s
  ON (s.time, s.instance_id, s.seq) >
     (coalesce(b.prev_share_time, '-infinity'), coalesce(b.prev_share_instance, -1), coalesce(b.prev_share_seq, -1))
 AND (s.time, s.instance_id, s.seq) <= (b.share_time, b.share_instance, b.share_seq)
 AND NOT starts_with(s.username, 'solo:')
GROUP BY b.block_id, b.height, b.hash, s.username;

-- +goose Down
-- The views are dropped first (they use the column) and created again as
-- 00005 made them, but naming the columns they use: 00005's "bl.*" would
-- now take in the columns of 00006 and 00008 and hold on to them.
DROP VIEW block_round_users;
DROP VIEW block_rounds;
ALTER TABLE blocks DROP COLUMN mode;
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
    SELECT bl.id, bl.height, bl.hash, bl.status, bl.found_at, bl.username, bl.network_difficulty,
           bl.share_time, bl.share_instance, bl.share_seq,
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
