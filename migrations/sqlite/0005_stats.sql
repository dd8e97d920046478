-- Traffic statistics, kept incrementally by the event ingest (src/central/stats.rs) in the same
-- transaction as the events they count, and exit-pass applications (src/central/repo/applications.rs).
-- (The sqlite and postgres files are the same but for types.)
-- Days and hours are the site's (Asia/Shanghai): `day` is its calendar date 'YYYY-MM-DD',
-- `hour` its hour 0-23; `hour_ms` is the UTC instant the site's hour starts.

-- Passages per hour × gate × direction × vehicle category.
CREATE TABLE stats_flows (
    hour_ms INTEGER NOT NULL,
    day TEXT NOT NULL,
    hour INTEGER NOT NULL,
    gate_id INTEGER NOT NULL,
    direction TEXT NOT NULL,               -- entry, exit
    category TEXT NOT NULL,                -- the permit category, visitor, or unregistered
    passages INTEGER NOT NULL,
    PRIMARY KEY (hour_ms, gate_id, direction, category)
);
CREATE INDEX stats_flows_day ON stats_flows (day);

-- Where each known vehicle is, by its latest passage (by the gate's clock, so events that
-- arrive late or out of order still leave the right answer).
CREATE TABLE stats_presence (
    vehicle_key TEXT PRIMARY KEY,          -- v:<vehicle id> or p:<plate>
    plate TEXT,
    category TEXT NOT NULL,
    inside INTEGER NOT NULL,               -- 1 after an entry, 0 after an exit
    last_ms INTEGER NOT NULL,              -- the latest passage applied
    entered_ms INTEGER,                    -- the entry that put it inside
    gate_id INTEGER NOT NULL,
    expected_leave_ms INTEGER,             -- visitors: when the booking's slot (or pass) ends
    booking_id INTEGER
);
CREATE INDEX stats_presence_inside ON stats_presence (inside, category);

-- Distinct visitor vehicles that entered on a day.
CREATE TABLE stats_visitor_days (
    day TEXT NOT NULL,
    vehicle_key TEXT NOT NULL,
    PRIMARY KEY (day, vehicle_key)
);

-- Denied decisions per day × gate × reason code.
CREATE TABLE stats_denials (
    day TEXT NOT NULL,
    gate_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    denials INTEGER NOT NULL,
    PRIMARY KEY (day, gate_id, reason)
);

-- Guard overrides (manual barrier lifts) per day × gate × guard × reason code.
CREATE TABLE stats_overrides (
    day TEXT NOT NULL,
    gate_id INTEGER NOT NULL,
    operator TEXT NOT NULL,
    reason TEXT NOT NULL,
    opens INTEGER NOT NULL,
    PRIMARY KEY (day, gate_id, operator, reason)
);

-- Exit-pass applications (出门证申请): applied → approved/rejected by the department → issued
-- by the security office as a permit.
CREATE TABLE exit_pass_applications (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                    -- permit, one_off
    applicant_id INTEGER NOT NULL REFERENCES persons (id),
    department TEXT NOT NULL,              -- the applicant's department when applying
    vehicle_id INTEGER NOT NULL REFERENCES vehicles (id),
    category TEXT NOT NULL,
    gates TEXT NOT NULL,
    valid_from_ms INTEGER NOT NULL,
    valid_until_ms INTEGER NOT NULL,
    purpose TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending', -- pending, approved, rejected, issued, cancelled
    applied_by TEXT NOT NULL,
    decided_by TEXT,
    decided_ms INTEGER,
    decision_comment TEXT NOT NULL DEFAULT '',
    issued_by TEXT,
    issued_ms INTEGER,
    permit_id INTEGER REFERENCES permits (id),
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX exit_pass_applications_status ON exit_pass_applications (status, department);
CREATE INDEX exit_pass_applications_applicant ON exit_pass_applications (applicant_id);
