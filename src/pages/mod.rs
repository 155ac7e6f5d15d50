//! The two minimal pages the links in mails open when no frontend serves them
//! (`EMAIL_LINK_BASE` unset): `/verify-email` and `/reset-password`. Plain HTML forms, no
//! script and nothing loaded from anywhere; the policy allows the form to post back here and
//! nothing else.
//!
//! Opening a link changes nothing: the GET shows a form and only its POST uses the token, so
//! a mail scanner that fetches every link cannot use one up. The token travels in the form's
//! body from then on, out of the address bar, and the access log records paths only; every
//! response says `Referrer-Policy: no-referrer` (see `web::headers`).

use axum::Form;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::error::AppError;
use crate::infra::opaque_token;
use crate::state::AppState;

/// The verification page's path, as links in mails name it.
pub const VERIFY_EMAIL_PATH: &str = "/verify-email";
/// The reset page's path, as links in mails name it.
pub const RESET_PASSWORD_PATH: &str = "/reset-password";

/// The pages' policy: no script, no style sheet, no image; the form may post back only here.
pub const PAGES_CSP: &str =
    "default-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The two pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(VERIFY_EMAIL_PATH, get(verify_form).post(verify))
        .route(RESET_PASSWORD_PATH, get(reset_form).post(reset))
}

/// A link's query string, or a form's body: the token.
#[derive(Debug, Deserialize)]
pub struct TokenParam {
    /// The token of the link.
    #[serde(default)]
    token: String,
}

/// The reset form's body.
#[derive(Debug, Deserialize)]
pub struct ResetParams {
    /// The token of the link.
    #[serde(default)]
    token: String,
    /// The new password.
    #[serde(default)]
    password: String,
    /// The new password again.
    #[serde(default)]
    confirm: String,
}

async fn verify_form(State(state): State<AppState>, Query(q): Query<TokenParam>) -> Response {
    if !opaque_token::is_well_formed(&q.token) {
        return bad_link(&state);
    }
    page(
        &state,
        StatusCode::OK,
        "Verify your email address",
        &format!(
            "<form method=\"post\" action=\"{VERIFY_EMAIL_PATH}\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <p><button type=\"submit\">Verify my address</button></p></form>",
            q.token
        ),
    )
}

async fn verify(State(state): State<AppState>, Form(form): Form<TokenParam>) -> Response {
    match state.users.verify_email(&form.token).await {
        Ok(_) => page(
            &state,
            StatusCode::OK,
            "Email address verified",
            "<p>Thank you: your address is verified. You can close this page.</p>",
        ),
        Err(AppError::Unauthenticated(_)) => bad_link(&state),
        Err(e) => failure(&state, &e),
    }
}

async fn reset_form(State(state): State<AppState>, Query(q): Query<TokenParam>) -> Response {
    if !opaque_token::is_well_formed(&q.token) {
        return bad_link(&state);
    }
    reset_page(&state, StatusCode::OK, &q.token, None)
}

async fn reset(State(state): State<AppState>, Form(form): Form<ResetParams>) -> Response {
    if !opaque_token::is_well_formed(&form.token) {
        return bad_link(&state);
    }
    if form.password != form.confirm {
        return reset_page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.token,
            Some("The two passwords differ."),
        );
    }
    match state.users.reset_password(&form.token, form.password).await {
        Ok(()) => page(
            &state,
            StatusCode::OK,
            "Password changed",
            "<p>Your password is changed, and every device signed in to your account was \
             signed out. Sign in with the new password.</p>",
        ),
        Err(AppError::Unauthenticated(_)) => bad_link(&state),
        Err(AppError::Validation { message, .. }) => reset_page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.token,
            Some(&message),
        ),
        Err(e) => failure(&state, &e),
    }
}

fn reset_page(
    state: &AppState,
    status: StatusCode,
    token: &str,
    problem: Option<&str>,
) -> Response {
    let problem = problem
        .map(|p| format!("<p><strong>{}</strong></p>", escape(p)))
        .unwrap_or_default();
    page(
        state,
        status,
        "Choose a new password",
        &format!(
            "{problem}<form method=\"post\" action=\"{RESET_PASSWORD_PATH}\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <p><label>New password<br><input type=\"password\" name=\"password\" \
             autocomplete=\"new-password\" minlength=\"8\" maxlength=\"128\" required></label></p>\
             <p><label>Again<br><input type=\"password\" name=\"confirm\" \
             autocomplete=\"new-password\" minlength=\"8\" maxlength=\"128\" required></label></p>\
             <p><button type=\"submit\">Change my password</button></p></form>"
        ),
    )
}

fn bad_link(state: &AppState) -> Response {
    page(
        state,
        StatusCode::BAD_REQUEST,
        "This link does not work",
        "<p>The link is invalid, was already used, or has expired. Ask for a new one.</p>",
    )
}

fn failure(state: &AppState, err: &AppError) -> Response {
    let (status, text) = match err {
        AppError::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts; try again later.",
        ),
        AppError::Unavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable; try again shortly.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong; try again later.",
        ),
    };
    if let Some(fault) = err.server_fault() {
        tracing::warn!(error = %fault.cause, "{}", fault.what);
    }
    page(
        state,
        status,
        "Something went wrong",
        &format!("<p>{text}</p>"),
    )
}

fn page(state: &AppState, status: StatusCode, title: &str, body: &str) -> Response {
    let app = escape(&state.config.mail.app_name);
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title} — {app}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGES_CSP),
    );
    response
}

/// `text` with HTML's special characters escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
