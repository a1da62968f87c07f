//! `GET /reset-password?token=...`: a plain page where the link of a
//! password-reset mail lands when no front end serves it (the default
//! `auth.reset_link` points here). One form, a new password, sent with
//! `fetch` to `POST /api/v1/auth/reset-password`; no external assets.
//!
//! The page carries its own Content-Security-Policy: only its own inline
//! script and style (allowed by hash), requests only to this server, and it
//! may not be framed. The token is the capability, so the page is never
//! cached and (through the server-wide `Referrer-Policy: no-referrer`) its
//! address is not passed on.

use std::sync::LazyLock;

use base64::Engine;
use html_escape::encode_double_quoted_attribute as attr;
use poem::http::{StatusCode, header};
use poem::web::Query;
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;
use sha2::{Digest, Sha256};

const STYLE: &str = "body{font-family:sans-serif;max-width:28em;margin:3em auto;padding:0 1em}\
label{display:block;margin:1em 0 .3em}input{font-size:1.1em;width:100%;box-sizing:border-box;padding:.3em}\
button{margin-top:1em;font-size:1.1em;padding:.4em 1.2em}#result{margin-top:1em;font-weight:bold}";

/// Sends the form as JSON and shows the answer; `textContent` only, so
/// nothing the server says is parsed as HTML.
const SCRIPT_TEMPLATE: &str = r#"
const form = document.getElementById("reset");
const result = document.getElementById("result");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  result.textContent = "Saving...";
  try {
    const response = await fetch("{resetPassword}", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        token: form.elements.token.value,
        newPassword: form.elements.newPassword.value,
      }),
    });
    if (response.ok) {
      form.hidden = true;
      result.textContent = "Your password is changed. Sign in with the new one; every other session has ended.";
      return;
    }
    const problem = await response.json().catch(() => ({}));
    result.textContent = problem.detail || ("The server answered " + response.status + ".");
  } catch (error) {
    result.textContent = "The server could not be reached; try again.";
  }
  button.disabled = false;
});
"#;

/// `'sha256-...'` of an inline script or style, for the CSP.
pub(crate) fn csp_hash(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The script, calling this server's reset operation.
static SCRIPT: LazyLock<String> = LazyLock::new(|| {
    SCRIPT_TEMPLATE.replace(
        "{resetPassword}",
        &crate::api_base::api_path("/auth/reset-password"),
    )
});

static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        csp_hash(&SCRIPT),
        csp_hash(STYLE)
    )
});

#[derive(Deserialize)]
struct ResetQuery {
    token: Option<String>,
}

/// `GET /reset-password`: the form, with the link's token in a hidden field.
#[handler]
pub fn page(Query(query): Query<ResetQuery>) -> Response {
    let token = query.token.unwrap_or_default();
    let body = if token.is_empty() {
        "<p>This link has no reset token. Ask for a new reset mail and open the link it \
         holds.</p>"
            .to_string()
    } else {
        // `method="post"` keeps the password out of the address bar should
        // the script not run.
        format!(
            "<form id=\"reset\" method=\"post\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <label for=\"newPassword\">New password (8 to 128 characters)</label>\
             <input id=\"newPassword\" name=\"newPassword\" type=\"password\" \
             autocomplete=\"new-password\" minlength=\"8\" maxlength=\"128\" required autofocus>\
             <button type=\"submit\">Set the new password</button></form>\
             <p id=\"result\" role=\"status\"></p>\
             <noscript><p>This page needs JavaScript to send the new password.</p></noscript>\
             <script>{script}</script>",
            token = attr(&token),
            script = SCRIPT.as_str(),
        )
    };
    token_page(
        StatusCode::OK,
        &CSP,
        STYLE,
        ("Reset your WeMaster password", "Reset your password"),
        &body,
    )
}

/// A page that a link with a token lands on: its own Content-Security-Policy,
/// never cached (the token is the capability), `title` in the tab and
/// `heading` above `body`.
pub(crate) fn token_page(
    status: StatusCode,
    csp: &str,
    style: &str,
    (title, heading): (&str, &str),
    body: &str,
) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_SECURITY_POLICY, csp)
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{style}</style></head>\
             <body><h1>{heading}</h1>{body}</body></html>"
        ))
        .into_response()
}
