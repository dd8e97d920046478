-- The gate's local copy of what it decides from: permits, vehicles, tag credentials, the
-- blacklist, the lock list and visitor bookings (a cache of the centre's data, or of an
-- installer's CSV import), plus the lane state that must survive a restart: presence for
-- anti-passback, consumed single-use passes and lane modes.
-- Rules are kept in their text forms (src/domain/text.rs), validated before they are written.

CREATE TABLE permits (
    id INTEGER PRIMARY KEY,
    category TEXT NOT NULL,
    holder_id INTEGER NOT NULL,
    holder_name TEXT NOT NULL,
    department TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    status_reason TEXT NOT NULL DEFAULT '',
    valid_from INTEGER NOT NULL,     -- UTC minutes since the epoch, inclusive
    valid_until INTEGER NOT NULL,    -- UTC minutes since the epoch, exclusive
    gates TEXT NOT NULL,
    schedule TEXT NOT NULL DEFAULT '',
    single_use INTEGER NOT NULL DEFAULT 0,
    max_inside INTEGER,
    version INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE vehicles (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,
    colour TEXT NOT NULL,
    -- The permits this vehicle holds, as comma-separated ids: loaded with the vehicle in one
    -- row, which keeps loading a million vehicles to one scan.
    permit_ids TEXT NOT NULL DEFAULT '',
    UNIQUE (plate, colour)
);

CREATE TABLE credentials (
    epc TEXT PRIMARY KEY,            -- upper-case hex
    tid TEXT,                        -- upper-case hex, when the tag is bound to its TID
    vehicle_id INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE blacklist (
    id INTEGER PRIMARY KEY,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('plate', 'tag', 'person')),
    subject TEXT NOT NULL,           -- plate text, EPC hex or person id
    colour TEXT,                     -- for plates: one colour, or NULL for any
    reason TEXT NOT NULL DEFAULT '',
    valid_from INTEGER NOT NULL,
    valid_until INTEGER NOT NULL,
    alarm TEXT NOT NULL DEFAULT 'guard'
);

CREATE TABLE locks (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,
    colour TEXT,
    reason TEXT NOT NULL DEFAULT '',
    valid_from INTEGER NOT NULL,
    valid_until INTEGER NOT NULL
);

CREATE TABLE bookings (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,
    colour TEXT,
    visitor_name TEXT NOT NULL DEFAULT '',
    host_id INTEGER NOT NULL DEFAULT 0,
    purpose TEXT NOT NULL DEFAULT '',
    slot_from INTEGER NOT NULL,
    slot_until INTEGER NOT NULL,
    status TEXT NOT NULL
);

-- Anti-passback: whether each vehicle is inside, since when, and where it last passed.
CREATE TABLE presence (
    vehicle_id INTEGER PRIMARY KEY,
    inside INTEGER NOT NULL,
    since_ms INTEGER NOT NULL,
    gate INTEGER NOT NULL
);

-- Single-use passes already used at this gate.
CREATE TABLE consumed (
    permit_id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL
);

-- Lane modes survive a restart (a lockdown must not end because the controller rebooted).
CREATE TABLE lane_modes (
    lane TEXT PRIMARY KEY,
    mode TEXT NOT NULL
);

CREATE TABLE store_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    data_version INTEGER NOT NULL
);
INSERT INTO store_state (id, data_version) VALUES (1, 0);
