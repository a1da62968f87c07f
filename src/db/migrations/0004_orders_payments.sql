-- 0004: orders with snapshotted prices, idempotency keys, payments, verified
-- webhook events (each recorded once) and enrollments.

CREATE TABLE orders (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    status              TEXT NOT NULL CHECK (status IN
                            ('PENDING_PAYMENT', 'PAID', 'REFUNDED', 'CANCELLED', 'EXPIRED', 'FAILED')),
    amount              INTEGER NOT NULL CHECK (amount >= 0),
    currency            TEXT NOT NULL,
    payment_provider    TEXT NOT NULL,
    provider_session_id TEXT,
    checkout_url        TEXT,
    failure_reason      TEXT,
    expires_at          TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    paid_at             TEXT
) STRICT;

CREATE INDEX orders_user_id ON orders (user_id, created_at);
CREATE INDEX orders_status ON orders (status, expires_at);
CREATE INDEX orders_created ON orders (created_at);

-- Prices are copied in at draft time; later catalogue edits do not move them.
CREATE TABLE order_items (
    id          TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    offering_id TEXT NOT NULL,
    variant_id  TEXT NOT NULL,
    title       TEXT NOT NULL,
    unit_price  INTEGER NOT NULL CHECK (unit_price >= 0),
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 10),
    line_total  INTEGER NOT NULL CHECK (line_total >= 0)
) STRICT;

CREATE INDEX order_items_order ON order_items (order_id, position);
CREATE INDEX order_items_offering ON order_items (offering_id);

CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    order_id     TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT;

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Money that moved at the provider. order_id is not a foreign key: a payment
-- for an unknown order is still recorded, for reconciliation.
CREATE TABLE payments (
    id           TEXT PRIMARY KEY,
    order_id     TEXT,
    provider     TEXT NOT NULL,
    provider_ref TEXT NOT NULL,
    amount       INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('SUCCEEDED', 'REFUNDED')),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    UNIQUE (provider, provider_ref)
) STRICT;

CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_created ON payments (created_at);

-- Every verified webhook event, once; its effects commit in the same
-- transaction as this row.
CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    provider    TEXT NOT NULL,
    type        TEXT NOT NULL,
    order_id    TEXT,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    amount      INTEGER,
    currency    TEXT,
    created     INTEGER,
    received_at TEXT NOT NULL
) STRICT;

CREATE INDEX webhook_events_received ON webhook_events (received_at);
CREATE INDEX webhook_events_outcome ON webhook_events (outcome, received_at);

CREATE TABLE enrollments (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    offering_id TEXT NOT NULL,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    status      TEXT NOT NULL CHECK (status IN ('ACTIVE', 'REVOKED')),
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    UNIQUE (order_id, offering_id)
) STRICT;

CREATE INDEX enrollments_user ON enrollments (user_id, created_at);
