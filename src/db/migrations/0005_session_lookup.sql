-- 0005: orders found by their payment session id (the dev checkout's link
-- carries only the session id, as Stripe's does). Unique: a session belongs
-- to one order.

CREATE UNIQUE INDEX orders_provider_session ON orders (provider_session_id)
    WHERE provider_session_id IS NOT NULL;
