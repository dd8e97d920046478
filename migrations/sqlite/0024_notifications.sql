-- Notifications (issue 21, item 4): hosts, applicants and visitors are told by e-mail and by
-- the enterprise-chat group robot webhook of what concerns them.
--
-- `notifications` is the durable outbox: `central::notify::queue` writes one row per channel
-- and recipient right after the change that caused it (recipients and words resolved then),
-- and the delivery worker sends it. A row is `pending` until delivered (`sent`) or given up
-- (`failed`, after the last retry or a day); a worker claims a due row with one conditional
-- UPDATE (its own `claim_token` and a lease in `claimed_until_ms`), so central instances
-- sharing the database never both send it and a crashed instance's claim runs out.
-- `dedup_key` makes queueing the same notice twice a no-op. For the webhook, `recipient` is
-- empty: its URL (which carries a key) is configuration, never stored.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    notice TEXT NOT NULL,                  -- visit_requested, booking_approved, booking_rejected, pass_issued, visitor_arrived
    booking_id INTEGER,
    channel TEXT NOT NULL,                 -- email, webhook
    recipient TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL,
    dedup_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending', -- pending, sent, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER,
    claim_token TEXT,
    claimed_until_ms INTEGER,
    last_error TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    sent_ms INTEGER
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_ms);
CREATE INDEX notifications_created ON notifications (created_ms);

-- What the running server was configured to send (`[notify]` of server.toml, written at
-- start): `queue` consults it, so nothing is queued for a channel no one configured. One row.
CREATE TABLE notify_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    email INTEGER NOT NULL,                -- 1: [notify.smtp] is configured
    webhook INTEGER NOT NULL,              -- 1: [notify.webhook] is configured
    webhook_notices TEXT NOT NULL,         -- comma-separated notice kinds the group is told of
    public_url TEXT NOT NULL DEFAULT '',   -- the base of links in messages
    timezone TEXT NOT NULL,                -- the site's time zone for times in messages
    updated_ms INTEGER NOT NULL
);
