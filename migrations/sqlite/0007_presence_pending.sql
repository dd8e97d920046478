-- Campus-wide presence an event upload changed and no change-log entry announces yet. An
-- upload adds one row (the vehicles it changed, comma-separated) in its own transaction instead
-- of writing the change log, whose ordering lock would serialise every upload's commit; the
-- presence publisher turns what is pending into one change-log entry right after (and at start,
-- for what a crash left here).
CREATE TABLE presence_pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    vehicles TEXT NOT NULL
);
