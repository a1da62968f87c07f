//! Drafting an order: validate the items, snapshot prices, create the order
//! and open its payment session, honouring `Idempotency-Key`.

use std::time::Duration;

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::lifecycle::{OrderTx, Transition};
use super::model::{DraftItem, NewItem, Order, OrderStatus};
use super::repo::{self, NewOrder};
use crate::auth::Principal;
use crate::cache::ResponseCache;
use crate::catalogue::model::OfferingStatus;
use crate::catalogue::repo as catalogue;
use crate::clock::Clock;
use crate::config::{OrdersConfig, PaymentProvider};
use crate::error::Error;
use crate::payments::provider::CheckoutSession;
use crate::state::AppState;

/// Most items one order may hold.
pub const MAX_ITEMS: usize = 20;

/// How a draft request ended.
pub enum Drafted {
    /// A new order (201).
    Created(Order),
    /// The order an earlier request with the same Idempotency-Key made (200).
    Replayed(Order),
}

/// A checked item: offering, optional variant, quantity.
struct Wanted {
    offering_id: String,
    variant_id: Option<String>,
    quantity: i64,
}

fn check_items(items: Vec<DraftItem>) -> Result<Vec<Wanted>, Error> {
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(Error::validation(
            "items",
            format!("an order holds 1 to {MAX_ITEMS} items"),
        ));
    }
    let mut wanted: Vec<Wanted> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let quantity = item.quantity.unwrap_or(1);
        if !(1..=10).contains(&quantity) {
            return Err(Error::validation(
                format!("items[{i}].quantity"),
                "quantity must be between 1 and 10",
            ));
        }
        let offering_id = item.offering_id.trim().to_string();
        if offering_id.is_empty() {
            return Err(Error::validation(
                format!("items[{i}].offeringId"),
                "offeringId is required",
            ));
        }
        let variant_id = item
            .variant_id
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if wanted
            .iter()
            .any(|w| w.offering_id == offering_id && w.variant_id == variant_id)
        {
            return Err(Error::validation(
                format!("items[{i}]"),
                "the same offering and variant appear twice; raise the quantity instead",
            ));
        }
        wanted.push(Wanted {
            offering_id,
            variant_id,
            quantity,
        });
    }
    Ok(wanted)
}

/// What identifies a request for Idempotency-Key comparison.
fn request_hash(wanted: &[Wanted]) -> String {
    let mut hasher = Sha256::new();
    for w in wanted {
        hasher.update(w.offering_id.as_bytes());
        hasher.update(b"\x1f");
        hasher.update(w.variant_id.as_deref().unwrap_or("*").as_bytes());
        hasher.update(b"\x1f");
        hasher.update(w.quantity.to_string().as_bytes());
        hasher.update(b"\x1e");
    }
    hex::encode(hasher.finalize())
}

fn check_key(key: Option<String>) -> Result<Option<String>, Error> {
    let Some(key) = key else { return Ok(None) };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::validation(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key))
}

/// Prices the wanted items against the catalogue, inside the transaction.
fn price(tx: &rusqlite::Transaction<'_>, wanted: &[Wanted]) -> Result<Vec<NewItem>, Error> {
    let mut items = Vec::with_capacity(wanted.len());
    for (i, w) in wanted.iter().enumerate() {
        let offering = catalogue::by_id(tx, &w.offering_id)?.ok_or_else(|| {
            Error::not_found("no such offering").with_field(format!("items[{i}].offeringId"))
        })?;
        if offering.status != OfferingStatus::Published {
            return Err(Error::conflict(
                "OFFERING_UNAVAILABLE",
                format!("offering {} is not on sale", offering.slug),
            )
            .with_field(format!("items[{i}].offeringId")));
        }
        let variant = match &w.variant_id {
            Some(id) => offering
                .variants
                .iter()
                .find(|v| &v.id == id)
                .ok_or_else(|| {
                    Error::not_found("no such variant of this offering")
                        .with_field(format!("items[{i}].variantId"))
                })?,
            None => offering
                .variants
                .iter()
                .find(|v| v.is_default)
                .or(offering.variants.first())
                .ok_or_else(|| {
                    Error::conflict("OFFERING_UNAVAILABLE", "the offering has no variants")
                })?,
        };
        items.push(NewItem {
            offering_id: offering.id.clone(),
            variant_id: variant.id.clone(),
            title: format!("{} - {}", offering.title, variant.name),
            unit_price: variant.price,
            quantity: w.quantity,
            currency: variant.currency.clone(),
        });
    }
    if items.iter().any(|i| i.currency != items[0].currency) {
        return Err(Error::unprocessable(
            "MIXED_CURRENCIES",
            "all items of an order must be priced in one currency",
        )
        .with_field("items"));
    }
    Ok(items)
}

/// One draft request, checked, and what its transaction needs.
struct Request {
    wanted: Vec<Wanted>,
    key: Option<String>,
    hash: String,
    user_id: String,
}

