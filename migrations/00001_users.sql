-- +goose Up
-- users: one row per pool account. In password mode (--auth password) a user
-- must exist and its password verify; in open mode (--auth open) the row is
-- created the first time a valid address authorizes, with no password.
CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text        NOT NULL UNIQUE
                   CHECK (length(name) BETWEEN 1 AND 128 AND name !~ '[[:cntrl:][:space:]]'),
    -- PHC-style string: "$argon2id$v=19$m=...,t=...,p=...$salt$hash" for modern
    -- hashes, "$sha256d$<hex>" for bcoin-stratum imports (re-hashed at the next
    -- successful login). NULL: the user cannot log in with a password.
    password_hash  text        CHECK (password_hash IS NULL OR password_hash LIKE '$%'),
    payout_address text        CHECK (payout_address IS NULL OR length(payout_address) BETWEEN 14 AND 100),
    is_admin       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

-- +goose Down
DROP TABLE users;
