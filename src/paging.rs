//! Paging of list endpoints: `page` (>= 1) and `limit` (1..=100) query
//! parameters in, `X-Total-Count` and an RFC 8288 `Link` header out, the way
//! GitHub's API does; and the `from`/`to` bounds of a listed period.

use crate::error::Error;

/// A `from` or `to` query parameter: absent when missing or empty, else
/// an RFC 3339 time in the stored form (UTC, milliseconds), so it compares
/// with stored stamps as text; 400 naming `name` otherwise.
pub fn time_bound(name: &str, value: Option<&str>) -> Result<Option<String>, Error> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            crate::clock::parse(v)
                .map(crate::clock::format)
                .ok_or_else(|| Error::validation(name, format!("{name} must be an RFC 3339 time")))
        })
        .transpose()
}

/// Largest page size a client may ask for.
pub const MAX_LIMIT: u32 = 100;
/// Page size when none is given.
pub const DEFAULT_LIMIT: u32 = 20;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page {
    pub page: u32,
    pub limit: u32,
}

impl Page {
    /// Checks the raw parameters; each error names its parameter.
    pub fn new(page: Option<i64>, limit: Option<i64>) -> Result<Self, Error> {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(i64::from(DEFAULT_LIMIT));
        if !(1..=1_000_000).contains(&page) {
            return Err(Error::validation(
                "page",
                "page must be between 1 and 1000000",
            ));
        }
        if !(1..=i64::from(MAX_LIMIT)).contains(&limit) {
            return Err(Error::validation(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok(Self {
            page: page as u32,
            limit: limit as u32,
        })
    }

    /// SQL `OFFSET` of this page.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.limit)
    }

    /// Number of the last page for `total` items (1 when there are none).
    pub fn last_page(&self, total: u64) -> u64 {
        total.div_ceil(u64::from(self.limit)).max(1)
    }

    /// The `Link` header for this page: `first`, `prev`, `next` and `last`
    /// relations pointing at `path` with `query` (already normalized,
    /// without `page` and `limit`).
    pub fn link_header(&self, path: &str, query: &[(&str, String)], total: u64) -> String {
        let last = self.last_page(total);
        let page = u64::from(self.page);
        let mut links = Vec::with_capacity(4);
        let mut push = |n: u64, rel: &str| {
            let mut url = String::with_capacity(path.len() + 64);
            url.push_str(path);
            url.push('?');
            for (key, value) in query {
                url.push_str(key);
                url.push('=');
                url.push_str(&urlencode(value));
                url.push('&');
            }
            url.push_str(&format!("page={n}&limit={}", self.limit));
            links.push(format!("<{url}>; rel=\"{rel}\""));
        };
        push(1, "first");
        if page > 1 {
            push((page - 1).min(last), "prev");
        }
        if page < last {
            push(page + 1, "next");
        }
        push(last, "last");
        links.join(", ")
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Escapes `%`, `_` and `\` for a SQL `LIKE ... ESCAPE '\'` pattern.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_values_by_name() {
        assert_eq!(
            Page::new(Some(0), None).unwrap_err().code(),
            "VALIDATION_ERROR"
        );
        let e = Page::new(None, Some(101)).unwrap_err();
        assert!(e.detail().contains("limit"));
        assert!(Page::new(None, Some(0)).is_err());
        assert_eq!(Page::new(None, None).unwrap(), Page { page: 1, limit: 20 });
    }

    #[test]
    fn link_header_has_every_relation() {
        let p = Page::new(Some(2), Some(10)).unwrap();
        let h = p.link_header("/base/offerings", &[("q", "a b".into())], 35);
        assert_eq!(
            h,
            "</base/offerings?q=a%20b&page=1&limit=10>; rel=\"first\", \
             </base/offerings?q=a%20b&page=1&limit=10>; rel=\"prev\", \
             </base/offerings?q=a%20b&page=3&limit=10>; rel=\"next\", \
             </base/offerings?q=a%20b&page=4&limit=10>; rel=\"last\""
        );
    }

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("50%_a"), "%50\\%\\_a%");
    }
}

/// A page of a list: the bare JSON array with `X-Total-Count` and `Link`.
#[derive(poem_openapi::ApiResponse)]
pub enum Paged<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// One page of the list.
    #[oai(status = 200)]
    Ok(
        poem_openapi::payload::Json<Vec<T>>,
        /// Number of items matching the filters, on all pages.
        #[oai(header = "X-Total-Count")]
        u64,
        /// RFC 8288 links to the first, previous, next and last pages.
        #[oai(header = "Link")]
        String,
    ),
}

impl<T: poem_openapi::types::ToJSON + Send + Sync> Paged<T> {
    /// Wraps items with the paging headers for `path` and `query`.
    pub fn new(
        items: Vec<T>,
        total: u64,
        page: Page,
        path: &str,
        query: &[(&str, String)],
    ) -> Self {
        let link = page.link_header(path, query, total);
        Paged::Ok(poem_openapi::payload::Json(items), total, link)
    }
}
