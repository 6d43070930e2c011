-- +goose Up
-- blocks: every block the pool found, whatever became of it.
--   submitted  handed to the node/network, outcome not known yet
--   rejected   the node refused it (status_reason says why)
--   confirmed  in the best chain, not yet mature
--   orphaned   no longer in the best chain; earns nothing
--   matured    coinbase spendable (maturity plus margin); ready to credit
--   credited   its PPLNS split is in the ledger
-- The round's last share is (share_time, share_instance, share_seq): PPLNS
-- counts back from it.
CREATE TABLE blocks (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    height         integer          NOT NULL CHECK (height >= 0),
    hash           text             NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),
    prev_hash      text             NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    found_at       timestamptz      NOT NULL,
    username       text             NOT NULL,
    worker         text             NOT NULL,
    reward         bigint           NOT NULL CHECK (reward >= 0),
    network_difficulty double precision NOT NULL CHECK (network_difficulty > 0),
    status         text             NOT NULL DEFAULT 'submitted'
                   CHECK (status IN ('submitted', 'rejected', 'confirmed', 'orphaned', 'matured', 'credited')),
    status_reason  text             NOT NULL DEFAULT '',
    instance_id    smallint         NOT NULL CHECK (instance_id BETWEEN 0 AND 255),
    share_time     timestamptz      NOT NULL,
    share_instance smallint         NOT NULL,
    share_seq      bigint           NOT NULL,
    updated_at     timestamptz      NOT NULL DEFAULT now()
);

CREATE INDEX blocks_status_idx ON blocks (status);
CREATE INDEX blocks_found_at_idx ON blocks (found_at);

-- +goose Down
DROP TABLE blocks;
