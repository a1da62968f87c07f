//! The messages' templates: Jinja (minijinja), three per kind and
//! language (`<locale>/<kind>.subject`, `.txt`, `.html`) plus a shared
//! `layout.html`. Built into the binary; a file of the same name under
//! `mail.templates_dir` replaces one. `.html` templates escape every value
//! they print (autoescape by extension); subjects are folded onto one line,
//! so no value can add a header.

use std::path::{Path, PathBuf};

use minijinja::Environment;

use super::model::{Locale, MailKind};

/// The built-in templates, by name.
const BUILT_IN: &[(&str, &str)] = &[
    ("layout.html", include_str!("messages/layout.html")),
    (
        "en/password_reset.subject",
        include_str!("messages/en/password_reset.subject"),
    ),
    (
        "en/password_reset.txt",
        include_str!("messages/en/password_reset.txt"),
    ),
    (
        "en/password_reset.html",
        include_str!("messages/en/password_reset.html"),
    ),
    (
        "en/verify_email.subject",
        include_str!("messages/en/verify_email.subject"),
    ),
    (
        "en/verify_email.txt",
        include_str!("messages/en/verify_email.txt"),
    ),
    (
        "en/verify_email.html",
        include_str!("messages/en/verify_email.html"),
    ),
    (
        "en/receipt.subject",
        include_str!("messages/en/receipt.subject"),
    ),
    ("en/receipt.txt", include_str!("messages/en/receipt.txt")),
    ("en/receipt.html", include_str!("messages/en/receipt.html")),
    (
        "en/sale_notice.subject",
        include_str!("messages/en/sale_notice.subject"),
    ),
    (
        "en/sale_notice.txt",
        include_str!("messages/en/sale_notice.txt"),
    ),
    (
        "en/sale_notice.html",
        include_str!("messages/en/sale_notice.html"),
    ),
    (
        "en/refund_notice.subject",
        include_str!("messages/en/refund_notice.subject"),
    ),
    (
        "en/refund_notice.txt",
        include_str!("messages/en/refund_notice.txt"),
    ),
    (
        "en/refund_notice.html",
        include_str!("messages/en/refund_notice.html"),
    ),
    (
        "zh-CN/password_reset.subject",
        include_str!("messages/zh-CN/password_reset.subject"),
    ),
    (
        "zh-CN/password_reset.txt",
        include_str!("messages/zh-CN/password_reset.txt"),
    ),
    (
        "zh-CN/password_reset.html",
        include_str!("messages/zh-CN/password_reset.html"),
    ),
    (
        "zh-CN/verify_email.subject",
        include_str!("messages/zh-CN/verify_email.subject"),
    ),
    (
        "zh-CN/verify_email.txt",
        include_str!("messages/zh-CN/verify_email.txt"),
    ),
    (
        "zh-CN/verify_email.html",
        include_str!("messages/zh-CN/verify_email.html"),
    ),
    (
        "zh-CN/receipt.subject",
        include_str!("messages/zh-CN/receipt.subject"),
    ),
    (
        "zh-CN/receipt.txt",
        include_str!("messages/zh-CN/receipt.txt"),
    ),
    (
        "zh-CN/receipt.html",
        include_str!("messages/zh-CN/receipt.html"),
    ),
    (
        "zh-CN/sale_notice.subject",
        include_str!("messages/zh-CN/sale_notice.subject"),
    ),
    (
        "zh-CN/sale_notice.txt",
        include_str!("messages/zh-CN/sale_notice.txt"),
    ),
    (
        "zh-CN/sale_notice.html",
        include_str!("messages/zh-CN/sale_notice.html"),
    ),
    (
        "zh-CN/refund_notice.subject",
        include_str!("messages/zh-CN/refund_notice.subject"),
    ),
    (
        "zh-CN/refund_notice.txt",
        include_str!("messages/zh-CN/refund_notice.txt"),
    ),
    (
        "zh-CN/refund_notice.html",
        include_str!("messages/zh-CN/refund_notice.html"),
    ),
];

