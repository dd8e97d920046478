-- Signed visitor passes at the gate (issue 21): what an offline gate needs to verify a pass
-- and to refuse a replayed single-use one, also after a restart.
-- - bookings: the centre's word that a booking's single-use pass was used (campus-wide, per
--   direction), as it arrives with the booking row.
-- - consumed_passes: single-use passes this gate granted (booking, direction), written at the
--   grant, beside `consumed` (single-use permits).
-- - pass_keys: the site's public pass keys from the gate settings, with the end of a rotated-out
--   key's overlap.

ALTER TABLE bookings ADD COLUMN pass_used_entry INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bookings ADD COLUMN pass_used_exit INTEGER NOT NULL DEFAULT 0;

CREATE TABLE consumed_passes (
    booking_id INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('entry', 'exit')),
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (booking_id, direction)
) WITHOUT ROWID;

CREATE TABLE pass_keys (
    kid INTEGER PRIMARY KEY,
    public_key TEXT NOT NULL,       -- 32 bytes, lower-case hex
    retire_after_ms INTEGER         -- UTC milliseconds; NULL while current
);
