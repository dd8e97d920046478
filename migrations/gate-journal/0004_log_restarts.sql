-- How many times the checkpoint loop has started the write-ahead log over (`Journal::checkpoint`).
-- The row is rewritten with a new count so that the restart writes a page: SQLite writes nothing
-- for an UPDATE that leaves a row as it was, and only a write starts the log over. Nothing reads
-- the count; it is there to be changed.
CREATE TABLE log_restarts (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL
);
INSERT INTO log_restarts (id, count) VALUES (1, 0);
