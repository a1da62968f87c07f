-- 0006: refunds that arrive before their payment (Stripe does not promise
-- to deliver events in order), and how much of a payment went back.

-- A refund event for an order whose payment has not been recorded yet; it is
-- applied when the payment arrives (`applied_at` set then).
CREATE TABLE early_refunds (
    event_id     TEXT PRIMARY KEY,
    order_id     TEXT,
    provider_ref TEXT,
    amount       INTEGER,
    currency     TEXT,
    full         INTEGER NOT NULL CHECK (full IN (0, 1)),
    received_at  TEXT NOT NULL,
    applied_at   TEXT
) STRICT;

CREATE INDEX early_refunds_order ON early_refunds (order_id) WHERE applied_at IS NULL;
CREATE INDEX early_refunds_ref ON early_refunds (provider_ref) WHERE applied_at IS NULL;

-- Minor units refunded so far: the whole amount for a full refund, less for
-- a partial one (the payment's status stays SUCCEEDED then).
ALTER TABLE payments ADD COLUMN refunded_amount INTEGER NOT NULL DEFAULT 0;
