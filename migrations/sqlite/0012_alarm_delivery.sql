-- Alarm delivery you can trust (issue 17, item 10).
--
-- The police webhook is a durable queue in `alarms`: an alarm whose `webhook_status` is
-- `pending` is due at `next_attempt_ms`; an instance claims it by writing its own
-- `claim_token` and a lease (`claimed_until_ms`) in one compare-and-set UPDATE, so two central
-- instances on one database never both deliver it, and a crashed instance's claim runs out.
-- Every failure pushes `next_attempt_ms` back (exponential backoff); it ends `sent`, or
-- `given_up` by an operator.
ALTER TABLE alarms ADD COLUMN delivery_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE alarms ADD COLUMN next_attempt_ms BIGINT;
ALTER TABLE alarms ADD COLUMN claimed_until_ms BIGINT;
ALTER TABLE alarms ADD COLUMN claim_token TEXT;
ALTER TABLE alarms ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE alarms ADD COLUMN delivered_ms BIGINT;
-- A system alarm's condition ended (the device came back, the clock was corrected).
ALTER TABLE alarms ADD COLUMN cleared_ms BIGINT;
CREATE INDEX alarms_delivery ON alarms (webhook_status, next_attempt_ms);

-- The shared secret the webhook's calls are signed with (HMAC-SHA256). Never returned in full,
-- never logged, never audited. Empty: calls are unsigned (a setting from before 0012).
ALTER TABLE alarm_webhook ADD COLUMN secret TEXT NOT NULL DEFAULT '';

-- One system alarm per episode of a condition at a gate (a journal that cannot write, a clock
-- off, a device offline, a fire input), however many reports show it and however many central
-- instances receive them: the instance whose UPDATE/INSERT turns `open` from 0 to 1 raises the
-- alarm. `subject` tells apart conditions of one kind (a lane's device); `last_seq` keeps an
-- event-driven episode from being replayed by a repeated upload.
CREATE TABLE alarm_episodes (
    gate_id BIGINT NOT NULL REFERENCES gates (id),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    open BIGINT NOT NULL,
    alarm_id BIGINT,
    changed_ms BIGINT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (gate_id, kind, subject)
);
