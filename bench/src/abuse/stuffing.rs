//! Part b: credential stuffing from one address across many accounts. Each
//! try is a different account (made-up emails: the server tracks unknown
//! emails exactly as real ones and answers both the same 401), so no account
//! ever reaches its lockout; only the address's failure budget can stop it.
//!
//! Once the address is refused, it is refused even with a correct password,
//! while its catalogue reads still pass (reads are not rationed) and a demo
//! account still signs in from another address.

use std::net::Ipv4Addr;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::http::{Addresses, Answer, client_from, get, login, login_from};
use crate::flows;

/// The second octet of this part's addresses: 127.20.x.y.
const BLOCK: u8 = 20;
/// Tries sent at most while waiting for the address to be refused.
const MAX_TRIES: usize = 120;
/// The account the attacker knows the password of, which nobody else uses.
const ATTACKER_KNOWS: (&str, &str) = ("student2@test.com", "password123");
/// The honest user on another address.
const HONEST: (&str, &str) = ("student@test.com", "password123");

#[derive(Debug, Serialize)]
pub struct Stuffing {
    pub attacker: Ipv4Addr,
    /// Accounts tried, one wrong password each, until the first refusal.
    pub tries: usize,
    /// How many of them the server checked (401) before refusing one.
    pub failures_before_refusal: usize,
    /// The first refusal.
    pub refusal: Option<Answer>,
    /// Seconds from the first try to the refusal.
    pub seconds: f64,
    /// The attacker's address logging in with a correct password.
    pub correct_login_from_attacker: Answer,
    /// The attacker's address reading the catalogue.
    pub catalogue_from_attacker: Answer,
    pub other_address: Ipv4Addr,
    /// A demo account signing in from another address.
    pub login_from_other_address: Answer,
}

pub async fn run(base_url: &str) -> Result<Stuffing> {
    let mut addresses = Addresses::new(BLOCK);
    let attacker = addresses.next();
    // One client: the attacker reuses its connection, as a script would.
    let client = client_from(attacker)?;
    let started = Instant::now();
    let mut failures_before_refusal = 0;
    let mut refusal = None;
    let mut tries = 0;
    while tries < MAX_TRIES {
        tries += 1;
        let email = format!("stuffed{tries}@example.test");
        let answer = login(&client, base_url, &email, "hunter2-hunter2").await;
        match answer.status {
            401 => failures_before_refusal += 1,
            _ => {
                refusal = Some(answer);
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (email, password) = ATTACKER_KNOWS;
    let correct_login_from_attacker = login(&client, base_url, email, password).await;
    let catalogue_from_attacker = get(&client, base_url, flows::OFFERINGS).await;
    let other_address = addresses.next();
    let (email, password) = HONEST;
    let login_from_other_address = login_from(other_address, base_url, email, password).await?;
    Ok(Stuffing {
        attacker,
        tries,
        failures_before_refusal,
        refusal,
        seconds,
        correct_login_from_attacker,
        catalogue_from_attacker,
        other_address,
        login_from_other_address,
    })
}
