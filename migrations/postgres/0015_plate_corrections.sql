-- A guard's or the office's correction of a plate a camera (or a tag's record) got wrong, on one
-- stored passage event (issue 19). The event itself is never changed: its body keeps what the
-- gate journalled (the camera's raw read and photos); the correction sits beside it, keyed like
-- the event, and a second correction of the same event replaces the first (both audited).
-- Passage search and the outside-vehicle statistics use `plate` when there is a correction.
CREATE TABLE plate_corrections (
    gate_id BIGINT NOT NULL,
    journal_no BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    original_plate TEXT,                   -- the plate the event carried (normalised when valid)
    original_colour TEXT,                  -- the camera's colour code, if it reported one
    plate TEXT NOT NULL,                   -- the corrected plate, normalised
    colour TEXT,                           -- the corrected colour code (blue, yellow, …)
    operator_id BIGINT,
    at_ms BIGINT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (gate_id, journal_no, seq)
);
CREATE INDEX plate_corrections_plate ON plate_corrections (plate);
