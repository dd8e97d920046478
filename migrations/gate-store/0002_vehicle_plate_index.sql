-- A vehicle's plate and colour stay unique, but through a named index instead of a table
-- constraint: a full snapshot from the centre drops the index, writes the million vehicles and
-- builds it again in one sort (`Store::replace_all`), instead of a million inserts at random
-- places in it (plates arrive in id order). Same table otherwise.

CREATE TABLE vehicles_new (
    id INTEGER PRIMARY KEY,
    plate TEXT NOT NULL,
    colour TEXT NOT NULL,
    -- The permits this vehicle holds, as comma-separated ids: loaded with the vehicle in one
    -- row, which keeps loading a million vehicles to one scan.
    permit_ids TEXT NOT NULL DEFAULT ''
);
INSERT INTO vehicles_new (id, plate, colour, permit_ids)
    SELECT id, plate, colour, permit_ids FROM vehicles;
DROP TABLE vehicles;
ALTER TABLE vehicles_new RENAME TO vehicles;
CREATE UNIQUE INDEX vehicles_plate ON vehicles (plate, colour);
