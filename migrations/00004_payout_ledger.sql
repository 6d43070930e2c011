-- +goose Up
-- The payout ledger, written only by `payout run` under its advisory lock.
--
-- block_splits: one row per credited block: how its reward was split. It is
-- inserted in the same transaction as the block's credits and the block's
-- move from matured to credited, so a block is credited exactly once.
--   reward = miners_total + pool_fee + pool_remainder
--   miners_total = sum(credits.amount) of the block
CREATE TABLE block_splits (
    block_id        bigint           PRIMARY KEY REFERENCES blocks (id),
    reward          bigint           NOT NULL CHECK (reward >= 0),
    fee_bps         integer          NOT NULL CHECK (fee_bps BETWEEN 0 AND 10000),
    pool_fee        bigint           NOT NULL CHECK (pool_fee >= 0),
    pool_remainder  bigint           NOT NULL CHECK (pool_remainder >= 0),
    miners_total    bigint           NOT NULL CHECK (miners_total >= 0),
    pplns_factor    double precision NOT NULL CHECK (pplns_factor > 0),
    -- N: the window's size in share-difficulty units
    window_target   double precision NOT NULL CHECK (window_target > 0),
    -- the share difficulty actually counted (< window_target: young pool)
    window_counted  double precision NOT NULL CHECK (window_counted >= 0),
    window_shares   bigint           NOT NULL CHECK (window_shares >= 0),
    -- the oldest share counted (in part), NULL when no share was counted
    oldest_time     timestamptz,
    oldest_instance smallint,
    oldest_seq      bigint,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    CHECK (reward = miners_total + pool_fee + pool_remainder)
);

-- credits: what each user earned from one block.
CREATE TABLE credits (
    block_id   bigint      NOT NULL REFERENCES block_splits (block_id),
    username   text        NOT NULL,
    amount     bigint      NOT NULL CHECK (amount > 0),
    -- the user's share difficulty in the window (the partial share counted in part)
    difficulty double precision NOT NULL CHECK (difficulty > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (block_id, username)
);

CREATE INDEX credits_username_idx ON credits (username);

-- payments: one wallet transaction each.
--   planned    recorded with its outputs; nothing signed or sent yet
--   signed     raw_tx and txid stored; may or may not have reached the network
--   broadcast  handed to the node; waiting for a confirmation
--   confirmed  in a block
--   failed     abandoned by an operator (its outputs count as unpaid again);
--              only for payments whose transaction can never confirm
CREATE TABLE payments (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state      text        NOT NULL DEFAULT 'planned'
               CHECK (state IN ('planned', 'signed', 'broadcast', 'confirmed', 'failed')),
    total      bigint      NOT NULL CHECK (total > 0),
    fee_rate   bigint      NOT NULL CHECK (fee_rate > 0), -- sat/vB asked for
    fee        bigint      CHECK (fee >= 0),              -- satoshis, once signed
    txid       text        UNIQUE CHECK (txid ~ '^[0-9a-f]{64}$'),
    raw_tx     bytea,
    block_hash text        CHECK (block_hash ~ '^[0-9a-f]{64}$'),
    last_error text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (state IN ('planned', 'failed') OR (txid IS NOT NULL AND raw_tx IS NOT NULL AND fee IS NOT NULL))
);

CREATE INDEX payments_open_idx ON payments (id) WHERE state IN ('planned', 'signed', 'broadcast');

-- payment_outputs: who a payment pays, where, and how much.
CREATE TABLE payment_outputs (
    payment_id bigint NOT NULL REFERENCES payments (id),
    username   text   NOT NULL,
    address    text   NOT NULL,
    amount     bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (payment_id, username)
);

CREATE INDEX payment_outputs_username_idx ON payment_outputs (username);

-- payment_inputs: the wallet outputs a signed payment spends. A new payment
-- never spends an input of a signed or broadcast one.
CREATE TABLE payment_inputs (
    payment_id bigint NOT NULL REFERENCES payments (id),
    txid       text   NOT NULL CHECK (txid ~ '^[0-9a-f]{64}$'),
    vout       bigint NOT NULL CHECK (vout >= 0),
    amount     bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (payment_id, txid, vout)
);

CREATE INDEX payment_inputs_outpoint_idx ON payment_inputs (txid, vout);

-- balances: per user, credited minus what every payment that is not failed
-- pays them. paid counts confirmed payments, pending the others.
CREATE VIEW balances AS
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

-- +goose Down
DROP VIEW balances;
DROP TABLE payment_inputs;
DROP TABLE payment_outputs;
DROP TABLE payments;
DROP TABLE credits;
DROP TABLE block_splits;
