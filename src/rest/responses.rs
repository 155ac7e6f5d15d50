//! The OpenAPI responses several routes share, written once: each route lists them by type
//! in its `#[utoipa::path(responses(…))]`.

use utoipa::IntoResponses;

use crate::web::errors::ErrorBody;

/// 401 for a route that needs a token: none, or not a valid one.
#[derive(Debug, IntoResponses)]
#[response(
    status = 401,
    description = "No valid token",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct NoValidToken(pub ErrorBody);

/// 429 for a rate-limited route: what is counted is in the route's description.
#[derive(Debug, IntoResponses)]
#[response(
    status = 429,
    description = "Too many attempts",
    headers(("Retry-After" = u64, description = "Seconds until a retry may succeed"))
)]
pub struct TooManyAttempts(pub ErrorBody);
