//! Wall-clock time in the one format the API and the database use:
//! RFC 3339 UTC with milliseconds, fixed width, so text order is time order.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// Now, formatted for storage and for the wire.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Formats an instant the way [`now`] does.
pub fn format(at: OffsetDateTime) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Parses any RFC 3339 time, for query parameters.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width_utc() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(format(t), "2023-11-14T22:13:20.000Z");
        assert_eq!(parse("2023-11-14T22:13:20.000Z"), Some(t));
    }
}
