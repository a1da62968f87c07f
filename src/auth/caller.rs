//! Who is calling, resolved once per request. The outermost layer puts a
//! [`Caller`] in the request's data: the client address (through trusted
//! proxies) at once, and the holder of the bearer token the first time
//! anyone asks for it. Admission, the budgets, the security scheme, the
//! sign-in handlers and the request log all read this one value, so an
//! address is resolved and a token verified at most once per request.

use std::net::IpAddr;
use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::{Bearer, BearerAuthorization};
use tokio::sync::OnceCell;

use super::model::Principal;
use super::token::Rejection;
use crate::config::IpBlock;
use crate::error::Error;
use crate::protection::admission::group;
use crate::protection::client_ip::client_ip;
use crate::state::AppState;

/// The caller of one request; cheap to clone.
#[derive(Clone)]
pub struct Caller(Arc<Inner>);

struct Inner {
    ip: Option<IpAddr>,
    /// The bearer token presented, read by the security scheme's own
    /// parser (any case of "Bearer"), so what is verified here is what
    /// the operation accepts.
    token: Option<String>,
    /// The token's holder or why it names none, once someone has asked.
    holder: OnceCell<Result<Principal, Refusal>>,
}

/// Why a presented bearer token names no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Refused on its face: expired, or never signed here (forged).
    Token(Rejection),
    /// Genuine, but its session has ended or its account is gone.
    Ended,
}

impl Refusal {
    /// The 401 the caller gets.
    pub fn error(self) -> Error {
        match self {
            Refusal::Token(rejection) => rejection.error(),
            Refusal::Ended => {
                Error::unauthorized("AUTH_TOKEN_INVALID", "the session has ended; sign in again")
            }
        }
    }

    /// A token this server never signed: the budgets charge its address.
    pub fn forged(self) -> bool {
        self == Refusal::Token(Rejection::Invalid)
    }
}

impl Caller {
    /// Reads the client address and the bearer token of `req`.
    pub fn resolve(req: &Request, trusted: &[IpBlock]) -> Self {
        Self(Arc::new(Inner {
            ip: client_ip(req, trusted),
            token: Bearer::from_request(req).ok().map(|b| b.token),
            holder: OnceCell::new(),
        }))
    }

    /// The caller the outer layer resolved; resolved here only for a
    /// request that did not pass through it.
    pub fn of(req: &Request, state: &AppState) -> Self {
        req.data::<Caller>()
            .cloned()
            .unwrap_or_else(|| Self::resolve(req, &state.config.server.trusted_proxies))
    }

    /// The client address, when known.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.ip
    }

    /// The address counters are kept by: the IPv4 address or the /64 of
    /// an IPv6 one; `unknown` without one.
    pub fn address(&self) -> String {
        self.0
            .ip
            .map_or_else(|| "unknown".to_string(), |ip| group(ip).to_string())
    }

    /// The bearer token presented, if any.
    pub fn token(&self) -> Option<&str> {
        self.0.token.as_deref()
    }

    /// The holder of the bearer token (`None` without one), verified the
    /// first time it is asked for in this request. A database error is
    /// returned, not remembered, so a later ask tries again.
    pub async fn holder(
        &self,
        state: &AppState,
    ) -> Result<Option<Result<Principal, Refusal>>, Error> {
        let Some(token) = self.token() else {
            return Ok(None);
        };
        let found = self
            .0
            .holder
            .get_or_try_init(|| verify(state, token))
            .await?;
        Ok(Some(found.clone()))
    }

    /// The holder, if someone has asked for it already (for the log).
    pub fn known_holder(&self) -> Option<&Principal> {
        self.0.holder.get().and_then(|found| found.as_ref().ok())
    }
}

/// Verifies `token` and asks the sessions who holds it now.
async fn verify(state: &AppState, token: &str) -> Result<Result<Principal, Refusal>, Error> {
    let claims = match state.tokens.check(token) {
        Ok(claims) => claims,
        Err(rejection) => return Ok(Err(Refusal::Token(rejection))),
    };
    Ok(state
        .sessions
        .holder(&state.db, &claims)
        .await?
        .ok_or(Refusal::Ended))
}
