//! The layering rule, checked on the source: each top-level module of `src/` has a layer,
//! and may use only modules of lower layers (plus itself). The domain (everything below the
//! adapters) knows no transport: it never names axum, async-graphql, tower, hyper or utoipa.
//! Since every use goes strictly downwards, the modules' import graph cannot have a circle.
//!
//! The README's "Architecture" section describes the same layers.

// clippy.toml's test allowance covers #[test] functions only, not the helpers around them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use the modules of any lower layer, never one of
/// its own layer (save itself) or above.
const LAYERS: &[&[&str]] = &[
    &["config"],
    &["infra"],
    &["db"],
    &["error"],
    &["mail", "events"],
    &["accounts", "ratelimit"],
    &["signins"],
    &["users"],
    &["mfa"],
    &["state"],
    &["web"],
    &["graphql", "rest", "pages"],
];

/// The layers that make up the domain and what it stands on: no transport here.
const DOMAIN: &[&str] = &[
    "config",
    "infra",
    "db",
    "error",
    "mail",
    "events",
    "accounts",
    "ratelimit",
    "signins",
    "users",
    "mfa",
];

/// Crates that are transports or HTTP machinery.
const TRANSPORT_CRATES: &[&str] = &[
    "axum",
    "async_graphql",
    "tower",
    "tower_http",
    "hyper",
    "hyper_util",
    "utoipa",
    "utoipa_axum",
    "utoipa_swagger_ui",
];

/// Items exported at the crate's root on behalf of a module (`#[macro_export]` macros).
const ROOT_ITEMS: &[(&str, &str)] = &[("with_conn", "db")];

fn layer_of(module: &str) -> Option<usize> {
    let module = ROOT_ITEMS
        .iter()
        .find(|(item, _)| *item == module)
        .map_or(module, |(_, owner)| owner);
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file of `src/` belongs to (`src/signins/store/redis.rs` is
/// `signins`); `None` for `lib.rs` and `main.rs`, which sit above every layer.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .to_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
    (name != "lib" && name != "main").then_some(name)
}

/// The code of a line, without its comment: doc links to other modules are not uses.
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The modules a line names as `crate::<module>`.
fn crate_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code(line);
    while let Some(i) = rest.find("crate::") {
        // `$crate::` in a macro is the same crate.
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    found
}

/// Whether a line names `krate` as a path root (`axum::…`, `use axum;`).
fn names_crate(line: &str, krate: &str) -> bool {
    let code = code(line);
    code.match_indices(krate).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = &code[i + krate.len()..];
        let starts_path =
            before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        starts_path && (after.starts_with("::") || after.starts_with(';'))
    })
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_has_a_layer() {
    let src = src();
    let modules: BTreeSet<String> = rust_files(&src)
        .iter()
        .filter_map(|file| module_of(&src, file))
        .collect();
    let unplaced: Vec<&String> = modules.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "give these modules a layer in tests/architecture.rs and the README: {unplaced:?}"
    );
}

#[test]
fn modules_use_only_lower_layers() {
    let src = src();
    let mut violations = Vec::new();
    for file in rust_files(&src) {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let Some(own) = layer_of(&module) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for used in crate_modules(line) {
                if used == module
                    || layer_of(&used) == Some(own)
                        && ROOT_ITEMS
                            .iter()
                            .any(|(item, owner)| *item == used && *owner == module)
                {
                    continue;
                }
                let allowed = layer_of(&used).is_some_and(|layer| layer < own);
                if !allowed {
                    violations.push(format!(
                        "{}:{}: {module} uses crate::{used}",
                        file.strip_prefix(&src).unwrap().display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "uses that go sideways or up the layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_domain_knows_no_transport() {
    let src = src();
    let mut violations = Vec::new();
    for file in rust_files(&src) {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        if !DOMAIN.contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for krate in TRANSPORT_CRATES {
                if names_crate(line, krate) {
                    violations.push(format!(
                        "{}:{}: {module} names {krate}",
                        file.strip_prefix(&src).unwrap().display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "the domain must not know a transport:\n{}",
        violations.join("\n")
    );
}

/// The checks themselves: they must see what they look for.
#[test]
fn the_checks_see_uses() {
    assert_eq!(
        crate_modules("use crate::state::AppState; // crate::web"),
        ["state"]
    );
    assert_eq!(
        crate_modules("let x = $crate::db::retry::LockRetries::default();"),
        ["db"]
    );
    assert!(names_crate("use axum::Json;", "axum"));
    assert!(names_crate("    let r: axum::response::Response;", "axum"));
    assert!(!names_crate("use crate::web::axum_like;", "axum"));
    assert!(!names_crate("// axum::Json in a comment", "axum"));
    assert!(names_crate("use tower_http::cors;", "tower_http"));
    assert!(!names_crate("use tower_http::cors;", "tower"));
}
