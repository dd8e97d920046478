-- Events are keyed by (gate, journal, sequence number): a gate's journal that starts again from
-- 1 (journal.db replaced) is a new journal, and its events are stored beside the old one's
-- instead of being taken for them. (The sqlite and postgres files are the same but for types
-- and SQLite's table rebuilds.)

-- A gate's journals by the id each journal was created with; `journal_no` is the short number
-- events and watermarks carry. 0 is the gate's events from before journal ids (uploads without
-- an id, and journals that got their id at migration), which has no row here; new journals get
-- 1, 2, …
CREATE TABLE gate_journals (
    gate_id INTEGER NOT NULL,
    journal_id TEXT NOT NULL,
    journal_no INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (gate_id, journal_id),
    CONSTRAINT gate_journals_no UNIQUE (gate_id, journal_no)
);

CREATE TABLE passage_events_v10 (
    gate_id INTEGER NOT NULL,
    journal_no INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    lane TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,                -- the gate's original time
    received_ms INTEGER NOT NULL,          -- when the centre stored it
    plate TEXT,
    vehicle_id INTEGER,
    permit_id INTEGER,
    direction TEXT,
    granted INTEGER,
    reason TEXT,
    body TEXT NOT NULL,                    -- the event as JSON
    PRIMARY KEY (gate_id, journal_no, seq)
);
INSERT INTO passage_events_v10 (gate_id, journal_no, seq, lane, kind, at_ms, received_ms, plate,
    vehicle_id, permit_id, direction, granted, reason, body)
SELECT gate_id, 0, seq, lane, kind, at_ms, received_ms, plate, vehicle_id, permit_id, direction,
    granted, reason, body FROM passage_events;
DROP TABLE passage_events;
ALTER TABLE passage_events_v10 RENAME TO passage_events;
CREATE INDEX passage_events_order ON passage_events (at_ms, gate_id, seq);
CREATE INDEX passage_events_plate_order ON passage_events (plate, at_ms, gate_id, seq);
CREATE INDEX passage_events_gate_order ON passage_events (gate_id, at_ms, seq);

-- The watermark (every event 1..=contiguous_seq stored) is per journal.
CREATE TABLE passage_event_watermarks_v10 (
    gate_id INTEGER NOT NULL,
    journal_no INTEGER NOT NULL DEFAULT 0,
    contiguous_seq INTEGER NOT NULL,
    PRIMARY KEY (gate_id, journal_no)
);
INSERT INTO passage_event_watermarks_v10 (gate_id, journal_no, contiguous_seq)
SELECT gate_id, 0, contiguous_seq FROM passage_event_watermarks;
DROP TABLE passage_event_watermarks;
ALTER TABLE passage_event_watermarks_v10 RENAME TO passage_event_watermarks;

-- Quarantine: an uploaded event whose (gate, journal, seq) the centre already holds with a
-- different time, lane or body (the journal rewound: a power cut took its unsynced tail, or an
-- old copy was restored). Kept whole, never counted in statistics or presence, each raising an
-- `event_conflict` alarm and audit entry once; `digest` (SHA-256 of time, lane and body) makes
-- a re-sent conflicting event a duplicate here too.
CREATE TABLE event_conflicts (
    id INTEGER PRIMARY KEY,
    gate_id INTEGER NOT NULL,
    journal_no INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    lane TEXT NOT NULL,
    kind TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    digest TEXT NOT NULL,
    CONSTRAINT event_conflicts_once UNIQUE (gate_id, journal_no, seq, digest)
);
