-- Signed visitor passes (issue 21): the site's pass keys (public halves, for the gates), the
-- passes issued for approved bookings, and per booking where and how often its pass opens and
-- whether its single use has been consumed.
-- pass_keys: loaded from `<pki dir>/pass-keys/` at server start (the private halves never
-- enter the database); retire_after_ms NULL while the key is current.
CREATE TABLE pass_keys (
    kid BIGINT PRIMARY KEY,
    public_key TEXT NOT NULL,              -- Ed25519, 32 bytes lower-case hex
    created_ms BIGINT NOT NULL,
    retire_after_ms BIGINT
);
-- One pass per booking: its token, the unguessable secret of its page (/pass/{secret}),
-- and whether it stands (issued) or was revoked with its booking.
CREATE TABLE visitor_passes (
    booking_id BIGINT PRIMARY KEY REFERENCES visitor_bookings (id),
    token TEXT NOT NULL,
    link_secret TEXT NOT NULL UNIQUE,      -- 128 random bits, base64url
    kid BIGINT NOT NULL,
    issued_ms BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'issued', -- issued, revoked
    revoked_ms BIGINT
);
-- Gate rights in the permits' text form (all, 1;2:exit); single use = one entry and one exit
-- campus-wide; the instants a single-use pass was consumed, per direction.
ALTER TABLE visitor_bookings ADD COLUMN gates TEXT NOT NULL DEFAULT 'all';
ALTER TABLE visitor_bookings ADD COLUMN single_use BIGINT NOT NULL DEFAULT 1;
ALTER TABLE visitor_bookings ADD COLUMN pass_used_entry_ms BIGINT;
ALTER TABLE visitor_bookings ADD COLUMN pass_used_exit_ms BIGINT;