/// A message rendered: its subject on one line, a plain-text part and an
/// HTML part.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The templates, compiled.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Loads and compiles every template, the built-in ones overridden by
    /// files under `dir` (when not empty). Fails naming the template that
    /// does not compile.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let mut env = Environment::new();
        let dir: Option<PathBuf> = (!dir.as_os_str().is_empty()).then(|| dir.to_path_buf());
        env.set_loader(move |name| {
            if let Some(dir) = &dir {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => return Ok(Some(text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("cannot read {}: {e}", path.display()),
                        ));
                    }
                }
            }
            Ok(BUILT_IN
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, text)| (*text).to_string()))
        });
        let templates = Self { env };
        for name in BUILT_IN.iter().map(|(name, _)| name) {
            templates
                .env
                .get_template(name)
                .map_err(|e| format!("mail template {name}: {e}"))?;
        }
        Ok(templates)
    }

    /// Renders a message of `kind` in `locale` from its data.
    pub fn render(
        &self,
        kind: MailKind,
        locale: Locale,
        data: &serde_json::Value,
    ) -> Result<Rendered, String> {
        let part = |ext: &str| -> Result<String, String> {
            let name = format!("{}/{}.{ext}", locale.as_str(), kind.template());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(minijinja::value::Serde(data)))
                .map_err(|e| format!("mail template {name}: {e}"))
        };
        Ok(Rendered {
            subject: one_line(&part("subject")?),
            text: part("txt")?,
            html: part("html")?,
        })
    }
}

/// Folds a rendered subject onto one line: every run of whitespace and
/// control characters (a line break in an offering's title) becomes one
/// space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile_receipt() -> serde_json::Value {
        serde_json::json!({
            "name": "<b>Sam</b>",
            "orderId": "o-1",
            "date": "2026-12-04",
            "total": "49.00 USD",
            "items": [{
                "title": "<script>alert(1)</script>\r\nBcc: victim@example.com",
                "variant": "Standard",
                "quantity": 1,
                "amount": "49.00 USD",
            }],
            "link": "http://127.0.0.1:3002/",
        })
    }

    #[test]
    fn every_built_in_template_compiles_and_renders_in_both_languages() {
        let templates = Templates::load(Path::new("")).unwrap();
        for kind in MailKind::ALL {
            for locale in Locale::ALL {
                let out = templates.render(kind, locale, &hostile_receipt()).unwrap();
                assert!(!out.subject.is_empty(), "{kind:?} {locale:?}");
                assert!(!out.subject.contains('\n'));
            }
        }
    }

    #[test]
    fn html_parts_escape_what_users_wrote_and_subjects_stay_on_one_line() {
        let templates = Templates::load(Path::new("")).unwrap();
        let out = templates
            .render(MailKind::Receipt, Locale::En, &hostile_receipt())
            .unwrap();
        assert!(out.html.contains("&lt;script&gt;"), "{}", out.html);
        assert!(!out.html.contains("<script>"));
        assert!(!out.html.contains("<b>Sam</b>"));
        assert!(!out.subject.contains('\r') && !out.subject.contains('\n'));
    }

    #[test]
    fn a_file_in_the_templates_dir_replaces_the_built_in_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/receipt.subject"),
            "Receipt for order {{ orderId }}",
        )
        .unwrap();
        let templates = Templates::load(dir.path()).unwrap();
        let out = templates
            .render(MailKind::Receipt, Locale::En, &hostile_receipt())
            .unwrap();
        assert_eq!(out.subject, "Receipt for order o-1");
    }

    #[test]
    fn a_broken_override_is_refused_at_load_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        std::fs::write(dir.path().join("en/receipt.txt"), "{% if %}").unwrap();
        let error = Templates::load(dir.path()).err().unwrap();
        assert!(error.contains("en/receipt.txt"), "{error}");
    }
}
