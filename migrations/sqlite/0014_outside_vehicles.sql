-- Outside vehicles (issue 19): every passage of a vehicle with no permit is an outside-vehicle
-- visit, built by the event ingest (src/central/outside.rs) in the same transaction as the
-- passage: plate, colour and photos of the camera read it was identified by, the gate, lane and
-- time it came in and went out, and the booth registration (or booking) it came on. An exit is
-- matched to the open visit of the same plate; an exit with none seen makes a visit with only
-- its out side. (The sqlite and postgres files are the same but for types.)
CREATE TABLE outside_vehicle_visits (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,                   -- normalised (src/domain/plate.rs)
    colour TEXT,                           -- the camera's plate colour code, if any
    province TEXT NOT NULL,                -- the plate's first character (京, 沪, …) or ''
    day TEXT NOT NULL,                     -- the site's date of the entry (else of the exit)
    gate_in BIGINT,
    lane_in TEXT,
    journal_in BIGINT,
    seq_in BIGINT,                         -- the entry passage event
    read_seq_in BIGINT,                    -- the camera read / decision it was identified by
    at_in_ms BIGINT,
    gate_out BIGINT,
    lane_out TEXT,
    journal_out BIGINT,
    seq_out BIGINT,
    read_seq_out BIGINT,
    at_out_ms BIGINT,
    visit_id BIGINT,                       -- the booth registration (visits.id) it came on
    booking_id BIGINT,                     -- the booking it came on
    visitor BIGINT NOT NULL DEFAULT 0,     -- 1: booth-registered or booked
    expected_leave_ms BIGINT,              -- the booking's slot end or the visit's departure
    photos TEXT NOT NULL DEFAULT '[]'      -- JSON [{"sha256","kind"}] of the reads in and out
);
CREATE UNIQUE INDEX outside_vehicle_visits_in ON outside_vehicle_visits (gate_in, journal_in, seq_in);
CREATE UNIQUE INDEX outside_vehicle_visits_out ON outside_vehicle_visits (gate_out, journal_out, seq_out);
CREATE INDEX outside_vehicle_visits_plate ON outside_vehicle_visits (plate, at_in_ms);
CREATE INDEX outside_vehicle_visits_day ON outside_vehicle_visits (day);
CREATE INDEX outside_vehicle_visits_visit ON outside_vehicle_visits (visit_id);

-- The ingest reads the booth registrations near an upload's entries by arrival time.
CREATE INDEX visits_arrived ON visits (arrived_ms);
