-- Presence rows change on every passage. The index on `inside` made each such update write a
-- second index entry and ruled out PostgreSQL's heap-only (HOT) updates, which rewrite no index
-- at all; the two dashboard reads that filtered on it (occupancy, overstays) scan a table of
-- one row per vehicle in milliseconds. Room left free in each page lets an update stay on its
-- page, which a HOT update needs.
DROP INDEX stats_presence_inside;
ALTER TABLE stats_presence SET (fillfactor = 80);
ALTER TABLE vehicle_presence SET (fillfactor = 80);
