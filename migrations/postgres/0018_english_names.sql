-- English names for gates and lanes (issue 20): the English pages show `name_en` when one is
-- given, the Chinese `name` otherwise. The gates never see either (their settings carry no
-- names), so the sync to the gate controllers is unchanged.
ALTER TABLE gates ADD COLUMN name_en TEXT NOT NULL DEFAULT '';
ALTER TABLE lanes ADD COLUMN name_en TEXT NOT NULL DEFAULT '';
