-- Self-booking on a phone (issue 21, item 3): a visitor's request, stored only when its form is
-- valid and its host exists, as a pending visitor booking plus this row. The visitor holds the
-- token (its status page link); only its SHA-256 is kept here.
CREATE TABLE visit_requests (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    booking_id INTEGER NOT NULL REFERENCES visitor_bookings (id),
    source TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL
);
CREATE INDEX visit_requests_booking ON visit_requests (booking_id);

-- The site's secret that signs status tokens (HMAC-SHA256): one row, made on first use, so a
-- token issued for a request that was never stored (a wrong host) still reads as waiting and
-- a made-up token reads as unknown.
CREATE TABLE visit_request_secret (
    id INTEGER PRIMARY KEY,
    secret TEXT NOT NULL
);
