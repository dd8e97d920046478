-- The guard booth console (issue 7): visits of outside vehicles registered at the booth, guards'
-- duty at a booth, handover notes, one-button alarms and the alarm webhook (the police link).
-- Same conventions as 0001: *_ms are UTC milliseconds; migrations/postgres/0004 is the same
-- schema in PostgreSQL's types.

-- A visitor vehicle on campus: registered by a guard (walk-in, or from a booking), closed when
-- the vehicle leaves. An open visit past expected_departure_ms is an overstay.
CREATE TABLE visits (
    id INTEGER PRIMARY KEY,
    booking_id INTEGER REFERENCES visitor_bookings (id),
    gate_id INTEGER NOT NULL REFERENCES gates (id),
    lane_key TEXT NOT NULL,
    plate TEXT NOT NULL,                   -- normalised (src/domain/plate.rs)
    driver_name TEXT NOT NULL,
    driver_phone TEXT NOT NULL,
    host_name TEXT NOT NULL,
    department TEXT NOT NULL,
    purpose TEXT NOT NULL,
    expected_departure_ms INTEGER NOT NULL,
    arrived_ms INTEGER NOT NULL,
    left_ms INTEGER,
    registered_by INTEGER REFERENCES operators (id),
    closed_by INTEGER REFERENCES operators (id)
);
CREATE INDEX visits_plate ON visits (plate);
CREATE INDEX visits_open ON visits (left_ms, expected_departure_ms);

-- A guard on duty at a gate's booth, from sign-in to sign-off (NULL: still on duty).
CREATE TABLE duty_records (
    id INTEGER PRIMARY KEY,
    operator_id INTEGER NOT NULL REFERENCES operators (id),
    gate_id INTEGER NOT NULL REFERENCES gates (id),
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER
);
CREATE INDEX duty_records_gate ON duty_records (gate_id, started_ms);

-- A note one shift leaves the next at a gate.
CREATE TABLE handover_notes (
    id INTEGER PRIMARY KEY,
    gate_id INTEGER NOT NULL REFERENCES gates (id),
    operator_id INTEGER NOT NULL REFERENCES operators (id),
    at_ms INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX handover_notes_gate ON handover_notes (gate_id, at_ms);

-- One-button alarms (一键报警) raised at a booth, until the security office acknowledges them.
CREATE TABLE alarms (
    id INTEGER PRIMARY KEY,
    gate_id INTEGER NOT NULL REFERENCES gates (id),
    raised_by INTEGER REFERENCES operators (id),
    raised_ms INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    webhook_status TEXT NOT NULL DEFAULT 'none',  -- none, sent, failed: the police link's answer
    acknowledged_by INTEGER REFERENCES operators (id),
    acknowledged_ms INTEGER
);
CREATE INDEX alarms_open ON alarms (acknowledged_ms, raised_ms);

-- The alarm webhook (the police link): at most one row, id = 1.
CREATE TABLE alarm_webhook (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    updated_ms INTEGER NOT NULL
);
