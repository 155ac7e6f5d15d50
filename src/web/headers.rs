//! Headers every response carries, whichever route (or layer) wrote it.

use axum::http::{HeaderValue, header};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower_http::set_header::SetResponseHeaderLayer;

/// The `Content-Security-Policy` of every response that sets none of its own: nothing may
/// load and nothing may frame it. Only the two HTML pages (Swagger UI and GraphiQL) need
/// more, and set policies made for them.
pub const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

type SetHeader = SetResponseHeaderLayer<HeaderValue>;

/// The stack [`layer`] builds.
pub type ResponseHeaders = Stack<
    SetHeader,
    Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Identity>>>>,
>;

/// Sets on every response:
/// - `X-Content-Type-Options: nosniff`: browsers keep to the declared type, so a JSON body
///   (which may echo what a client sent) is never run as a script or shown as a page;
/// - `Referrer-Policy: no-referrer`: a link followed from Swagger UI or GraphiQL tells no
///   other site where it came from;
/// - `X-Frame-Options: DENY`: no other site can frame the pages to trick clicks (for browsers
///   that do not know CSP's `frame-ancestors`);
/// - `Content-Security-Policy`: [`STRICT_CSP`], unless the route set a policy of its own;
/// - `Cache-Control: no-store`, unless the route set caching of its own: register, login,
///   refresh and every GraphQL answer may carry tokens, which no browser or proxy cache should
///   keep, and marking every response is simpler and safer than choosing the ones that do.
///
/// Single-header layers rather than tower-http's multiple-header one, which clones its list
/// of boxed values for every request.
pub fn layer() -> ServiceBuilder<ResponseHeaders> {
    ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(STRICT_CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
