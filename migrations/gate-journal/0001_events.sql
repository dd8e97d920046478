-- The gate's event journal: every tag read, decision, barrier action, override, mode change and
-- device fault, in the order the gate saw them. Append-only but for pruning events the centre
-- has acknowledged. Lives in its own SQLite file so a large permit update never delays a commit.
CREATE TABLE events (
    -- Per-gate monotonic sequence number, assigned by the journal's single writer; contiguous.
    seq INTEGER PRIMARY KEY,
    -- When it happened: UTC milliseconds since the Unix epoch, by the gate's clock.
    at_ms INTEGER NOT NULL,
    lane TEXT NOT NULL,
    -- The event's kind (tag_read, barrier, passage, ...), duplicated out of body for filtering.
    kind TEXT NOT NULL,
    -- The event as JSON, in the same form the gate uploads it to the centre.
    body TEXT NOT NULL
);

-- One row: the highest sequence number the centre has acknowledged as stored (contiguously).
-- Only events at or below it may ever be pruned.
CREATE TABLE journal_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    acked_seq INTEGER NOT NULL
);
INSERT INTO journal_state (id, acked_seq) VALUES (1, 0);