/// Drafts an order for `principal`.
pub async fn draft(
    state: &AppState,
    principal: &Principal,
    items: Vec<DraftItem>,
    idempotency_key: Option<String>,
) -> Result<Drafted, Error> {
    let wanted = check_items(items)?;
    let request = Request {
        key: check_key(idempotency_key)?,
        hash: request_hash(&wanted),
        wanted,
        user_id: principal.user_id.clone(),
    };
    let (key, user_id) = (request.key.clone(), request.user_id.clone());
    let fresh = NewDraft {
        id: crate::ids::new_id(),
        provider: state.payments.kind(),
        session: state.payments.local_session(),
        cfg: state.config.orders.clone(),
        clock: state.clock.clone(),
        cache: state.cache.clone(),
    };
    let (drafted, replaced) = state
        .db
        .write(move |conn| write_draft(conn, &request, &fresh))
        .await?;
    // The buyer's earlier orders this one replaced: their sessions close,
    // as a cancel's do.
    for session in replaced {
        state.payments.expire_session(&session).await;
    }
    match drafted {
        Drafted::Created(order) if order.checkout_url.is_none() => {
            open_session(state, order, key, user_id).await
        }
        done => Ok(done),
    }
}

/// What a new order is made with besides the request.
struct NewDraft {
    id: String,
    provider: PaymentProvider,
    /// A session this binary serves itself, known before the order.
    session: Option<CheckoutSession>,
    cfg: OrdersConfig,
    clock: Clock,
    cache: ResponseCache,
}

/// The draft's transaction: the order an earlier request with the same key
/// made, or a new order with its prices, its seats, its session if local,
/// and its key; and the sessions of the buyer's orders it replaced.
fn write_draft(
    conn: &mut Connection,
    r: &Request,
    new: &NewDraft,
) -> Result<(Drafted, Vec<String>), Error> {
    let mut tx = OrderTx::begin(conn, &new.cache)?;
    let now = new.clock.stamp();
    if let Some(key) = &r.key
        && let Some(replayed) = replay(&tx, r, key, &now)?
    {
        return Ok((replayed, Vec::new()));
    }
    if new.cfg.require_verified_email && !repo::email_verified(&tx, &r.user_id)? {
        return Err(Error::forbidden_code(
            "EMAIL_NOT_VERIFIED",
            "verify your email address before buying: open the link mailed at sign-up, or ask for a new one (POST /api/v1/auth/resend-verification)",
        ));
    }
    let items = price(&tx, &r.wanted)?;
    let amount = items
        .iter()
        .try_fold(0i64, |sum, i| {
            sum.checked_add(i.unit_price.checked_mul(i.quantity)?)
        })
        .ok_or_else(|| Error::validation("items", "the order total is too large"))?;
    let ttl = Duration::from_secs(new.cfg.pending_ttl_seconds);
    let replaced = tx.open(&NewOrder {
        id: &new.id,
        user_id: &r.user_id,
        amount,
        currency: &items[0].currency,
        provider: new.provider,
        items: &items,
        now: &now,
        expires_at: &new.clock.stamp_in(ttl),
    })?;
    if let Some(session) = &new.session {
        repo::set_session(&tx, &new.id, &session.id, &session.url, &now)?;
    }
    if let Some(key) = &r.key {
        let key_ttl = Duration::from_secs(new.cfg.idempotency_ttl_seconds);
        let key_expiry = new.clock.stamp_in(key_ttl);
        repo::remember_idempotency_key(&tx, &r.user_id, key, &r.hash, &new.id, &now, &key_expiry)?;
    }
    let order = repo::order_by_id(&tx, &new.id, &now)?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("new order vanished")))?;
    tx.commit()?;
    Ok((Drafted::Created(order), replaced))
}

/// The order an earlier request with `key` made, if there was one and it
/// asked for the same; a key reused for another request is refused.
fn replay(tx: &Connection, r: &Request, key: &str, now: &str) -> Result<Option<Drafted>, Error> {
    let Some((earlier_hash, earlier_order)) = repo::idempotency_key(tx, &r.user_id, key, now)?
    else {
        return Ok(None);
    };
    if earlier_hash != r.hash {
        return Err(Error::unprocessable(
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with a different request",
        )
        .with_field("Idempotency-Key"));
    }
    let order = repo::order_by_id(tx, &earlier_order, now)?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("keyed order vanished")))?;
    if order.checkout_url.is_none() && order.status == OrderStatus::PendingPayment {
        return Err(Error::conflict(
            "IDEMPOTENCY_KEY_IN_USE",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        ));
    }
    Ok(Some(Drafted::Replayed(order)))
}

/// For a provider that needs the network: the order exists, open its
/// session. If that fails there is no half-made order: it is FAILED, and
/// the key is free again so a retry with it can succeed.
async fn open_session(
    state: &AppState,
    order: Order,
    key: Option<String>,
    user_id: String,
) -> Result<Drafted, Error> {
    let id = order.id.clone();
    let cache = state.cache.clone();
    let opened = state.payments.open_session(&order).await;
    let now = state.clock.stamp();
    match opened {
        Ok(session) => {
            let order = state
                .db
                .write(move |conn| {
                    repo::set_session(conn, &id, &session.id, &session.url, &now)?;
                    repo::order_by_id(conn, &id, &now)?
                        .ok_or_else(|| Error::internal(anyhow::anyhow!("order vanished")))
                })
                .await?;
            Ok(Drafted::Created(order))
        }
        Err(e) => {
            let reason = e.detail().to_string();
            state
                .db
                .write(move |conn| {
                    let mut tx = OrderTx::begin(conn, &cache)?;
                    if let Some(order) = repo::order_by_id(&tx, &id, &now)? {
                        let fail = Transition::Fail {
                            reason: Some(&reason),
                        };
                        tx.apply(&order, fail, &now)?;
                    }
                    if let Some(key) = &key {
                        repo::forget_idempotency_key(&tx, &user_id, key)?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await?;
            Err(e)
        }
    }
}
