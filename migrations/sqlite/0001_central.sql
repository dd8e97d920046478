-- Gatehouse central schema, SQLite dialect (migrations/postgres holds the same in PostgreSQL's).
-- Conventions shared by both: ids are 64-bit integers; instants are UTC milliseconds since the
-- epoch in *_ms columns; flags are integers 0/1; JSON is TEXT. The server reads and writes both
-- databases through one code path (sqlx::Any, portable SQL), so the two files must stay
-- column-for-column the same.

CREATE TABLE persons (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,          -- staff, student, family, contractor, official, visitor
    department TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    id_card TEXT NOT NULL DEFAULT '',  -- full number; masked by the API unless the role needs it
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX persons_department ON persons (department);
CREATE INDEX persons_name ON persons (name);

CREATE TABLE vehicles (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,             -- normalised (src/domain/plate.rs)
    plate_colour TEXT NOT NULL,      -- blue, yellow, green, yellow_green, white, black
    vehicle_type TEXT NOT NULL DEFAULT 'car',
    owner_id INTEGER REFERENCES persons (id),
    note TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (plate, plate_colour)
);
CREATE INDEX vehicles_owner ON vehicles (owner_id);

CREATE TABLE credentials (
    id INTEGER PRIMARY KEY,
    epc TEXT NOT NULL UNIQUE,        -- upper-case hex
    tid TEXT,                        -- upper-case hex, when bound to the tag's factory TID
    vehicle_id INTEGER NOT NULL REFERENCES vehicles (id),
    status TEXT NOT NULL DEFAULT 'active',  -- active, lost, revoked
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX credentials_vehicle ON credentials (vehicle_id);

CREATE TABLE gates (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT 'normal',           -- normal, locked_closed, locked_open
    anti_passback TEXT NOT NULL DEFAULT 'hard',     -- off, hard, soft, timed:MINUTES
    offline_policy TEXT NOT NULL DEFAULT 'cached',  -- what a gate does without the centre
    enabled INTEGER NOT NULL DEFAULT 1,             -- 0: its certificate is refused
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TABLE lanes (
    id INTEGER PRIMARY KEY,
    gate_id INTEGER NOT NULL REFERENCES gates (id),
    lane_key TEXT NOT NULL,          -- the lane id in the gate's configuration (e.g. entry)
    name TEXT NOT NULL DEFAULT '',
    direction TEXT NOT NULL,         -- entry, exit, two_way
    mode TEXT NOT NULL DEFAULT 'normal',
    settings TEXT NOT NULL DEFAULT '{}',  -- device settings as JSON
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (gate_id, lane_key)
);

CREATE TABLE permits (
    id INTEGER PRIMARY KEY,
    category TEXT NOT NULL,
    holder_id INTEGER NOT NULL REFERENCES persons (id),
    valid_from_ms INTEGER NOT NULL,
    valid_until_ms INTEGER NOT NULL,
    gates TEXT NOT NULL DEFAULT 'all',     -- text form (src/domain/text.rs)
    schedule TEXT NOT NULL DEFAULT '',     -- text form; empty = always
    single_use INTEGER NOT NULL DEFAULT 0,
    max_inside INTEGER,                    -- NULL = no limit
    status TEXT NOT NULL DEFAULT 'active', -- active, suspended, revoked
    status_reason TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 1,    -- optimistic concurrency; journalled with decisions
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX permits_holder ON permits (holder_id);
CREATE INDEX permits_status ON permits (status);

CREATE TABLE permit_vehicles (
    permit_id INTEGER NOT NULL REFERENCES permits (id),
    vehicle_id INTEGER NOT NULL REFERENCES vehicles (id),
    PRIMARY KEY (permit_id, vehicle_id)
);
CREATE INDEX permit_vehicles_vehicle ON permit_vehicles (vehicle_id);

CREATE TABLE visitor_bookings (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES persons (id),
    department TEXT NOT NULL DEFAULT '',
    purpose TEXT NOT NULL DEFAULT '',
    plate TEXT NOT NULL,
    plate_colour TEXT,                     -- NULL: any colour
    driver_name TEXT NOT NULL DEFAULT '',
    driver_phone TEXT NOT NULL DEFAULT '',
    slot_from_ms INTEGER NOT NULL,
    slot_until_ms INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', -- pending, approved, rejected, cancelled, arrived, left, no_show
    arrived_ms INTEGER,
    left_ms INTEGER,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX visitor_bookings_plate ON visitor_bookings (plate);
CREATE INDEX visitor_bookings_slot ON visitor_bookings (slot_from_ms);

CREATE TABLE blacklist (
    id INTEGER PRIMARY KEY,
    subject_kind TEXT NOT NULL,            -- plate, tag, person
    subject TEXT NOT NULL,                 -- plate text, EPC hex or person id
    plate_colour TEXT,                     -- for plates: NULL = any colour
    reason TEXT NOT NULL DEFAULT '',
    alarm_level TEXT NOT NULL DEFAULT 'guard',  -- silent, guard, urgent
    valid_from_ms INTEGER NOT NULL,
    valid_until_ms INTEGER,                -- NULL: until lifted
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX blacklist_subject ON blacklist (subject_kind, subject);

CREATE TABLE vehicle_locks (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,
    plate_colour TEXT,
    reason TEXT NOT NULL DEFAULT '',
    valid_from_ms INTEGER NOT NULL,
    valid_until_ms INTEGER,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX vehicle_locks_plate ON vehicle_locks (plate);

CREATE TABLE operators (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,           -- argon2id PHC string
    roles TEXT NOT NULL,                   -- comma-separated: admin, security, guard, approver, viewer
    department TEXT NOT NULL DEFAULT '',   -- for department approvers
    enabled INTEGER NOT NULL DEFAULT 1,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TABLE operator_gates (
    operator_id INTEGER NOT NULL REFERENCES operators (id),
    gate_id INTEGER NOT NULL REFERENCES gates (id),
    PRIMARY KEY (operator_id, gate_id)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,           -- SHA-256 of the token; the token itself is never stored
    operator_id INTEGER NOT NULL REFERENCES operators (id),
    csrf_token TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);

-- Login throttling by source address (per account it is operators.failed_logins).
CREATE TABLE login_failures (
    source TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_ms INTEGER NOT NULL
);

-- Passage events as gates send them; idempotent on (gate_id, seq).
CREATE TABLE passage_events (
    gate_id INTEGER NOT NULL,
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
    PRIMARY KEY (gate_id, seq)
);
CREATE INDEX passage_events_plate_at ON passage_events (plate, at_ms);
CREATE INDEX passage_events_gate_at ON passage_events (gate_id, at_ms);
CREATE INDEX passage_events_at ON passage_events (at_ms);

-- Who did what: append-only; the API has no way to change or delete it.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    operator_id INTEGER,
    operator_name TEXT NOT NULL,
    action TEXT NOT NULL,                  -- create, update, delete, or a named action
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);
CREATE INDEX audit_log_at ON audit_log (at_ms);

-- Ordered change log the gates sync from (written in the same transaction as each change).
CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    op TEXT NOT NULL                       -- upsert, delete
);
