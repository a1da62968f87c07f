//! Clear messages for a value outside an enumeration. poem-openapi reports
//! such a value with its Rust type names and no field
//! (`Expected input type "RegisterRole", found "ADMIN". (occurred while
//! parsing "RegisterRequest")`); this reads the spec once to know which field
//! of which body holds which enumeration and what it allows, so the problem
//! says `role must be one of "STUDENT", "TUTOR"; got "ADMIN"`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// What the spec says about enumerations: their values, and which property
/// of which object schema refers to each.
#[derive(Debug, Default)]
pub struct EnumHints {
    /// Enumeration schema name -> allowed values.
    values: HashMap<String, Vec<String>>,
    /// (object schema name, enumeration schema name) -> property name.
    fields: HashMap<(String, String), String>,
    /// Object schema name -> its description, to say what a body must be.
    descriptions: HashMap<String, String>,
}

/// The rewritten message and the field it is about.
#[derive(Debug, PartialEq, Eq)]
pub struct Hint {
    pub field: Option<String>,
    pub detail: String,
}

static HINTS: OnceLock<EnumHints> = OnceLock::new();

/// Learns the enumerations of the API from its spec (JSON). Called once when
/// routes are built; the spec is the same for every server of the process.
pub fn install(spec_json: &str) {
    HINTS.get_or_init(|| EnumHints::from_spec(spec_json));
}

/// A clear message for a body that failed to parse: the field and what it
/// allows where `reason` tells, never a Rust type name or the input echoed.
pub fn for_body(reason: &str) -> Option<Hint> {
    let hints = HINTS.get()?;
    Some(
        hints
            .body_hint(reason)
            .unwrap_or_else(|| hints.plain_body_hint(reason)),
    )
}

/// A clear message for a parameter `name` that failed to parse.
pub fn for_parameter(name: &str, reason: &str) -> Option<Hint> {
    let hints = HINTS.get()?;
    Some(
        hints
            .parameter_hint(name, reason)
            .unwrap_or_else(|| plain_parameter_hint(name, reason)),
    )
}

impl EnumHints {
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: Value = serde_json::from_str(spec_json).unwrap_or_default();
        let schemas = spec["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut hints = Self::default();
        for (name, schema) in &schemas {
            if let Some(items) = schema["enum"].as_array() {
                let values = items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                hints.values.insert(name.clone(), values);
            }
        }
        for (object, schema) in &schemas {
            if let Some(description) = schema["description"].as_str() {
                hints
                    .descriptions
                    .insert(object.clone(), description.to_string());
            }
            for (property, property_schema) in
                schema["properties"].as_object().into_iter().flatten()
            {
                for referenced in references(property_schema) {
                    if hints.values.contains_key(&referenced) {
                        hints
                            .fields
                            .insert((object.clone(), referenced), property.clone());
                    }
                }
            }
        }
        hints
    }

    fn body_hint(&self, reason: &str) -> Option<Hint> {
        let (enumeration, found) = expected_enum(reason)?;
        let values = self.values.get(enumeration)?;
        // The outermost object named in the chain is the body; the innermost
        // object that has a property of this enumeration names the field.
        let field = objects_in_chain(reason)
            .find_map(|object| {
                self.fields
                    .get(&(object.to_string(), enumeration.to_string()))
            })
            .cloned();
        let subject = field.as_deref().unwrap_or("a field");
        Some(Hint {
            detail: format!("{subject} must be one of {}; got {found}", quoted(values)),
            field,
        })
    }

    /// poem-openapi's message for any other body it could not parse, told
    /// in the API's words: the field it names (a failed check), or what the
    /// value or the whole body must be.
    fn plain_body_hint(&self, reason: &str) -> Hint {
        if let Some(field) = between(reason, "field `", "`") {
            let rule = reason
                .split("verification failed.")
                .nth(1)
                .map(|r| r.split(" (occurred").next().unwrap_or(r).trim())
                .filter(|r| !r.is_empty());
            return Hint {
                field: Some(field.to_string()),
                detail: match rule {
                    Some(rule) => format!("{field} does not meet {rule}"),
                    None => format!("{field} is missing or not of its type"),
                },
            };
        }
        let detail = match between(reason, "Expected input type \"", "\"") {
            Some(expected) => match (primitive(expected), self.descriptions.get(expected)) {
                (Some(kind), _) => format!("a value in the body must be {kind}"),
                (None, Some(description)) => {
                    let description = description.split_whitespace().collect::<Vec<_>>();
                    format!(
                        "the body does not fit its schema: {}",
                        description.join(" ")
                    )
                }
                (None, None) => "the body does not fit its schema".to_string(),
            },
            None => "the body could not be read as this operation's JSON".to_string(),
        };
        Hint {
            field: None,
            detail,
        }
    }

