-- +goose Up
-- Replace-by-fee payments: a payment may have several transactions (the
-- first, fee bumps over the same inputs and outputs, and a conflicting
-- "abandon" transaction that spends its inputs back to the wallet); the
-- one that confirms settles it. Every one is stored (signed bytes and
-- txid) before it is broadcast.
--
-- payment_txs: every transaction of a payment, oldest first.
--   kind payment  the payment's first transaction
--   kind bump     a replacement: same inputs, same recipients, higher fee
--   kind abandon  a conflict: the same inputs paid back to the wallet
--   block_hash    set on the transaction that settled the payment
CREATE TABLE payment_txs (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id bigint      NOT NULL REFERENCES payments (id),
    txid       text        NOT NULL UNIQUE CHECK (txid ~ '^[0-9a-f]{64}$'),
    raw_tx     bytea       NOT NULL,
    fee        bigint      NOT NULL CHECK (fee >= 0),
    fee_rate   bigint      NOT NULL CHECK (fee_rate > 0), -- sat/vB asked for
    kind       text        NOT NULL CHECK (kind IN ('payment', 'bump', 'abandon')),
    block_hash text        CHECK (block_hash ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_txs_payment_idx ON payment_txs (payment_id, id);

-- Every payment signed so far has exactly one transaction.
INSERT INTO payment_txs (payment_id, txid, raw_tx, fee, fee_rate, kind, block_hash, created_at)
SELECT id, txid, raw_tx, fee, fee_rate, 'payment', CASE WHEN state = 'confirmed' THEN block_hash END, updated_at
FROM payments WHERE txid IS NOT NULL
ORDER BY id;

-- payments: two states more.
--   planned     recorded with its outputs; nothing signed or sent yet
--   signed      a transaction stored; may or may not have reached the network
--   broadcast   handed to the node; waiting for one of its transactions to confirm
--   abandoning  an abandon transaction is stored: its outputs still count as
--               pending until that conflict confirms (then abandoned) or a
--               paying transaction confirms (then confirmed)
--   confirmed   a paying transaction is in a block (txid, raw_tx, fee are its)
--   abandoned   its abandon transaction confirmed: its outputs count as unpaid again
--   failed      its inputs were spent by a transaction that is none of its
--               own: its outputs count as unpaid again
-- payments.txid, raw_tx, fee and fee_rate are the payment's current paying
-- transaction (the newest payment or bump; once confirmed, the one that
-- confirmed). conflict_seen_height is the best height at which a run first
-- saw one of its inputs spent on chain by none of its transactions.
ALTER TABLE payments DROP CONSTRAINT payments_state_check;
ALTER TABLE payments ADD CONSTRAINT payments_state_check
    CHECK (state IN ('planned', 'signed', 'broadcast', 'abandoning', 'confirmed', 'abandoned', 'failed'));
ALTER TABLE payments ADD COLUMN conflict_seen_height bigint CHECK (conflict_seen_height >= 0);

DROP INDEX payments_open_idx;
CREATE INDEX payments_open_idx ON payments (id) WHERE state IN ('planned', 'signed', 'broadcast', 'abandoning');

-- balances: per user, credited minus what every payment that is not given
-- up (failed, abandoned) pays them. paid counts confirmed payments, pending
-- every other one (planned, signed, broadcast, abandoning).
CREATE OR REPLACE VIEW balances AS
SELECT username,
       sum(credited)::bigint                    AS credited,
       sum(paid)::bigint                        AS paid,
       sum(pending)::bigint                     AS pending,
       sum(credited - paid - pending)::bigint   AS balance
FROM (
    SELECT username, amount AS credited, 0 AS paid, 0 AS pending FROM credits
    UNION ALL
    SELECT o.username, 0,
           CASE WHEN p.state = 'confirmed' THEN o.amount ELSE 0 END,
           CASE WHEN p.state <> 'confirmed' THEN o.amount ELSE 0 END
    FROM payment_outputs o JOIN payments p ON p.id = o.payment_id
    WHERE p.state NOT IN ('failed', 'abandoned')
) x
GROUP BY username;

-- +goose Down
-- An abandoning payment goes back to broadcast (its abandon transaction is
-- forgotten: rerun `payout abandon` after upgrading again); an abandoned one
-- becomes failed, which means the same for its outputs.
CREATE OR REPLACE VIEW balances AS
SELECT username,
       sum(credited)::bigint                    AS credited,
       sum(paid)::bigint                        AS paid,
       sum(pending)::bigint                     AS pending,
       sum(credited - paid - pending)::bigint   AS balance
FROM (
    SELECT username, amount AS credited, 0 AS paid, 0 AS pending FROM credits
    UNION ALL
    SELECT o.username, 0,
           CASE WHEN p.state = 'confirmed' THEN o.amount ELSE 0 END,
           CASE WHEN p.state <> 'confirmed' THEN o.amount ELSE 0 END
    FROM payment_outputs o JOIN payments p ON p.id = o.payment_id
    WHERE p.state <> 'failed'
) x
GROUP BY username;

UPDATE payments SET state = 'broadcast' WHERE state = 'abandoning';
UPDATE payments SET state = 'failed' WHERE state = 'abandoned';

DROP INDEX payments_open_idx;
CREATE INDEX payments_open_idx ON payments (id) WHERE state IN ('planned', 'signed', 'broadcast');

ALTER TABLE payments DROP COLUMN conflict_seen_height;
ALTER TABLE payments DROP CONSTRAINT payments_state_check;
ALTER TABLE payments ADD CONSTRAINT payments_state_check
    CHECK (state IN ('planned', 'signed', 'broadcast', 'confirmed', 'failed'));

DROP TABLE payment_txs;
