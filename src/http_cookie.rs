//! Reading a cookie from a request's `Cookie` headers: the one reader of the centre's session
//! and language cookies and the gate booth's session cookies.
//!
//! What it never does: set a cookie, decode or unquote a value, or depend on the centre or the
//! gate that use it.

use axum::http::{HeaderMap, header};

/// The value of the cookie `name`, from every `Cookie` header of a request (the first pair
/// with that name and a non-empty value); `None` when there is none.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name && !v.is_empty()).then(|| v.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_cookie_is_found_among_others_and_across_headers() {
        let h = headers(&["a=1; gh_session=abc", "gh_lang=en"]);
        assert_eq!(cookie(&h, "gh_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "gh_lang").as_deref(), Some("en"));
        assert_eq!(cookie(&h, "gh"), None);
    }

    #[test]
    fn an_empty_value_counts_as_no_cookie() {
        assert_eq!(cookie(&headers(&["gh_session="]), "gh_session"), None);
        assert_eq!(cookie(&HeaderMap::new(), "gh_session"), None);
    }
}
