//! One line for a configuration that cannot be used: the key, where it came
//! from (the file, or the environment variable by name), the value at fault
//! and what is allowed, with a "did you mean" for a misspelt key.

use figment::Figment;
use figment::error::{Actual, Kind};
use figment::value::Value;

use super::ConfigError;
use crate::enum_hints::quoted;

/// Prefix of the environment variables that configure the server.
pub const ENV_PREFIX: &str = "WEMASTER_";

/// The environment variable that sets `key` (`server.addr` ->
/// `WEMASTER_SERVER__ADDR`).
pub fn env_var(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.replace('.', "__").to_ascii_uppercase()
    )
}

/// The variable in this process's environment that set `key` or something
/// under it (an unknown section `servr` comes from `WEMASTER_SERVR__ADDR`).
fn env_var_set_for(key: &str) -> String {
    let name = env_var(key);
    std::env::vars_os()
        .filter_map(|(var, _)| var.into_string().ok())
        .find(|var| {
            var.eq_ignore_ascii_case(&name)
                || var.to_ascii_uppercase().starts_with(&format!("{name}__"))
        })
        .unwrap_or(name)
}

/// Where a value came from, for the message.
fn origin(key: &str, metadata: Option<&figment::Metadata>) -> String {
    match metadata {
        Some(m) if m.name.contains("environment") => {
            format!(" (environment variable {})", env_var_set_for(key))
        }
        Some(m) => match &m.source {
            Some(source) => format!(" (in {source})"),
            None => format!(" (from {})", m.name),
        },
        None => String::new(),
    }
}

/// Explains figment's first error in one line.
pub fn explain(error: figment::Error, figment: &Figment) -> ConfigError {
    let Some(e) = error.into_iter().next() else {
        return ConfigError("invalid configuration".into());
    };
    let mut path: Vec<String> = e
        .path
        .iter()
        .filter(|p| p.as_str() != "default")
        .cloned()
        .collect();
    if let Kind::UnknownField(field, expected) = &e.kind {
        // figment's path already ends with the unknown field.
        if path.last() != Some(field) {
            path.push(field.clone());
        }
        let key = path.join(".");
        let from = origin(&key, e.metadata.as_ref());
        let from_env = from.contains("environment");
        return ConfigError(format!(
            "unknown configuration key `{key}`{from}{}",
            suggestion(&path, field, expected, from_env)
        ));
    }
    let key = path.join(".");
    let from = origin(&key, e.metadata.as_ref());
    let what = match &e.kind {
        Kind::UnknownVariant(found, expected) => {
            format!("{found:?} is not one of {}", quoted(expected))
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => format!(
            "{} is not {}",
            shown(actual),
            allowed(&key, expected, from.contains("environment"))
        ),
        Kind::Message(message) if message.starts_with("TOML parse error") => toml_syntax(message),
        Kind::Message(message) => match figment.find_value(&key) {
            Ok(value) => format!("{}: {message}{}", shown_value(&value), hint(&key)),
            Err(_) => format!("{message}{}", hint(&key)),
        },
        kind => kind.to_string(),
    };
    if key.is_empty() {
        ConfigError(format!("invalid configuration{from}: {what}"))
    } else {
        ConfigError(format!("invalid value for `{key}`{from}: {what}"))
    }
}

/// The TOML parser's picture of a syntax error, in one line:
/// "TOML syntax error at line 1, column 8: invalid table header (`[server`)".
fn toml_syntax(message: &str) -> String {
    let mut lines = message.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let at = lines
        .next()
        .and_then(|first| first.strip_prefix("TOML parse error at "))
        .unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    // The quoted source line ("1 | [server") and the words after the caret.
    let source = rest
        .iter()
        .find_map(|l| {
            l.split_once(" | ")
                .filter(|(n, _)| n.trim().parse::<u32>().is_ok())
        })
        .map(|(_, text)| text.trim());
    // Everything after the caret line: the parser's words, one or two lines.
    let caret = rest
        .iter()
        .rposition(|l| l.contains('^'))
        .map_or(0, |i| i + 1);
    let words = rest[caret.min(rest.len())..]
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("; ");
    match source {
        Some(text) => format!("TOML syntax error at {at}: {words} (`{text}`)"),
        None => format!("TOML syntax error at {at}: {words}"),
    }
}

/// "; did you mean `server.addr`?" for the closest known key, or the list of
/// keys the section has when none is close.
fn suggestion(path: &[String], field: &str, expected: &[&str], from_env: bool) -> String {
    let section = &path[..path.len().saturating_sub(1)];
    let full = |name: &str| {
        section
            .iter()
            .map(String::as_str)
            .chain([name])
            .collect::<Vec<_>>()
            .join(".")
    };
    // The port is part of the address.
    if ["port", "host", "bind", "listen"].contains(&field) && expected.contains(&"addr") {
        return format!(
            "; did you mean `{}` (host:port, e.g. 127.0.0.1:8080)?",
            full("addr")
        );
    }
    // `WEMASTER_SERVER_ADDR`: one underscore where the section ends.
    if section.is_empty()
        && let Some(known) = expected.iter().find(|known| {
            field
                .strip_prefix(**known)
                .is_some_and(|k| k.starts_with('_'))
        })
    {
        let key = format!("{known}.{}", &field[known.len() + 1..]);
        return if from_env {
            format!(
                "; did you mean {} (`{key}`)? Two underscores end the section",
                env_var(&key)
            )
        } else {
            format!("; did you mean `{key}` (under [{known}])?")
        };
    }
    let closest = expected
        .iter()
        .map(|known| (strsim::jaro_winkler(field, known), known))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, known)) => format!("; did you mean `{}`?", full(known)),
        None if expected.is_empty() => String::new(),
        None => {
            let place = if section.is_empty() {
                "sections are".to_string()
            } else {
                format!("keys of [{}] are", section.join("."))
            };
            format!("; the {place} {}", expected.join(", "))
        }
    }
}

