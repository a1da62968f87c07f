//! `/verify-email?token=...`: where the link of a verification mail lands
//! when no front end serves it (the default `auth.verify_link` points
//! here). Opening the link shows one button; pressing it verifies. The
//! link alone changes nothing, so a mail scanner that fetches every link
//! cannot verify an address for someone who never opened the mail. No
//! script: a plain form posted back to the same address.

use std::sync::LazyLock;

use html_escape::encode_double_quoted_attribute as attr;
use poem::web::{Data, Form, Query};
use poem::{Response, handler};
use serde::Deserialize;

use super::mailings;
use super::reset_page::{csp_hash, token_page};
use crate::state::AppState;

const STYLE: &str = "body{font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em}\
button{margin-top:1em;font-size:1.1em;padding:.4em 1.2em}";

static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src {}; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
        csp_hash(STYLE)
    )
});

#[derive(Deserialize)]
pub struct TokenParams {
    token: Option<String>,
}

fn page(status: poem::http::StatusCode, body: &str) -> Response {
    token_page(
        status,
        &CSP,
        STYLE,
        ("Confirm your email address", "Confirm your email address"),
        body,
    )
}

/// `GET /verify-email`: the button, with the link's token in a hidden field.
#[handler]
pub fn show(Query(params): Query<TokenParams>) -> Response {
    let token = params.token.unwrap_or_default();
    if token.is_empty() {
        return page(
            poem::http::StatusCode::OK,
            "<p>This link has no verification token. Open the link of the mail as it was sent.</p>",
        );
    }
    page(
        poem::http::StatusCode::OK,
        &format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
             <p>Press the button to confirm that this address is yours.</p>\
             <button type=\"submit\">Confirm my email</button></form>",
            attr(&token)
        ),
    )
}

/// `POST /verify-email`: verifies, and says how it went.
#[handler]
pub async fn confirm(state: Data<&AppState>, Form(params): Form<TokenParams>) -> Response {
    let token = params.token.unwrap_or_default();
    match mailings::verify_email(&state, &token).await {
        Ok(Some(_)) => page(
            poem::http::StatusCode::OK,
            "<p>Thank you: your email address is confirmed.</p>",
        ),
        Ok(None) => page(
            poem::http::StatusCode::BAD_REQUEST,
            "<p>This link is invalid, expired or already used. Sign in and ask for a new one.</p>",
        ),
        Err(e) => {
            tracing::error!(error = %e.detail(), "email verification failed");
            page(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                "<p>The server could not confirm the address just now; try again in a minute.</p>",
            )
        }
    }
}
