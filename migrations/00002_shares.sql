-- +goose Up
-- shares: every accepted share, written by stratumd's spool drainer with COPY.
-- Range-partitioned by day on "time"; stratumd creates partitions ahead of need
-- (shares_pYYYYMMDD) and old ones can be dropped with DROP TABLE.
--
-- (instance_id, spool_id, seq) says where the share came from: the stratumd
-- instance, its local spool and the share's position in it. (time, instance_id,
-- seq) orders shares for PPLNS, oldest first.
CREATE TABLE shares (
    time             timestamptz      NOT NULL,
    username         text             NOT NULL,
    worker           text             NOT NULL,
    job_id           text             NOT NULL,
    height           integer          NOT NULL CHECK (height >= 0),
    -- the difficulty the share was assigned (what it is worth)
    difficulty       double precision NOT NULL CHECK (difficulty > 0),
    -- the actual difficulty of the share's hash (>= difficulty)
    share_difficulty double precision NOT NULL CHECK (share_difficulty > 0),
    instance_id      smallint         NOT NULL CHECK (instance_id BETWEEN 0 AND 255),
    remote_addr      text             NOT NULL DEFAULT '',
    spool_id         uuid             NOT NULL,
    seq              bigint           NOT NULL CHECK (seq > 0),
    PRIMARY KEY (time, instance_id, seq)
) PARTITION BY RANGE (time);

CREATE INDEX shares_username_time_idx ON shares (username, time);

-- spool_progress: the highest spool sequence number stored per spool. It is
-- updated in the same transaction as the COPY of the shares it covers, so a
-- replay after a crash skips exactly what is already stored.
CREATE TABLE spool_progress (
    spool_id    uuid        PRIMARY KEY,
    instance_id smallint    NOT NULL,
    last_seq    bigint      NOT NULL CHECK (last_seq >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE spool_progress;
DROP TABLE shares;
