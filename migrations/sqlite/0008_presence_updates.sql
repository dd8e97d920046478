-- Presence rows change on every passage. The index on `inside` made each such update write a
-- second index entry; the two dashboard reads that filtered on it (occupancy, overstays) scan
-- a table of one row per vehicle in milliseconds. (PostgreSQL also leaves room in each page
-- for updates in place; SQLite has no such setting.)
DROP INDEX stats_presence_inside;
