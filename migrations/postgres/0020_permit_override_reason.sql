-- One live pass per vehicle and kind (issue 20): a permit issued although the vehicle already
-- held a live pass of the same kind (period pass or one-off exit pass) keeps the reason the
-- office gave for the second one. Empty for every ordinary permit. The reason is also in the
-- permit's `create` audit entry.
ALTER TABLE permits ADD COLUMN override_reason TEXT NOT NULL DEFAULT '';
