-- 0008: seats. A variant with a capacity sells at most that many. Every
-- variant counts the seats of its paid orders and of its pending orders'
-- holds (seats_taken); the draft that would take it past its capacity is
-- refused.
ALTER TABLE variants ADD COLUMN seats_taken INTEGER NOT NULL DEFAULT 0;

-- The seats a pending order holds, per variant: deleted when the order is
-- paid (its seats stay taken), cancelled, fails or expires (they return).
CREATE TABLE seat_holds (
    order_id   TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    variant_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    expires_at TEXT NOT NULL,
    PRIMARY KEY (order_id, variant_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX seat_holds_holder ON seat_holds (user_id, variant_id);
CREATE INDEX seat_holds_variant_expiry ON seat_holds (variant_id, expires_at);
CREATE INDEX seat_holds_expiry ON seat_holds (expires_at);

-- Orders drafted before seats were counted: holds for the pending ones, and
-- their seats and the paid ones' counted.
INSERT INTO seat_holds (order_id, variant_id, user_id, quantity, expires_at)
SELECT i.order_id, i.variant_id, o.user_id, SUM(i.quantity), o.expires_at
FROM order_items i JOIN orders o ON o.id = i.order_id
WHERE o.status = 'PENDING_PAYMENT'
GROUP BY i.order_id, i.variant_id;

UPDATE variants SET seats_taken = (
    SELECT COALESCE(SUM(i.quantity), 0)
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE i.variant_id = variants.id AND o.status IN ('PENDING_PAYMENT', 'PAID')
);
