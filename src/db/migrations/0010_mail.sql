-- 0010: mail that reaches people: a durable queue in place of the outbox,
-- verified email addresses and each account's language.

-- One row per message, inserted in the same transaction as its cause (a
-- reset token, a payment, a refund), so a message exists exactly when its
-- cause does. `data` holds what the templates render; `subject` and `body`
-- (the plain text) are filled in when the message is rendered for sending
-- or keeping. Status: QUEUED (waiting, perhaps to be tried again at
-- `next_attempt_at`), SENT, DEAD (given up; `last_error` says why; an admin
-- may send it again) or KEPT (the `outbox` transport: shown, never sent).
CREATE TABLE mail (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    locale          TEXT NOT NULL,
    data            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    subject         TEXT,
    body            TEXT,
    created_at      TEXT NOT NULL,
    -- When it last entered the queue: at creation, or an admin's re-send.
    queued_at       TEXT NOT NULL,
    sent_at         TEXT
) STRICT;

CREATE INDEX mail_due ON mail (status, next_attempt_at);
CREATE INDEX mail_unsent ON mail (status, queued_at);
CREATE INDEX mail_created ON mail (created_at);
CREATE INDEX mail_recipient ON mail (recipient, kind, created_at);

INSERT INTO mail (id, kind, recipient, locale, data, status, next_attempt_at,
                  subject, body, created_at, queued_at, sent_at)
SELECT id, kind, recipient, 'en', '{}', 'KEPT', created_at,
       subject, body, created_at, created_at, sent_at
FROM outbox;

DROP TABLE outbox;

-- When the account's owner proved the address is theirs. Accounts made
-- before verification existed keep working as they did: verified.
ALTER TABLE users ADD COLUMN email_verified_at TEXT;
UPDATE users SET email_verified_at = created_at;

-- The language mail to the account is written in: `en` or `zh-CN`.
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';

-- Email verification tokens: only their SHA-256 is kept; one use each.
CREATE TABLE email_verifications (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;

CREATE INDEX email_verifications_user ON email_verifications (user_id);
