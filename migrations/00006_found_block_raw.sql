-- +goose Up
-- A found block is never lost (issue 15): its full serialized bytes travel
-- with its share through the spool and are stored here, and stratumd's
-- resubmitter hands a block that no node is known to have to every node
-- again, with backoff and across restarts.
--   raw                 the serialized block, witness included (NULL for
--                       rows from before this migration and for a block
--                       that could not be assembled). Its hex is what
--                       `bitcoin-cli submitblock` takes:
--                       SELECT encode(raw, 'hex') FROM blocks WHERE hash = '...'
--   submit_attempts     resubmissions so far (the submission at the find is
--                       not counted)
--   last_submit_at      when the last resubmission was made
--   last_submit_result  what the nodes answered to it ("accepted",
--                       "duplicate: ...", "error: ...")
--   on_chain_at         when a node was first seen to have the block in its
--                       best chain
--   dumped_at           when its <height>-<hash>.json share dump was written
-- A block stays 'submitted' until a node has it in its best chain (then
-- stratumd makes it 'confirmed') or the chain has moved so far past its
-- height without it that it cannot win ('orphaned'; status_reason says
-- "chain moved N blocks past height H without it").
ALTER TABLE blocks
    ADD COLUMN raw                bytea CHECK (octet_length(raw) BETWEEN 80 AND 4000000),
    ADD COLUMN submit_attempts    integer NOT NULL DEFAULT 0 CHECK (submit_attempts >= 0),
    ADD COLUMN last_submit_at     timestamptz,
    ADD COLUMN last_submit_result text NOT NULL DEFAULT '',
    ADD COLUMN on_chain_at        timestamptz,
    ADD COLUMN dumped_at          timestamptz;

-- The blocks recorded before this migration had their dump written then
-- (or were past writing it): the recorder leaves them alone.
UPDATE blocks SET dumped_at = updated_at;

CREATE INDEX blocks_undumped_idx ON blocks (id) WHERE dumped_at IS NULL;

-- +goose Down
DROP INDEX blocks_undumped_idx;
ALTER TABLE blocks
    DROP COLUMN raw,
    DROP COLUMN submit_attempts,
    DROP COLUMN last_submit_at,
    DROP COLUMN last_submit_result,
    DROP COLUMN on_chain_at,
    DROP COLUMN dumped_at;
