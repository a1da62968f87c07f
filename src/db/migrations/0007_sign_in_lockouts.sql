-- 0007: sign-in lockouts that survive a restart, and the addresses an
-- account has signed in from ("smart lockout": failures from addresses the
-- owner never used cannot lock the owner out of the ones they use).

-- Consecutive failed sign-ins of one account (its normalised email, whether
-- or not an account has it, so nothing tells them apart) from one client
-- address, or from all addresses unfamiliar to the account (scope '*').
CREATE TABLE login_failures (
    account         TEXT NOT NULL,
    scope           TEXT NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure_at TEXT NOT NULL,
    locked_until    TEXT,
    PRIMARY KEY (account, scope)
) STRICT, WITHOUT ROWID;

CREATE INDEX login_failures_last ON login_failures (last_failure_at);

-- Client addresses (IPv4, or the /64 of an IPv6 address) an account signed
-- in from with its password.
CREATE TABLE familiar_addresses (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address      TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (user_id, address)
) STRICT, WITHOUT ROWID;
