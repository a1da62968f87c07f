-- 0001: what the demo data needs: accounts, offerings and their variants.
-- Times are RFC 3339 UTC strings with milliseconds, so they sort as text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    name          TEXT,
    role          TEXT NOT NULL CHECK (role IN ('STUDENT', 'TUTOR', 'ADMIN')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

-- Emails are unique whatever their case.
CREATE UNIQUE INDEX users_email_nocase ON users (email COLLATE NOCASE);
CREATE INDEX users_role ON users (role, created_at);

CREATE TABLE offerings (
    id           TEXT PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    tutor_id     TEXT NOT NULL REFERENCES users (id),
    type         TEXT NOT NULL CHECK (type IN ('RECORDED', 'ONE_ON_ONE', 'GROUP', 'TRIAL')),
    title        TEXT NOT NULL,
    summary      TEXT,
    description  TEXT,
    thumbnail    TEXT,
    category     TEXT,
    level        TEXT,
    language     TEXT,
    status       TEXT NOT NULL CHECK (status IN ('DRAFT', 'PUBLISHED', 'ARCHIVED')),
    -- Lowest variant price, kept in step with the variants for sorting.
    price_from   INTEGER NOT NULL CHECK (price_from >= 0),
    currency     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    published_at TEXT
) STRICT;

CREATE INDEX offerings_status ON offerings (status, created_at);
CREATE INDEX offerings_status_price ON offerings (status, price_from);
CREATE INDEX offerings_tutor ON offerings (tutor_id, status);
CREATE INDEX offerings_category ON offerings (category, status);

CREATE TABLE offering_tags (
    offering_id TEXT NOT NULL REFERENCES offerings (id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    position    INTEGER NOT NULL,
    PRIMARY KEY (offering_id, tag)
) STRICT, WITHOUT ROWID;

CREATE INDEX offering_tags_tag ON offering_tags (tag, offering_id);

CREATE TABLE variants (
    id               TEXT PRIMARY KEY,
    offering_id      TEXT NOT NULL REFERENCES offerings (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL,
    price            INTEGER NOT NULL CHECK (price >= 0),
    currency         TEXT NOT NULL,
    duration_minutes INTEGER,
    sessions         INTEGER,
    capacity         INTEGER,
    is_default       INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
) STRICT;

CREATE INDEX variants_offering ON variants (offering_id, position);
-- At most one default variant per offering.
CREATE UNIQUE INDEX variants_one_default ON variants (offering_id) WHERE is_default = 1;
