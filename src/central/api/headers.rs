//! Security headers on every reply of the central server's HTTP side — pages, JSON, exports,
//! errors and axum's own 404/405 — added by one outermost layer ([`security_headers`]).
//!
//! - `Content-Security-Policy`: scripts, styles, images and `fetch` only from the server itself,
//!   no inline script or style (the pages keep theirs in `/assets`), no framing, no `<base>`,
//!   no plugins. A handler that needs another policy sets its own (the printable daily report:
//!   one inline `<style>`, no script at all).
//! - `X-Frame-Options: DENY` (for browsers without `frame-ancestors`), `X-Content-Type-Options:
//!   nosniff`, `Referrer-Policy: no-referrer` (no page address, which may carry a plate or a
//!   name in its query, leaves the campus network).
//! - `Cache-Control: no-store` unless the handler chose a policy (the static assets do): pages
//!   and replies carry names, phone numbers and plates, which must not stay in a booth PC's
//!   cache or a proxy.
//!
//! What it never does: override a header the handler set, or touch the body.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The pages' and API's content security policy.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Every header this layer sets, with its value.
pub const HEADERS: &[(HeaderName, &str)] = &[
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
];

/// Middleware: adds [`HEADERS`] that the response does not already have.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
    }
    response
}
