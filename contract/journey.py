"""A buyer's journey through a Python client generated from the committed
spec by openapi-python-client: every call goes through the generated
functions and every answer is read through the generated, typed models.

register -> login -> me -> list and search offerings -> offering detail ->
draft an order (and replay it with its Idempotency-Key) -> pay on the dev
provider's checkout page -> order PAID -> enrollment -> admin sees the
payment, the order and a clean reconciliation; typed problem documents for a
wrong password and a student asking for an admin view.

Usage: journey.py BASE_URL CLIENT_DIR   (CLIENT_DIR holds package wemaster_client)
"""

from __future__ import annotations

import re
import sys
import uuid
from http import HTTPStatus

import httpx

BASE = sys.argv[1].rstrip("/")
sys.path.insert(0, sys.argv[2])

from wemaster_client import AuthenticatedClient, Client  # noqa: E402
from wemaster_client.api.admin import get_reconciliation  # noqa: E402
from wemaster_client.api.auth import get_me, login, register  # noqa: E402
from wemaster_client.api.catalogue import get_offering, list_offerings  # noqa: E402
from wemaster_client.api.orders import (  # noqa: E402
    draft_order,
    get_order,
    list_my_enrollments,
    list_orders,
)
from wemaster_client.api.payments import list_payments  # noqa: E402
from wemaster_client.models import (  # noqa: E402
    AuthResponse,
    DraftItem,
    DraftItems,
    EnrollmentStatus,
    LoginRequest,
    Offering,
    OfferingStatus,
    OfferingType,
    Order,
    OrderStatus,
    PaymentStatus,
    Problem,
    Reconciliation,
    RegisterRequest,
    RegisterRole,
    Role,
    TokenType,
    User,
)

steps = 0


def step(text: str) -> None:
    global steps
    steps += 1
    print(f"  ok {steps:2}. {text}")


def ok(response, status: HTTPStatus, model: type):
    assert response.status_code == status, (
        f"expected {status.value}, got {response.status_code.value}: {response.content[:300]!r}"
    )
    parsed = response.parsed
    if model is list:
        assert isinstance(parsed, list), type(parsed)
    else:
        assert isinstance(parsed, model), f"expected {model.__name__}, got {type(parsed).__name__}"
    return parsed


api = Client(base_url=f"{BASE}/api/v1", raise_on_unexpected_status=True)

# -- register and sign in ----------------------------------------------------
email = f"journey-{uuid.uuid4().hex[:12]}@example.com"
password = "journey passphrase 1"
session = ok(
    register.sync_detailed(
        client=api,
        body=RegisterRequest(email=email, password=password, name="Journey Buyer", role=RegisterRole.STUDENT),
    ),
    HTTPStatus.CREATED,
    AuthResponse,
)
assert session.token_type is TokenType.BEARER
assert session.user.role is Role.STUDENT and session.user.email == email
assert session.expires_in > 0 and session.access_token and session.refresh_token
step(f"registered {email} as {session.user.role.value}")

session = ok(
    login.sync_detailed(client=api, body=LoginRequest(email=email.upper(), password=password)),
    HTTPStatus.OK,
    AuthResponse,
)
buyer = AuthenticatedClient(base_url=f"{BASE}/api/v1", token=session.access_token, raise_on_unexpected_status=True)
me = ok(get_me.sync_detailed(client=buyer), HTTPStatus.OK, User)
assert me.id == session.user.id and me.email == email and me.name == "Journey Buyer"
step("logged in (email compared case-insensitively) and read /auth/me")

wrong = login.sync_detailed(client=api, body=LoginRequest(email=email, password="not the password"))
problem = ok(wrong, HTTPStatus.UNAUTHORIZED, Problem)
assert problem.code == "AUTH_INVALID_CREDENTIALS" and problem.status == 401
step("a wrong password is a typed 401 problem AUTH_INVALID_CREDENTIALS")

# -- browse and search ---------------------------------------------------------
page = list_offerings.sync_detailed(client=api, limit=5)
offerings = ok(page, HTTPStatus.OK, list)
total = int(page.headers["x-total-count"])
assert 1 <= len(offerings) <= 5 and total >= 20, (len(offerings), total)
assert 'rel="next"' in page.headers["link"]
for o in offerings:
    assert isinstance(o, Offering) and o.status is OfferingStatus.PUBLISHED
    assert isinstance(o.type_, OfferingType) and o.variants, o.slug
    assert o.price_from.amount == min(v.price for v in o.variants)
step(f"listed offerings: {len(offerings)} of {total}, typed, each with variants and priceFrom")

found = ok(list_offerings.sync_detailed(client=api, q="python"), HTTPStatus.OK, list)
assert found, "search for python found nothing"
for o in found:
    text = " ".join([o.title, o.summary or "", *o.tags]).lower()
    assert "python" in text, o.title
step(f"searched q=python: {len(found)} hits, each mentioning python")

lessons = ok(
    list_offerings.sync_detailed(client=api, type_=OfferingType.ONE_ON_ONE, limit=100), HTTPStatus.OK, list
)
assert lessons and all(o.type_ is OfferingType.ONE_ON_ONE for o in lessons)
step(f"filtered type=ONE_ON_ONE: {len(lessons)} offerings")