/// What serde expected, in words a person configuring the server uses.
fn allowed(key: &str, expected: &str, from_env: bool) -> String {
    let numbers = ["u8", "u16", "u32", "u64", "u128", "usize"];
    if numbers
        .iter()
        .any(|n| expected == *n || expected.ends_with(&format!(" {n}")))
    {
        return "a whole number (0 or more)".into();
    }
    if expected.contains("i64") || expected.contains("i32") {
        return "a whole number".into();
    }
    if expected.contains("bool") {
        return "true or false".into();
    }
    if expected.contains("sequence") {
        return if from_env {
            format!(
                "a list; in the environment write it as TOML, e.g. {}='[\"127.0.0.1\", \"10.0.0.0/8\"]'",
                env_var(key)
            )
        } else {
            "a list, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"]".into()
        };
    }
    if expected.contains("string") {
        return "text (in quotes in TOML)".into();
    }
    if expected.starts_with("struct ") {
        return format!("a section: write it as [{key}] with its keys below");
    }
    expected.to_string()
}

/// What a value of a custom-parsed key must look like.
fn hint(key: &str) -> &'static str {
    match key {
        "server.addr" => {
            "; expected host:port with an IP address or a host name of this machine, e.g. 127.0.0.1:3002 or localhost:3002"
        }
        "server.trusted_proxies" => "; expected IP addresses or CIDR ranges, e.g. 127.0.0.1",
        _ => "",
    }
}

fn shown(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => format!("{s:?}"),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Bool(b) => b.to_string(),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table".into(),
        other => other.to_string(),
    }
}

fn shown_value(value: &Value) -> String {
    shown(&value.to_actual())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_vars_are_named_from_keys() {
        assert_eq!(env_var("server.addr"), "WEMASTER_SERVER__ADDR");
        assert_eq!(
            env_var("rate_limit.failures.burst"),
            "WEMASTER_RATE_LIMIT__FAILURES__BURST"
        );
    }

    #[test]
    fn a_close_key_is_suggested_and_a_far_one_lists_the_section() {
        let path = ["database".to_string(), "read_pool_sise".to_string()];
        let known = ["path", "read_pool_size", "busy_timeout_ms"];
        assert_eq!(
            suggestion(&path, "read_pool_sise", &known, false),
            "; did you mean `database.read_pool_size`?"
        );
        let path = ["server".to_string(), "colour".to_string()];
        let known = ["addr", "public_url"];
        assert_eq!(
            suggestion(&path, "colour", &known, false),
            "; the keys of [server] are addr, public_url"
        );
        let path = ["server".to_string(), "port".to_string()];
        assert!(suggestion(&path, "port", &known, false).contains("`server.addr` (host:port"));
    }
}
