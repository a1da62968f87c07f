//! The requests the abuse parts send, each from a loopback address of its
//! own choosing, and how the answers are read: which limit refused a 429.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};

use crate::flows;

/// A request slower than this is an error (the server queues a busy
/// address's requests for at most `server.client_queue_ms`, 2 s shipped).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Fresh loopback addresses 127.<block>.<hi>.<lo>, counted from
/// 127.<block>.0.1. Linux routes all of 127.0.0.0/8 to `lo`, so a client can
/// bind any of them as its source, and the server sees each as a different
/// client (the bench sends no X-Forwarded-For).
pub struct Addresses {
    block: u8,
    used: u16,
}

impl Addresses {
    pub fn new(block: u8) -> Addresses {
        Addresses { block, used: 0 }
    }

    /// The next address of the block, never one handed out before.
    pub fn next(&mut self) -> Ipv4Addr {
        self.used = self
            .used
            .checked_add(1)
            .expect("fewer than 65,536 addresses per block");
        let [hi, lo] = self.used.to_be_bytes();
        Ipv4Addr::new(127, self.block, hi, lo)
    }

    /// How many addresses were handed out.
    pub fn used(&self) -> usize {
        usize::from(self.used)
    }
}

/// A client whose connections leave from `address`. Asks for gzip and
/// unzips, as browsers and the other profiles' users do.
pub fn client_from(address: Ipv4Addr) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(address))
        .timeout(REQUEST_TIMEOUT)
        .gzip(true)
        .build()
        .context("building a client")
}

/// Which limit answered a 429. Both answer `RATE_LIMITED`; the detail says
/// whose budget ran out (src/auth/api.rs, src/protection/layers.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The account is locked out for this address after failed logins.
    AccountLocked,
    /// The address spent its failure budget.
    AddressThrottled,
    /// Another 429 (a request budget, the per-address queue).
    Other,
}

impl Refusal {
    pub fn of_detail(detail: &str) -> Refusal {
        if detail.contains("for this account") {
            Refusal::AccountLocked
        } else if detail.contains("from your address") {
            Refusal::AddressThrottled
        } else {
            Refusal::Other
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Refusal::AccountLocked => "account locked",
            Refusal::AddressThrottled => "address throttled",
            Refusal::Other => "other limit",
        }
    }
}

/// One answer, as the summary tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    /// The HTTP status, or 0 when no answer came (connection error, timeout).
    pub status: u16,
    /// For a 429, which limit refused.
    pub refusal: Option<Refusal>,
    /// `Retry-After`, in seconds, when sent.
    pub retry_after: Option<u64>,
    /// The problem `code` of an error answer.
    pub code: Option<String>,
    /// Send to the end of the body, in ms.
    pub ms: f64,
}

impl Answer {
    pub fn is(&self, status: u16) -> bool {
        self.status == status
    }

    pub fn refused_by(&self, refusal: Refusal) -> bool {
        self.refusal == Some(refusal)
    }

    /// "429 (account locked, Retry-After 1 s)", "200", "no answer".
    pub fn describe(&self) -> String {
        if self.status == 0 {
            return "no answer".into();
        }
        let mut notes = Vec::new();
        if let Some(refusal) = self.refusal {
            notes.push(refusal.describe().to_owned());
        } else if let Some(code) = &self.code {
            notes.push(code.clone());
        }
        if let Some(seconds) = self.retry_after {
            notes.push(format!("Retry-After {seconds} s"));
        }
        if notes.is_empty() {
            self.status.to_string()
        } else {
            format!("{} ({})", self.status, notes.join(", "))
        }
    }

    async fn read(sent: Instant, response: reqwest::Result<reqwest::Response>) -> Answer {
        let response = match response {
            Ok(response) => response,
            Err(_) => return Answer::none(sent),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let Ok(body) = response.bytes().await else {
            return Answer::none(sent);
        };
        let problem: Option<Value> = (status >= 400)
            .then(|| serde_json::from_slice(&body).ok())
            .flatten();
        let field = |name: &str| {
            problem
                .as_ref()
                .and_then(|p| p.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Answer {
            status,
            refusal: (status == 429)
                .then(|| Refusal::of_detail(&field("detail").unwrap_or_default())),
            retry_after,
            code: field("code"),
            ms: sent.elapsed().as_secs_f64() * 1000.0,
        }
    }

    fn none(sent: Instant) -> Answer {
        Answer {
            status: 0,
            refusal: None,
            retry_after: None,
            code: None,
            ms: sent.elapsed().as_secs_f64() * 1000.0,
        }
    }
}

/// `POST /api/v1/auth/login`.
pub async fn login(
    client: &reqwest::Client,
    base_url: &str,
    email: &str,
    password: &str,
) -> Answer {
    let sent = Instant::now();
    let response = client
        .post(format!("{base_url}{}", flows::LOGIN))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await;
    Answer::read(sent, response).await
}

/// `GET <path>`.
pub async fn get(client: &reqwest::Client, base_url: &str, path: &str) -> Answer {
    let sent = Instant::now();
    let response = client.get(format!("{base_url}{path}")).send().await;
    Answer::read(sent, response).await
}

/// `POST /api/v1/auth/login` from a client of its own at `address`: a new
/// connection, as a botnet's guesses each come from another machine.
pub async fn login_from(
    address: Ipv4Addr,
    base_url: &str,
    email: &str,
    password: &str,
) -> Result<Answer> {
    Ok(login(&client_from(address)?, base_url, email, password).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_fresh_and_carry_into_the_third_octet() {
        let mut addresses = Addresses::new(10);
        assert_eq!(addresses.next(), Ipv4Addr::new(127, 10, 0, 1));
        for _ in 0..254 {
            addresses.next();
        }
        assert_eq!(addresses.next(), Ipv4Addr::new(127, 10, 1, 0));
        assert_eq!(addresses.used(), 256);
    }

    #[test]
    fn a_429_says_which_limit_refused_it() {
        assert_eq!(
            Refusal::of_detail("too many failed sign-ins for this account; retry in 1 s"),
            Refusal::AccountLocked
        );
        assert_eq!(
            Refusal::of_detail("too many failed attempts from your address; retry in 6 s"),
            Refusal::AddressThrottled
        );
        assert_eq!(
            Refusal::of_detail("too many requests of the writes kind; retry in 1 s"),
            Refusal::Other
        );
    }
}
