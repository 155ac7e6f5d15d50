//! The GraphiQL playground page, built once, and the Content-Security-Policy that lets exactly
//! that page run: its inline script and style by their hashes, and the CDN it loads GraphiQL
//! and React from.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::web::headers::STRICT_CSP;

/// Where async-graphql's GraphiQL template loads React, GraphiQL's script and style sheet
/// from (and the style sheet its fonts).
const CDN: &str = "https://unpkg.com";
/// Where the template takes the page's icon from.
const ICON_ORIGIN: &str = "https://graphql.org";

/// The page and its policy, cheap to clone (both are reference-counted).
#[derive(Debug, Clone)]
pub struct GraphiqlPage {
    html: Bytes,
    csp: HeaderValue,
}

impl GraphiqlPage {
    /// The playground, sending its requests to `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        let html = async_graphql::http::GraphiQLSource::build()
            .endpoint(endpoint)
            .title("user-api GraphiQL")
            .finish();
        // The policy is ASCII by construction; were it not, the strict policy is the safe
        // fallback (the page would not run, but nothing else would either).
        let csp = HeaderValue::from_str(&policy_for(&html))
            .unwrap_or_else(|_| HeaderValue::from_static(STRICT_CSP));
        GraphiqlPage {
            html: Bytes::from(html),
            csp,
        }
    }
}

/// `GET /graphiql`: the page, with the policy made for it.
pub async fn graphiql(State(page): State<GraphiqlPage>) -> Response {
    (
        [(header::CONTENT_SECURITY_POLICY, page.csp)],
        Html(page.html),
    )
        .into_response()
}

/// The policy of `html`: its inline scripts and styles allowed by hash (not
/// `'unsafe-inline'`, which would let injected markup run too), the CDN for what it loads,
/// requests only to this server, and no framing.
fn policy_for(html: &str) -> String {
    let scripts = hashes(&inline_elements(html, "script"));
    let styles = hashes(&inline_elements(html, "style"));
    format!(
        "default-src 'none'; script-src {scripts} {CDN}; style-src {styles} {CDN}; \
         font-src {CDN} data:; img-src {ICON_ORIGIN} data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// The CSP source expressions of `texts`, each `'sha256-<base64>'`.
fn hashes(texts: &[&str]) -> String {
    texts
        .iter()
        .map(|text| {
            format!(
                "'sha256-{}'",
                BASE64.encode(Sha256::digest(text.as_bytes()))
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The content of each `<tag>` element of `html` without a `src` attribute (an inline script
/// or style), exactly what a browser hashes to check it against the policy: every character
/// between the opening and the closing tag.
fn inline_elements<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after_name = &rest[start + open.len()..];
        let Some(tag_end) = after_name.find('>') else {
            break;
        };
        let attributes = &after_name[..tag_end];
        let content_and_rest = &after_name[tag_end + 1..];
        let Some(content_end) = content_and_rest.find(&close) else {
            break;
        };
        // `<scripts` would be another element; `src` makes it an external one.
        let same_element = attributes.is_empty() || attributes.starts_with(char::is_whitespace);
        if same_element && !attributes.contains("src=") {
            found.push(&content_and_rest[..content_end]);
        }
        rest = &content_and_rest[content_end + close.len()..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_elements_are_found_and_external_ones_skipped() {
        let html = "<head><style>a{}</style><script src=\"x.js\"></script></head>\
                    <body><script>\n  go();\n</script><scripts></scripts></body>";
        assert_eq!(inline_elements(html, "style"), ["a{}"]);
        assert_eq!(inline_elements(html, "script"), ["\n  go();\n"]);
    }

    #[test]
    fn the_policy_covers_the_page() {
        let page = GraphiqlPage::new("/graphql");
        let html = std::str::from_utf8(&page.html).unwrap();
        let policy = page.csp.to_str().unwrap();
        let scripts = inline_elements(html, "script");
        assert_eq!(scripts.len(), 1, "the template has one inline script");
        for text in scripts.iter().chain(&inline_elements(html, "style")) {
            assert!(policy.contains(&hashes(&[text])), "{policy}");
        }
        // Everything the page loads from elsewhere comes from an origin the policy names.
        for attribute in ["src=\"", "href=\""] {
            for (i, _) in html.match_indices(attribute) {
                let url = &html[i + attribute.len()..];
                let url = &url[..url.find('"').unwrap()];
                let origin = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                assert!(policy.contains(&origin), "{url} is not allowed by {policy}");
            }
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        assert!(policy.ends_with("frame-ancestors 'none'"), "{policy}");
    }
}
