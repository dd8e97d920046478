-- Alarms are not only the booth's button: the system raises them too (a journal that cannot
-- write, a fire input, an event conflict, a device lost). `kind` says which; the booth's button
-- is `manual`.
ALTER TABLE alarms ADD COLUMN kind TEXT NOT NULL DEFAULT 'manual';
