//! The files the GraphiQL page loads, built into the binary: pinned GraphiQL with its style
//! sheet (fonts inlined), React's production builds, and the page's own script and style.
//! Each is served under a name that carries a hash of its content, so a browser may keep it
//! for a year: a new version of a file is a new name.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Where the assets are served, below the page's own path.
pub const ASSETS_PATH: &str = "/graphiql/assets";

/// One built-in file.
struct Source {
    /// Its name before the hash is added (`react.production.min.js`).
    name: &'static str,
    content: &'static [u8],
    content_type: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The files in the order the page loads them; the vendored versions are listed in
/// `vendor/README.md`.
const SOURCES: [Source; 6] = [
    Source {
        name: "graphiql.min.css",
        content: include_bytes!("vendor/graphiql.min.css"),
        content_type: CSS,
    },
    Source {
        name: "page.css",
        content: include_bytes!("page.css"),
        content_type: CSS,
    },
    Source {
        name: "react.production.min.js",
        content: include_bytes!("vendor/react.production.min.js"),
        content_type: JS,
    },
    Source {
        name: "react-dom.production.min.js",
        content: include_bytes!("vendor/react-dom.production.min.js"),
        content_type: JS,
    },
    Source {
        name: "graphiql.min.js",
        content: include_bytes!("vendor/graphiql.min.js"),
        content_type: JS,
    },
    Source {
        name: "page.js",
        content: include_bytes!("page.js"),
        content_type: JS,
    },
];

/// A built-in file under its hashed name.
#[derive(Debug)]
pub struct Asset {
    /// `react.production.min.3f2a9c1e0b7d4e6a.js`: the name with the first 16 hex digits of
    /// the content's SHA-256 before the extension.
    pub file_name: String,
    content: Bytes,
    content_type: HeaderValue,
}

impl Asset {
    /// The path the page refers to it by.
    pub fn path(&self) -> String {
        format!("{ASSETS_PATH}/{}", self.file_name)
    }

    /// Whether it is a style sheet (else a script).
    pub fn is_style(&self) -> bool {
        self.file_name.ends_with(".css")
    }
}

/// Every asset, hashed once at start-up.
pub fn all() -> Vec<Asset> {
    SOURCES
        .iter()
        .map(|source| {
            let digest = Sha256::digest(source.content);
            let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            let (stem, extension) = source.name.rsplit_once('.').unwrap_or((source.name, "bin"));
            Asset {
                file_name: format!("{stem}.{hash}.{extension}"),
                content: Bytes::from_static(source.content),
                content_type: HeaderValue::from_static(source.content_type),
            }
        })
        .collect()
}

/// `GET /graphiql/assets/{file}`: the asset of that hashed name, cacheable for a year; any
/// other name is 404 (an old hash included: the page that asked for it is out of date).
pub async fn asset(
    State(page): State<super::GraphiqlPage>,
    Path(file_name): Path<String>,
) -> Response {
    match page.assets.iter().find(|a| a.file_name == file_name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type.clone()),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            asset.content.clone(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_hash_of_the_content() {
        let assets = all();
        assert_eq!(assets.len(), SOURCES.len());
        for (asset, source) in assets.iter().zip(&SOURCES) {
            let (stem, extension) = source.name.rsplit_once('.').unwrap();
            let hash = asset
                .file_name
                .strip_prefix(&format!("{stem}."))
                .and_then(|rest| rest.strip_suffix(&format!(".{extension}")))
                .unwrap();
            assert_eq!(hash.len(), 16);
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
            let full = format!("{:x}", Sha256::digest(source.content));
            assert!(full.starts_with(hash));
        }
    }
}
