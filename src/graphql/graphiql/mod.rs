//! The GraphiQL playground: a page and the files it loads, all built into the binary (see
//! [`assets`]), so it works with no internet access and loads nothing from another host. Its
//! Content-Security-Policy allows exactly that: scripts, styles and requests to this server
//! only, no inline script or style, fonts from the style sheet's `data:` URLs.

pub mod assets;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use assets::Asset;

/// The page's path.
pub const GRAPHIQL_PATH: &str = "/graphiql";

/// The page's policy. `connect-src 'self'` covers the WebSocket to this server too (CSP
/// level 3 matches `ws:`/`wss:` to the page's own host under `'self'`).
pub const GRAPHIQL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     font-src data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The page and its assets, cheap to clone.
#[derive(Debug, Clone)]
pub struct GraphiqlPage {
    html: Bytes,
    assets: Arc<[Asset]>,
}

impl GraphiqlPage {
    /// The playground, sending its requests to `endpoint` (a path on this server).
    pub fn new(endpoint: &str) -> Self {
        let assets: Arc<[Asset]> = assets::all().into();
        let styles: String = assets
            .iter()
            .filter(|a| a.is_style())
            .map(|a| format!("<link rel=\"stylesheet\" href=\"{}\">\n", a.path()))
            .collect();
        let scripts: String = assets
            .iter()
            .filter(|a| !a.is_style())
            .map(|a| format!("<script src=\"{}\"></script>\n", a.path()))
            .collect();
        let endpoint = escape_attribute(endpoint);
        let html = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>user-api GraphiQL</title>\n<link rel=\"icon\" href=\"data:,\">\n{styles}\
             </head>\n<body>\n<div id=\"graphiql\" data-endpoint=\"{endpoint}\">Loading…</div>\n\
             {scripts}</body>\n</html>\n"
        );
        GraphiqlPage {
            html: Bytes::from(html),
            assets,
        }
    }

    /// `GET /graphiql` and `GET /graphiql/assets/{file}`, for a router of any state.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        Router::new()
            .route(GRAPHIQL_PATH, get(graphiql))
            .route(
                &format!("{}/{{file}}", assets::ASSETS_PATH),
                get(assets::asset),
            )
            .with_state(self)
    }
}

/// `GET /graphiql`: the page, with its policy. Not cached (the server's default), so a new
/// version of the server is picked up at once, with its new asset names.
async fn graphiql(State(page): State<GraphiqlPage>) -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(GRAPHIQL_CSP),
        )],
        Html(page.html),
    )
        .into_response()
}

/// `text` as an HTML attribute value inside double quotes.
fn escape_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_every_asset_from_this_server_and_runs_nothing_inline() {
        let page = GraphiqlPage::new("/graphql");
        let html = std::str::from_utf8(&page.html).unwrap();
        for asset in page.assets.iter() {
            assert!(html.contains(&format!("\"{}\"", asset.path())), "{html}");
        }
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<style"), "{html}");
        assert!(!html.contains("//"), "no absolute URL: {html}");
        assert!(html.contains("data-endpoint=\"/graphql\""), "{html}");
        assert!(!GRAPHIQL_CSP.contains("unsafe"));
    }
}
