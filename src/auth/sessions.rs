//! Which sessions are live, so an access token ends with its session rather
//! than at its `exp`.
//!
//! Every access token names its session (`sid`): the refresh-token family
//! its login started. A session is live while that family has a current
//! refresh token (not rotated, not revoked, not expired). Logout revokes it,
//! a password reset revokes every family of the account, a reused refresh
//! token revokes its family, and deleting an account deletes its families;
//! from then on the session's access tokens get 401. The role and the
//! account come from the database too, so a demoted account loses its
//! powers at once.
//!
//! Answers are cached per session for `auth.session_recheck_seconds`, so a
//! request costs a cache lookup, not a query; every change this process makes invalidates
//! the entries it touches at once, and the short lifetime bounds how long a
//! change made by another process (a restored backup, a hand edit) takes.

use std::time::Duration;

use moka::sync::Cache;

use super::model::Principal;
use super::repo;
use super::token::Claims;
use crate::clock::Clock;
use crate::db::Db;
use crate::error::Error;

/// What the database said of one session, and when (by the clock).
#[derive(Clone)]
struct Checked {
    /// Its holder, or `None` when it has ended.
    holder: Option<Principal>,
    at: time::OffsetDateTime,
}

/// The cache of live sessions and their holders.
pub struct Sessions {
    /// Session id to what was last read of it.
    holders: Cache<String, Checked>,
    /// How long an answer stands, by `clock` (the cache's own time-to-live,
    /// the same, only bounds memory).
    recheck: Duration,
    /// Judges whether a session has expired and an answer is stale.
    clock: Clock,
}

impl Sessions {
    /// At most `max_sessions` remembered, each for `recheck`.
    pub fn new(max_sessions: u64, recheck: Duration, clock: Clock) -> Self {
        Self {
            clock,
            recheck,
            holders: Cache::builder()
                .max_capacity(max_sessions)
                .time_to_live(recheck)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Who holds the session of these (verified) claims; `None` when it
    /// has ended or the account is gone. Errs only when the database does.
    pub async fn holder(&self, db: &Db, claims: &Claims) -> Result<Option<Principal>, Error> {
        if claims.sid.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let fresh = self
            .holders
            .get(&claims.sid)
            .filter(|checked| now - checked.at < self.recheck);
        let holder = match fresh {
            Some(checked) => checked.holder,
            None => {
                let sid = claims.sid.clone();
                let stamp = crate::clock::format(now);
                let holder = db
                    .read(move |conn| Ok(repo::session_holder(conn, &sid, &stamp)?))
                    .await?
                    .map(|(user_id, role)| Principal { user_id, role });
                let checked = Checked {
                    holder: holder.clone(),
                    at: now,
                };
                self.holders.insert(claims.sid.clone(), checked);
                holder
            }
        };
        Ok(holder.filter(|holder| holder.user_id == claims.sub))
    }

    /// Forgets what is known of one session (it was just ended).
    pub fn forget(&self, sid: &str) {
        self.holders.invalidate(sid);
    }

    /// Forgets every session of one account (its sessions ended, or its
    /// role changed).
    pub fn forget_account(&self, user_id: &str) {
        let user_id = user_id.to_string();
        // Only fails when closures are not supported, which `new` enables.
        let _ = self.holders.invalidate_entries_if(move |_, checked| {
            checked.holder.as_ref().is_none_or(|h| h.user_id == user_id)
        });
    }
}
