//! The current-user extractor of the REST routes: a handler that takes [`CurrentUser`] runs
//! only for a request with a valid token; any other request gets 401 with
//! `WWW-Authenticate: Bearer` (added where `AppError` becomes a response).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::token_from_header;
use crate::error::AppError;
use crate::state::AppState;
use crate::users::service::{self, Viewer};

/// The authenticated caller, from `Authorization: Bearer <token>` or a bare token.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Viewer);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| {
                // A token is ASCII; anything else cannot be one.
                value
                    .to_str()
                    .map_err(|_| AppError::Unauthenticated("malformed Authorization header"))
                    .and_then(token_from_header)
            })
            .transpose()?;
        service::authenticate(state, token).await.map(CurrentUser)
    }
}
