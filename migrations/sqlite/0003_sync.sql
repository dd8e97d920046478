-- Gate <-> centre sync: each gate's sync state and health, commands to gates, and campus-wide
-- presence (anti-passback). (The sqlite and postgres files are the same but for types and the
-- change log's ordering trigger, which SQLite does not need: its writers are serialised.)

-- One row per gate that has ever synced: when it was last heard from, what it reported.
CREATE TABLE sync_gates (
    gate_id INTEGER PRIMARY KEY,
    last_seen_ms INTEGER NOT NULL,         -- by the centre's clock
    data_version INTEGER NOT NULL DEFAULT 0,
    clock_offset_ms INTEGER NOT NULL DEFAULT 0,  -- gate clock minus centre clock
    health TEXT NOT NULL DEFAULT '{}',     -- the gate's last health report as JSON
    gap_alarm_seq INTEGER NOT NULL DEFAULT -1    -- the watermark at which a gap was last alarmed
);

-- Commands to gates, delivered over the gate's sync connection, acknowledged by the gate.
CREATE TABLE gate_commands (
    id INTEGER PRIMARY KEY,
    gate_id INTEGER NOT NULL,
    body TEXT NOT NULL,                    -- the command as JSON (central::commands::GateCommand)
    actor TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,           -- not delivered after this
    acked_ms INTEGER,
    outcome TEXT,                          -- done, refused
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX gate_commands_pending ON gate_commands (gate_id, acked_ms, id);

-- Where each registered vehicle was last seen passing any gate (campus-wide anti-passback).
CREATE TABLE vehicle_presence (
    vehicle_id INTEGER PRIMARY KEY,
    inside INTEGER NOT NULL,
    since_ms INTEGER NOT NULL,
    gate_id INTEGER NOT NULL
);
