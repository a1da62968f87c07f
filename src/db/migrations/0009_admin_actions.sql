-- 0009: what admins do to money and accounts, recorded; suspended accounts.

-- One row per admin action: who (the acting account), what (an action
-- name and its target), when, from which address, and the particulars as
-- JSON. Never updated or deleted by the server.
CREATE TABLE audit_log (
    id       TEXT PRIMARY KEY,
    at       TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    address  TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    detail   TEXT NOT NULL
) STRICT;

CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target, at);

-- A suspended account cannot sign in and its sessions have ended.
ALTER TABLE users ADD COLUMN suspended_at TEXT;