chosen = found[0]
detail = ok(get_offering.sync_detailed(client=api, slug=chosen.slug), HTTPStatus.OK, Offering)
assert detail.id == chosen.id and detail.variants
variant = detail.variants[-1]
missing = get_offering.sync_detailed(client=api, slug="no-such-offering-anywhere")
assert ok(missing, HTTPStatus.NOT_FOUND, Problem).code == "NOT_FOUND"
step(f"read offering {detail.slug}; an unknown slug is a typed 404")

# -- order and pay ---------------------------------------------------------------
key = uuid.uuid4().hex
body = DraftItems(items=[DraftItem(offering_id=detail.id, variant_id=variant.id, quantity=2)])
order = ok(draft_order.sync_detailed(client=buyer, body=body, idempotency_key=key), HTTPStatus.CREATED, Order)
assert order.status is OrderStatus.PENDING_PAYMENT and order.order_id == order.id
assert order.user_id == me.id and order.payment_provider == "dev"
assert order.amount == 2 * variant.price and order.currency == variant.currency
[item] = order.items
assert (item.offering_id, item.variant_id, item.quantity) == (detail.id, variant.id, 2)
assert item.unit_price == variant.price and item.line_total == order.amount
assert isinstance(order.checkout_url, str) and "/checkout/dev/cs_dev_" in order.checkout_url
assert order.id not in order.checkout_url, "the checkout link is an unguessable session, not the order id"
step(f"drafted order {order.id}: 2 x {variant.price} {order.currency} = {order.amount}, PENDING_PAYMENT")

again = ok(draft_order.sync_detailed(client=buyer, body=body, idempotency_key=key), HTTPStatus.OK, Order)
assert again.id == order.id
step("the same Idempotency-Key and body give the same order (200)")

read = ok(get_order.sync_detailed(client=buyer, id=order.id), HTTPStatus.OK, Order)
assert read.id == order.id and read.status is OrderStatus.PENDING_PAYMENT

with httpx.Client(base_url=BASE, follow_redirects=False) as web:
    page = web.get(order.checkout_url)
    assert page.status_code == 200, page.status_code
    match = re.search(r'<form method="post" action="([^"]+/pay)">', page.text)
    assert match, "no Pay form on the checkout page"
    paid_answer = web.post(match.group(1), data={})
    assert paid_answer.status_code in (200, 303), paid_answer.status_code
step(f"paid on the dev checkout page (POST {match.group(1)} -> {paid_answer.status_code})")

paid = ok(get_order.sync_detailed(client=buyer, id=order.id), HTTPStatus.OK, Order)
assert paid.status is OrderStatus.PAID, paid.status
assert isinstance(paid.paid_at, str) and paid.paid_at
step(f"order is PAID at {paid.paid_at}")

enrollments = ok(list_my_enrollments.sync_detailed(client=buyer), HTTPStatus.OK, list)
mine = [e for e in enrollments if e.order_id == order.id]
assert len(mine) == 1, enrollments
assert mine[0].status is EnrollmentStatus.ACTIVE and mine[0].offering.id == detail.id
assert mine[0].offering.slug == detail.slug
step(f"enrolled in {mine[0].offering.title} (ACTIVE)")

denied = get_reconciliation.sync_detailed(client=buyer)
assert ok(denied, HTTPStatus.FORBIDDEN, Problem).code == "FORBIDDEN"
step("a student asking for reconciliation gets a typed 403")

# -- the admin side -----------------------------------------------------------------
admin_session = ok(
    login.sync_detailed(client=api, body=LoginRequest(email="admin@test.com", password="admin123")),
    HTTPStatus.OK,
    AuthResponse,
)
assert admin_session.user.role is Role.ADMIN
admin = AuthenticatedClient(base_url=f"{BASE}/api/v1", token=admin_session.access_token)

payments = ok(list_payments.sync_detailed(client=admin, order_id=order.id), HTTPStatus.OK, list)
assert len(payments) == 1, payments
[payment] = payments
assert payment.status is PaymentStatus.SUCCEEDED and payment.provider == "dev"
assert (payment.amount, payment.currency) == (order.amount, order.currency)
step(f"admin sees the payment {payment.provider_ref}: SUCCEEDED {payment.amount} {payment.currency}")

listed = ok(list_orders.sync_detailed(client=admin, status="PAID", q=order.id), HTTPStatus.OK, list)
assert [o.id for o in listed] == [order.id], [o.id for o in listed]
step("admin finds the order among PAID orders")

report = ok(get_reconciliation.sync_detailed(client=admin), HTTPStatus.OK, Reconciliation)
paid_totals = [t for t in report.totals if t.status is OrderStatus.PAID and t.currency == order.currency]
assert paid_totals and paid_totals[0].count >= 1 and paid_totals[0].amount >= order.amount, report.totals
issues = [
    *(p.id for p in report.paid_without_payment),
    *(i.payment.order_id for i in report.payments_without_order),
    *(e.order_id for e in report.amount_mismatches),
    *(e.order_id for e in report.unmatched_events),
]
assert order.id not in issues, issues
step(
    f"reconciliation {report.from_} .. {report.to}: PAID {paid_totals[0].currency} "
    f"count {paid_totals[0].count}, amount {paid_totals[0].amount}; the order is in no issue list"
)

print(f"journey: {steps} passed, 0 failed")
