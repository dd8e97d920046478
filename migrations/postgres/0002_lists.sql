-- Lists, gates and passage events: the indexes their queries need, and the per-gate watermark
-- of contiguously received events. (The sqlite and postgres files are the same but for types.)

-- Events are listed newest first with (at_ms, gate_id, seq) as the total order, so a page is
-- stable; each index below serves one filter in that order without sorting the table:
-- all events, one plate's, one gate's (gate_id is fixed by the filter, seq breaks ties).
DROP INDEX passage_events_plate_at;
DROP INDEX passage_events_gate_at;
DROP INDEX passage_events_at;
CREATE INDEX passage_events_order ON passage_events (at_ms, gate_id, seq);
CREATE INDEX passage_events_plate_order ON passage_events (plate, at_ms, gate_id, seq);
CREATE INDEX passage_events_gate_order ON passage_events (gate_id, at_ms, seq);

-- The highest sequence number up to which a gate's events are all stored (no gaps): what the
-- centre acknowledges. Advanced by the ingest in the same transaction as the events.
CREATE TABLE passage_event_watermarks (
    gate_id BIGINT PRIMARY KEY,
    contiguous_seq BIGINT NOT NULL
);

-- The audit log by operator (who did what, newest first).
CREATE INDEX audit_log_operator ON audit_log (operator_name, at_ms);
