//! HTTP side of admin views and actions.

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{Object, OpenApi};
use serde_json::json;

use super::audit::{self, Action, AuditEntry};
use super::model::Reconciliation;
use super::repo;
use crate::auth::model::{Principal, Role, User};
use crate::auth::{BearerAuth, Caller, repo as auth_repo};
use crate::error::declared::*;
use crate::error::{ApiResult, Error};
use crate::mail::model::{MailStatus, OutboxMessage};
use crate::mail::queue as mail_queue;
use crate::orders::model::Order;
use crate::paging::{Page, Paged, time_bound};
use crate::state::AppState;
use crate::tags::ApiTags;

pub struct AdminApi;

/// How much of a paid order to send back.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase", example)]
pub struct RefundRequest {
    /// Minor units; absent: all that is left of the payment.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000000000")))]
    pub amount: Option<i64>,
}

/// An account's new role.
#[derive(Debug, Object)]
#[oai(example)]
pub struct RoleRequest {
    pub role: Role,
}

impl Example for RefundRequest {
    fn example() -> Self {
        RefundRequest { amount: Some(1500) }
    }
}

impl Example for RoleRequest {
    fn example() -> Self {
        RoleRequest { role: Role::Tutor }
    }
}

/// What an admin does to an account.
#[derive(Debug, Clone, Copy)]
enum AccountChange {
    Role(Role),
    Suspend,
    Reinstate,
}

impl AccountChange {
    fn action(self) -> &'static str {
        match self {
            AccountChange::Role(_) => "user.role",
            AccountChange::Suspend => "user.suspend",
            AccountChange::Reinstate => "user.reinstate",
        }
    }
}

