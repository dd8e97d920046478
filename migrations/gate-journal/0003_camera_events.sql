-- Plate camera reads the gate has received, by the camera's own event id: a camera that re-sends a
-- push (it timed out waiting for our answer, or it always sends twice) is answered without the
-- lane acting again, across a restart too.
--
-- A row is written in the same transaction as the first event that carries the read (its
-- decision, or its `plate_ignored` record), and `seq` names that event. A read that came before
-- its vehicle (the camera reads the plate before the vehicle reaches the presence loop) has a row
-- with `waiting` set (the read as JSON, a `PlateReadRecord`) and no `seq` until the lane acts on it
-- or gives up on it; a gate that restarts journals the reads still waiting as ignored
-- (`gate_restarted`). Rows whose event is pruned are pruned with it.
CREATE TABLE camera_events (
    camera TEXT NOT NULL,
    event_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    -- When the gate received the read: UTC milliseconds since the Unix epoch.
    at_ms INTEGER NOT NULL,
    -- The event that carries the read; NULL while it waits for its vehicle.
    seq INTEGER,
    -- The read while it waits for its vehicle (JSON); NULL once an event carries it.
    waiting TEXT,
    PRIMARY KEY (camera, event_id)
);
CREATE INDEX camera_events_by_seq ON camera_events (seq);
