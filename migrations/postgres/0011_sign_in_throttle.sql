-- Sign-in throttling per (source address, account) instead of a lock on the account that any
-- stranger could extend; `username = ''` counts a source's failures across accounts. Kept in
-- the database (not per instance) so that instances sharing one PostgreSQL throttle together
-- and an administrator's unlock reaches them all.
CREATE TABLE login_throttle (
    source TEXT NOT NULL,                  -- the client's IP address ('unknown' without one)
    username TEXT NOT NULL,                -- SHA-256 of the name typed (trimmed); '' for the whole source
    failures BIGINT NOT NULL,             -- after decay, including an attempt in flight
    last_ms BIGINT NOT NULL,
    PRIMARY KEY (source, username)
);
CREATE INDEX login_throttle_username ON login_throttle (username);
CREATE INDEX login_throttle_last ON login_throttle (last_ms);
DROP TABLE login_failures;

-- Idle expiry: when a session was last used (updated at most once a minute).
ALTER TABLE sessions ADD COLUMN last_used_ms BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_used_ms = created_ms;
