-- Site settings an administrator changes at run time (issue 20): one row per setting, the value
-- as JSON text. A missing row means the default in `central::repo::settings::SiteSettings`;
-- every change is audited (action `update` on `site_settings`, before and after).
CREATE TABLE site_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
