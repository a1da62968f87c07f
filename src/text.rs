//! `Text`: the string type of request bodies.
//!
//! poem-openapi's `String` also accepts a JSON number or boolean and turns it
//! into text (`{"refreshToken": 12}` would arrive as `"12"`). API.md says a
//! wrong type is a 400, and a client that sends a number where the spec says
//! string has a bug worth hearing about, so request models use `Text`, which
//! takes a JSON string and nothing else. In the spec it is a plain `string`,
//! and the length and pattern validators apply to it as to `String`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};
use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

use crate::error::Error;

/// A JSON string, and only a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Text(value)
    }
}

impl From<&str> for Text {
    fn from(value: &str) -> Self {
        Text(value.to_owned())
    }
}

impl From<Text> for String {
    fn from(value: Text) -> Self {
        value.0
    }
}

impl Type for Text {
    const IS_REQUIRED: bool = true;

    // Validators (`max_length`, `pattern`) check the inner `String`.
    type RawValueType = String;

    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Ok(Text(text)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// Most combining marks one character may carry: enough for any script
/// (Vietnamese stacks two, some Indic clusters three or four), far fewer than
/// the hundreds of "Zalgo" text that draws over the lines around it.
const MAX_COMBINING: usize = 4;

/// Text meant to be read by people (a title, a name, a tag), for `field`:
/// NFC-normalized and trimmed. Refused, naming the field: nothing visible
/// left (only spaces, zero-width or bidi controls), control characters
/// (NUL, escape sequences, line breaks, tabs), bidi controls inside (U+202E
/// turns "exe.txt" into "txt.exe"), and more than [`MAX_COMBINING`] combining
/// marks on one character.
pub fn display_text(field: &str, raw: &str) -> Result<String, Error> {
    let normalized = ComposingNormalizerBorrowed::new_nfc().normalize(raw);
    let trimmed = normalized.trim_matches(|c: char| c.is_whitespace() || is_invisible(c));
    if trimmed.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            format!("{field} must not contain control characters (line breaks, tabs, escapes)"),
        ));
    }
    if trimmed.chars().any(is_bidi_control) {
        return Err(Error::validation(
            field,
            format!(
                "{field} must not contain bidi control characters (U+202A to U+202E, U+2066 to U+2069, U+200E, U+200F, U+061C)"
            ),
        ));
    }
    let mut run = 0;
    for c in trimmed.chars() {
        run = if is_combining(c) { run + 1 } else { 0 };
        if run > MAX_COMBINING {
            return Err(Error::validation(
                field,
                format!(
                    "{field} may have at most {MAX_COMBINING} combining marks on one character"
                ),
            ));
        }
    }
    if !trimmed.chars().any(is_visible) {
        return Err(Error::validation(
            field,
            format!("{field} needs at least one visible character"),
        ));
    }
    Ok(trimmed.to_string())
}

/// Explicit bidi formatting: embeddings, overrides, isolates and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// A mark drawn on the character before it.
fn is_combining(c: char) -> bool {
    GeneralCategoryGroup::Mark.contains(CodePointMapData::<GeneralCategory>::new().get(c))
}

/// A character that draws something: a letter, digit, punctuation or symbol
/// that is not default-ignorable (U+3164 HANGUL FILLER is a letter that
/// draws nothing) and not the blank braille pattern.
fn is_visible(c: char) -> bool {
    let visible_kinds = GeneralCategoryGroup::Letter
        .union(GeneralCategoryGroup::Number)
        .union(GeneralCategoryGroup::Punctuation)
        .union(GeneralCategoryGroup::Symbol);
    visible_kinds.contains(CodePointMapData::<GeneralCategory>::new().get(c))
        && !is_invisible(c)
        && c != '\u{2800}'
}

/// Default-ignorable code points (zero-width spaces and joiners, bidi
/// controls, variation selectors, fillers): never drawn on their own.
fn is_invisible(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_text_needs_a_visible_character() {
        for invisible in [
            "",
            "   ",
            "\u{200b}\u{200d}\u{2060}",
            "\u{202e}\u{2066}\u{200f}",
            "\u{3164}\u{115f}",
            "\u{2800}",
            "\u{fe0f}\u{feff}",
            "\u{0301}",
        ] {
            assert!(display_text("title", invisible).is_err(), "{invisible:?}");
        }
        let ok = |raw: &str| display_text("title", raw).unwrap();
        assert_eq!(ok("  Guitar 101 \u{200b}"), "Guitar 101");
        assert_eq!(ok("Ω"), "Ω");
        assert_eq!(ok("学习"), "学习");
        assert_eq!(ok("🎸"), "🎸");
        assert_eq!(ok("👩\u{200d}🏫 Teacher"), "👩\u{200d}🏫 Teacher");
        assert_eq!(ok("Tiếng Việt"), "Tiếng Việt");
        // Decomposed "é" becomes the one composed character.
        assert_eq!(ok("Cafe\u{0301}"), "Caf\u{e9}");
    }

    #[test]
    fn display_text_refuses_controls_bidi_and_stacked_marks_by_name() {
        let zalgo = format!("Z{}algo", "\u{0336}\u{0337}".repeat(3));
        for bad in [
            "a\u{0}b",
            "red \u{1b}[31mtext",
            "two\nlines",
            "carriage\rreturn",
            "tab\there",
            "report\u{202e}fdp.exe",
            "isolate \u{2067}x\u{2069} y",
            zalgo.as_str(),
        ] {
            let err = display_text("variants[0].name", bad).unwrap_err();
            assert_eq!(err.field(), Some("variants[0].name"), "{bad:?}");
            assert!(err.detail().starts_with("variants[0].name "), "{bad:?}");
        }
    }

    #[test]
    fn takes_a_string() {
        let text = Text::parse_from_json(Some(json!("abc"))).unwrap();
        assert_eq!(text.as_str(), "abc");
    }

    #[test]
    fn refuses_numbers_booleans_and_null() {
        for value in [
            json!(12),
            json!(1.5),
            json!(true),
            json!(null),
            json!([]),
            json!({}),
        ] {
            assert!(
                Text::parse_from_json(Some(value.clone())).is_err(),
                "{value} was taken as text"
            );
        }
        assert!(Text::parse_from_json(None).is_err());
    }
}
