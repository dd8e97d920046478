-- The booth's paperwork (issue 20, item 7).
--
-- A handover note may name the duty it closes: the next shift opens that duty's shift report
-- (交班报表) from the note. Signing off without a note leaves an empty note naming the duty.
ALTER TABLE handover_notes ADD COLUMN duty_id INTEGER REFERENCES duty_records (id);
CREATE INDEX handover_notes_duty ON handover_notes (duty_id);

-- Numbered counters: the next value of each sequence the site hands out (`slip:2026`: the
-- visitor slips of 2026). Incremented in the transaction that uses the value, so a value is
-- never handed out twice and never reused.
CREATE TABLE serial_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

-- A visitor's temporary pass slip (临时通行单): its serial number, given when it is first
-- printed and kept for every later print of the same visit.
CREATE TABLE visit_slips (
    visit_id INTEGER PRIMARY KEY REFERENCES visits (id),
    year INTEGER NOT NULL,
    serial INTEGER NOT NULL,
    issued_ms INTEGER NOT NULL,
    issued_by INTEGER REFERENCES operators (id),
    UNIQUE (year, serial)
);
