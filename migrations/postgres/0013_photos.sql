-- The gates' uploaded photos (plate close-up, scene), by content hash. The bytes are in the
-- photo backend (files or an S3-compatible store); a row means they are stored there.
CREATE TABLE photos (
    sha256 TEXT PRIMARY KEY,
    bytes BIGINT NOT NULL,
    gate_id BIGINT NOT NULL,
    received_ms BIGINT NOT NULL
);
-- The retention purge finds what is past its days.
CREATE INDEX photos_received ON photos (received_ms);
