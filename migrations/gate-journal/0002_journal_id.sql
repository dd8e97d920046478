-- The journal's identity, created with it: a random 128-bit id (32 hex digits). The centre keys
-- a gate's events by (gate, journal id, sequence number), so a journal that starts again from 1
-- (journal.db replaced, or lost and created afresh) never has its events taken for ones the
-- centre already holds.
--
-- `from_legacy` is 1 when the journal existed before journals had ids (this migration gave it
-- its id, and it already held or had delivered events): the centre then knows its sequence
-- numbers continue the ones it stored for the gate without a journal id.
CREATE TABLE journal_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    journal_id TEXT NOT NULL,
    from_legacy INTEGER NOT NULL
);
INSERT INTO journal_identity (id, journal_id, from_legacy)
SELECT 1, lower(hex(randomblob(16))),
       CASE WHEN EXISTS (SELECT 1 FROM events) OR acked_seq > 0 THEN 1 ELSE 0 END
FROM journal_state WHERE id = 1;