    fn parameter_hint(&self, name: &str, reason: &str) -> Option<Hint> {
        let enumeration = between(reason, "failed to parse \"", "\"")?;
        let values = self.values.get(enumeration)?;
        Some(Hint {
            field: Some(name.to_string()),
            detail: format!("{name} must be one of {}", quoted(values)),
        })
    }
}

/// poem-openapi's message for a parameter it could not parse, without its
/// type names.
fn plain_parameter_hint(name: &str, reason: &str) -> Hint {
    let detail = match between(reason, "failed to parse \"", "\"").and_then(primitive) {
        Some(kind) => format!("{name} must be {kind}"),
        None => format!("{name} is not valid here"),
    };
    Hint {
        field: Some(name.to_string()),
        detail,
    }
}

/// What a JSON type poem-openapi names (`integer_int64`, `string`) is in
/// words; `None` for a schema name.
fn primitive(name: &str) -> Option<&'static str> {
    let name = name.trim_start_matches("optional_");
    Some(match name {
        "string" => "a string",
        "boolean" => "true or false",
        n if n.starts_with("integer") => "an integer",
        n if n.starts_with("number") => "a number",
        n if n.starts_with('[') => "a list",
        _ => return None,
    })
}

/// The schema names a property refers to, directly, through `allOf` or
/// `anyOf`/`oneOf`, or as the items of an array.
fn references(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(reference) = schema["$ref"].as_str() {
        found.extend(reference.rsplit('/').next().map(str::to_string));
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            found.extend(references(part));
        }
    }
    if schema.get("items").is_some() {
        found.extend(references(&schema["items"]));
    }
    found
}

/// `("RegisterRole", "\"ADMIN\"")` from `Expected input type "RegisterRole",
/// found "ADMIN". ...`.
fn expected_enum(reason: &str) -> Option<(&str, &str)> {
    let enumeration = between(reason, "Expected input type \"", "\"")?;
    let start = reason.find("\", found ")? + "\", found ".len();
    let rest = &reason[start..];
    let end = rest.find(". (occurred").unwrap_or(rest.len());
    let found = rest[..end].trim_end_matches('.');
    Some((enumeration, found))
}

/// The type names of `(occurred while parsing "X")`, innermost first.
fn objects_in_chain(reason: &str) -> impl Iterator<Item = &str> {
    reason
        .split("(occurred while parsing \"")
        .skip(1)
        .filter_map(|part| part.split('"').next())
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

/// `"a", "b"`: values quoted and listed, for messages.
pub(crate) fn quoted<S: AsRef<str>>(values: &[S]) -> String {
    values
        .iter()
        .map(|v| format!("{:?}", v.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r##"{"components":{"schemas":{
        "RegisterRole":{"type":"string","enum":["STUDENT","TUTOR"]},
        "RegisterRequest":{"type":"object","properties":{
            "email":{"type":"string"},
            "role":{"allOf":[{"$ref":"#/components/schemas/RegisterRole"},{"description":"x"}]}}},
        "Tags":{"type":"object","properties":{
            "roles":{"type":"array","items":{"$ref":"#/components/schemas/RegisterRole"}}}}
    }}}"##;

    #[test]
    fn a_body_enum_error_names_the_field_and_the_allowed_values() {
        let hints = EnumHints::from_spec(SPEC);
        let reason = r#"parse request payload error: Expected input type "RegisterRole", found "ADMIN". (occurred while parsing "optional_RegisterRole") (occurred while parsing "RegisterRequest")"#;
        assert_eq!(
            hints.body_hint(reason),
            Some(Hint {
                field: Some("role".into()),
                detail: r#"role must be one of "STUDENT", "TUTOR"; got "ADMIN""#.into(),
            })
        );
    }

    #[test]
    fn an_array_of_enums_is_found_through_its_items() {
        let hints = EnumHints::from_spec(SPEC);
        let reason = r#"Expected input type "RegisterRole", found 7. (occurred while parsing "[RegisterRole]") (occurred while parsing "Tags")"#;
        let hint = hints.body_hint(reason).unwrap();
        assert_eq!(hint.field.as_deref(), Some("roles"));
        assert!(hint.detail.ends_with("got 7"), "{}", hint.detail);
    }

    #[test]
    fn other_errors_are_left_alone() {
        let hints = EnumHints::from_spec(SPEC);
        let reason =
            r#"Expected input type "string", found 7. (occurred while parsing "RegisterRequest")"#;
        assert_eq!(hints.body_hint(reason), None);
        assert_eq!(
            hints.parameter_hint("page", "failed to parse \"integer\""),
            None
        );
    }

    #[test]
    fn a_parameter_enum_error_names_the_parameter() {
        let hints = EnumHints::from_spec(SPEC);
        let hint = hints
            .parameter_hint(
                "role",
                r#"failed to parse "RegisterRole": Expect a valid enumeration value."#,
            )
            .unwrap();
        assert_eq!(hint.detail, r#"role must be one of "STUDENT", "TUTOR""#);
    }
}