/// Applies `change` to account `user_id` with its audit record, in one
/// transaction; then the account's sessions are looked up afresh (a new
/// role applies at once; a suspended account's sessions have ended).
async fn change_account(
    state: &AppState,
    admin: Principal,
    address: String,
    user_id: String,
    change: AccountChange,
) -> Result<User, Error> {
    admin.require_role(&[Role::Admin])?;
    if admin.user_id == user_id {
        return Err(Error::conflict(
            "CANNOT_CHANGE_OWN_ACCOUNT",
            "an admin cannot change their own role or suspend themselves; ask another admin",
        ));
    }
    let clock = state.clock.clone();
    let id = user_id.clone();
    let user = state
        .db
        .write(move |conn| {
            let tx = conn.transaction()?;
            let now = clock.stamp();
            let before = auth_repo::user_by_id(&tx, &id)?
                .ok_or_else(|| Error::not_found("no such account"))?;
            let detail = match change {
                AccountChange::Role(role) => {
                    auth_repo::set_role(&tx, &id, role, &now)?;
                    json!({"from": before.role.as_str(), "to": role.as_str()})
                }
                AccountChange::Suspend => {
                    auth_repo::set_suspended(&tx, &id, Some(&now), &now)?;
                    let ended = auth_repo::revoke_all_for_user(&tx, &id, &now)?;
                    json!({"sessionsEnded": ended})
                }
                AccountChange::Reinstate => {
                    auth_repo::set_suspended(&tx, &id, None, &now)?;
                    json!({})
                }
            };
            audit::record(
                &tx,
                &Action {
                    actor_id: &admin.user_id,
                    address: &address,
                    action: change.action(),
                    target: &id,
                    detail,
                    at: &now,
                },
            )?;
            let user = auth_repo::user_by_id(&tx, &id)?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("account vanished")))?;
            tx.commit()?;
            Ok(user)
        })
        .await?;
    state.sessions.forget_account(&user_id);
    Ok(user)
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Mail outbox (ADMIN)
    ///
    /// Every message, newest first: password-reset and verification links,
    /// receipts, sale and refund notices, with where each stands (`QUEUED`,
    /// `SENT`, `DEAD` with its last error, or `KEPT` with the `outbox`
    /// transport, where this is where mail is read).
    #[oai(path = "/admin/outbox", method = "get", operation_id = "listOutbox")]
    async fn outbox(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Only messages in this state, e.g. `DEAD`.
        status: Query<Option<MailStatus>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<
        Paged<OutboxMessage>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let page = Page::new(page.0, limit.0)?;
        let (messages, total) = state
            .db
            .read(move |conn| Ok(mail_queue::list(conn, status.0, page)?))
            .await?;
        let status = status.0.map(|s| ("status", s.as_str().to_string()));
        Ok(Paged::new(
            messages,
            total,
            page,
            &crate::api_base::api_path("/admin/outbox"),
            status.as_slice(),
        ))
    }

    /// Send a dead message again (ADMIN)
    ///
    /// Queues a `DEAD` message again, due now, its attempts counted afresh
    /// (after the relay or the address was fixed). 409 `NOT_DEAD` for a
    /// message that is not dead. Recorded in the audit log.
    #[oai(
        path = "/admin/outbox/:id/resend",
        method = "post",
        operation_id = "resendMail"
    )]
    async fn resend_mail(
        &self,
        req: &poem::Request,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// The message's id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<OutboxMessage>,
        {
            TOO_MANY_REQUESTS
                | BAD_REQUEST
                | UNAUTHORIZED
                | FORBIDDEN
                | NOT_FOUND
                | CONFLICT
                | SERVER
        },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let admin = auth.0.user_id.clone();
        let address = Caller::of(req, &state).address();
        let clock = state.clock.clone();
        let message = state
            .db
            .write(move |conn| {
                let tx = conn.transaction()?;
                let now = clock.stamp();
                let before = mail_queue::message(&tx, &id.0)?
                    .ok_or_else(|| Error::not_found("no such message"))?;
                if !mail_queue::resend(&tx, &id.0, &now)? {
                    return Err(Error::conflict(
                        "NOT_DEAD",
                        format!(
                            "the message is {}; only a DEAD message is sent again",
                            before.status.as_str()
                        ),
                    ));
                }
                audit::record(
                    &tx,
                    &Action {
                        actor_id: &admin,
                        address: &address,
                        action: "mail.resend",
                        target: &id.0,
                        detail: json!({"kind": before.kind, "lastError": before.last_error}),
                        at: &now,
                    },
                )?;
                let after = mail_queue::message(&tx, &id.0)?
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("message vanished")))?;
                tx.commit()?;
                Ok(after)
            })
            .await?;
        state.mail.wake();
        Ok(Json(message))
    }

    /// Reconciliation report (ADMIN)
    ///
    /// For a period (default: the last 30 days): order totals by status and
    /// currency, paid orders without a payment, payments without a paid
    /// order, webhook events whose amount did not match, and events that
    /// matched no order. Empty problem lists mean money and orders agree.
    #[oai(
        path = "/admin/reconciliation",
        method = "get",
        operation_id = "getReconciliation"
    )]
    async fn reconciliation(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// Start of the period, inclusive (RFC 3339).
        #[oai(validator(max_length = 40))]
        from: Query<Option<String>>,
        /// End of the period, exclusive (RFC 3339); default now.
        #[oai(validator(max_length = 40))]
        to: Query<Option<String>>,
    ) -> ApiResult<
        Json<Reconciliation>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let now = state.clock.now();
        let parse = |name: &str, value: Option<String>, default: time::OffsetDateTime| {
            time_bound(name, value.as_deref())
                .map(|at| at.unwrap_or_else(|| crate::clock::format(default)))
        };
        // `to` defaults a little past now so orders made this millisecond count.
        let to = parse("to", to.0, now + time::Duration::seconds(1))?;
        let from = parse("from", from.0, now - time::Duration::days(30))?;
        if from >= to {
            return Err(Error::validation("from", "from must be before to").into());
        }
        let stamp = crate::clock::format(now);
        let report = state
            .db
            .read(move |conn| Ok(repo::reconcile(conn, &from, &to, &stamp)?))
            .await?;
        Ok(Json(report))
    }

    /// Refund an order (ADMIN)
    ///
    /// Sends `amount` (default: all that is left) of a PAID order's payment
    /// back through its provider (Stripe's refund API; the dev provider
    /// moves no money). All of it back: the order is REFUNDED, the
    /// enrollment revoked and the seats given back; part of it: the order
    /// stays PAID with the refunded amount on its payment. Recorded in the
    /// audit log; reconciliation shows it.
    #[oai(
        path = "/admin/orders/:id/refund",
        method = "post",
        operation_id = "refundOrder"
    )]
    async fn refund(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &poem::Request,
        /// The order id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
        body: Json<RefundRequest>,
    ) -> ApiResult<
        Json<Order>,
        {
            TOO_MANY_REQUESTS | JSON_BODY | UNAUTHORIZED | FORBIDDEN | NOT_FOUND | CONFLICT | SERVER
        },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let address = Caller::of(req, &state).address();
        let order =
            crate::payments::refunds::refund_order(&state, &auth.0, address, id.0, body.0.amount)
                .await?;
        Ok(Json(order))
    }

    /// Change an account's role (ADMIN)
    ///
    /// The new role applies to the account's next request. An admin cannot
    /// change their own. Recorded in the audit log.
    #[oai(
        path = "/admin/users/:id/role",
        method = "post",
        operation_id = "setUserRole"
    )]
    async fn set_role(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &poem::Request,
        /// The account id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
        body: Json<RoleRequest>,
    ) -> ApiResult<
        Json<User>,
        {
            TOO_MANY_REQUESTS | JSON_BODY | UNAUTHORIZED | FORBIDDEN | NOT_FOUND | CONFLICT | SERVER
        },
    > {
        let address = Caller::of(req, &state).address();
        let change = AccountChange::Role(body.0.role);
        Ok(Json(
            change_account(&state, auth.0, address, id.0, change).await?,
        ))
    }

    /// Suspend an account (ADMIN)
    ///
    /// The account cannot sign in (403 `ACCOUNT_SUSPENDED`) and every
    /// session it has ends now: its refresh tokens are revoked and its
    /// access tokens refused. Recorded in the audit log.
    #[oai(
        path = "/admin/users/:id/suspend",
        method = "post",
        operation_id = "suspendUser"
    )]
    async fn suspend(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &poem::Request,
        /// The account id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<User>,
        {
            TOO_MANY_REQUESTS
                | BAD_REQUEST
                | UNAUTHORIZED
                | FORBIDDEN
                | NOT_FOUND
                | CONFLICT
                | SERVER
        },
    > {
        let address = Caller::of(req, &state).address();
        let change = AccountChange::Suspend;
        Ok(Json(
            change_account(&state, auth.0, address, id.0, change).await?,
        ))
    }

    /// Reinstate a suspended account (ADMIN)
    ///
    /// The account may sign in again. Recorded in the audit log.
    #[oai(
        path = "/admin/users/:id/reinstate",
        method = "post",
        operation_id = "reinstateUser"
    )]
    async fn reinstate(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        req: &poem::Request,
        /// The account id.
        #[oai(validator(max_length = 64))]
        id: Path<String>,
    ) -> ApiResult<
        Json<User>,
        {
            TOO_MANY_REQUESTS
                | BAD_REQUEST
                | UNAUTHORIZED
                | FORBIDDEN
                | NOT_FOUND
                | CONFLICT
                | SERVER
        },
    > {
        let address = Caller::of(req, &state).address();
        let change = AccountChange::Reinstate;
        Ok(Json(
            change_account(&state, auth.0, address, id.0, change).await?,
        ))
    }

    /// Audit log (ADMIN)
    ///
    /// Every admin action on money or accounts (refunds, role changes,
    /// suspensions), newest first: who, what, when and from which address.
    /// `target` narrows it to one order or account.
    #[oai(path = "/admin/audit", method = "get", operation_id = "listAuditLog")]
    async fn audit(
        &self,
        state: Data<&AppState>,
        auth: BearerAuth,
        /// An order or account id.
        #[oai(validator(max_length = 64))]
        target: Query<Option<String>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))]
        page: Query<Option<i64>>,
        /// Items per page, 1 to 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<i64>>,
    ) -> ApiResult<
        Paged<AuditEntry>,
        { TOO_MANY_REQUESTS | BAD_REQUEST | UNAUTHORIZED | FORBIDDEN | SERVER },
    > {
        auth.0.require_role(&[Role::Admin])?;
        let page = Page::new(page.0, limit.0)?;
        let target = target.0.filter(|t| !t.is_empty());
        let query: Vec<(&str, String)> = target.iter().map(|t| ("target", t.clone())).collect();
        let (entries, total) = state
            .db
            .read(move |conn| Ok(audit::list(conn, target.as_deref(), page)?))
            .await?;
        Ok(Paged::new(
            entries,
            total,
            page,
            &crate::api_base::api_path("/admin/audit"),
            &query,
        ))
    }
}
