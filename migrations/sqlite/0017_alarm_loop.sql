-- Alarms that close the loop (issue 20, item 4).
--
-- An acknowledgement records what the office did (`ack_action`: dispatched, phoned,
-- false_alarm, other; `ack_note`: its words), next to who (`acknowledged_by`) and when
-- (`acknowledged_ms`). A guard may withdraw a false alarm within the site setting
-- `alarm_withdraw_s`: who and when are kept, and a withdrawn alarm is no longer open.
ALTER TABLE alarms ADD COLUMN ack_action TEXT NOT NULL DEFAULT '';
ALTER TABLE alarms ADD COLUMN ack_note TEXT NOT NULL DEFAULT '';
ALTER TABLE alarms ADD COLUMN withdrawn_by INTEGER REFERENCES operators (id);
ALTER TABLE alarms ADD COLUMN withdrawn_ms INTEGER;
-- The alarms a guard raised, newest first (the booth's alarm status).
CREATE INDEX alarms_raised_by ON alarms (raised_by, raised_ms);
