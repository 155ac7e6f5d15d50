//! The `/users` handlers: parse, call the services, shape the reply. The
//! `#[utoipa::path]` on each is its entry in the OpenAPI document, registered together with the
//! route in `rest::router`, so the two cannot drift apart.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{Location, RestError, ValidationErrorBody};
use super::extract::{CurrentUser, JsonBody, JsonOrForm, QueryParams, UserId};
use super::responses::{NoValidToken, TooManyAttempts};
use super::types::{
    LoginForm, LoginRequest, RegisterRequest, Registered, Token, UpdateRequest, User, UserData,
};
use crate::accounts::model::{Role, UserView};
use crate::error::AppError;
use crate::signins::SignInContext;
use crate::state::AppState;
use crate::users::{CurrentPassword, DEFAULT_PAGE, Freshness, PageRequest, UserFilter, UserKey};
use crate::web::errors::ErrorBody;

/// Registers an account (role USER) and signs it in.
///
/// Registrations are limited per client address (429).
#[utoipa::path(
    post,
    path = "/users/register",
    tag = "users",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered and signed in", body = Registered),
        (status = 409, description = "Username or email already taken", body = ErrorBody),
        (status = 422, description = "A field fails validation", body = ValidationErrorBody),
        TooManyAttempts,
    )
)]
pub async fn register(
    State(state): State<AppState>,
    context: SignInContext,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<Json<Registered>, RestError> {
    let session = state.users.register(body.into(), &context).await?;
    Ok(Json(session.into()))
}

/// Creates an account and signs it in.
///
/// Like `/users/register` (role USER), but answers 201 with the new user's URL in `Location`.
/// Registrations are limited per client address (429).
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Created and signed in", body = Registered,
            headers(("Location" = String, description = "`/users/{id}` of the new user"))),
        (status = 409, description = "Username or email already taken", body = ErrorBody),
        (status = 422, description = "A field fails validation", body = ValidationErrorBody),
        TooManyAttempts,
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    context: SignInContext,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<Response, RestError> {
    let session = state.users.register(body.into(), &context).await?;
    let location = format!("/users/{}", session.user.id);
    let body: Registered = session.into();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

/// Signs in and returns a new token.
///
/// Each login is a separate session. Takes JSON or the OAuth2 password form (what Swagger
/// UI's "Authorize" sends). A wrong password and an unknown username give the same answer.
/// Attempts are limited per client address, and failed ones per username (429).
///
/// For an account with two-step sign-in on, the right password answers 401 with
/// `"mfa_required": true` and an `mfa_token`: complete the sign-in at `/users/login/mfa`.
#[utoipa::path(
    post,
    path = "/users/login",
    tag = "users",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Signed in", body = Token),
        (status = 401, description = "Wrong username or password; or the right password of an account with two-step sign-in on (`mfa_required`, `mfa_token`)", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 422, description = "A field is missing", body = ValidationErrorBody),
        TooManyAttempts,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    context: SignInContext,
    JsonOrForm(body): JsonOrForm<LoginRequest>,
) -> Result<Json<Token>, RestError> {
    let session = state
        .sign_ins
        .login(&body.username, body.password, &context)
        .await?;
    Ok(Json(session.into()))
}

/// Revokes the token that made the request.
#[utoipa::path(
    post,
    path = "/users/logout",
    tag = "users",
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 204, description = "Signed out; the token no longer works"),
        NoValidToken,
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
) -> Result<StatusCode, RestError> {
    state.sign_ins.logout(&viewer).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own account.
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "users",
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller", body = UserData),
        NoValidToken,
    )
)]
pub async fn me(CurrentUser(viewer): CurrentUser) -> Json<UserData> {
    Json(UserView::own(viewer.user).into())
}

/// One user, by id.
///
/// `email` is null unless the caller is that user or an admin.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        NoValidToken,
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub async fn find_user(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
    UserId(id): UserId,
) -> Result<Json<User>, RestError> {
    // A GET writes nothing: another user may be read from a replica.
    let user = state
        .users
        .find(&viewer, UserKey::Id(id), Freshness::MayLag)
        .await?;
    user.map(|user| Json(user.into()))
        .ok_or_else(|| AppError::NotFound("user not found").into())
}

/// Users in registration order, a page at a time; optionally filtered.
///
/// Keyset pagination: every page costs the same. While more remain,
/// `Link: </users?limit=…&after=…>; rel="next"` points at the next page (keeping the filter).
/// `email` is null except on the caller's own entry (or for an admin). With `username_prefix`
/// the list is ordered by username (letter case ignored), else with `email_prefix` by email.
/// `email_prefix` and `disabled` are for admins only (403).
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100,
            description = "Users per page, 1 to 100 (default 20)"),
        ("after" = Option<String>, Query,
            description = "Opaque cursor: start after the last user of a previous page with the same filter"),
        ("username_prefix" = Option<String>, Query,
            description = "Only usernames that begin with this, in any letter case (1–32 characters from A–Z a–z 0–9 _ -)"),
        ("email_prefix" = Option<String>, Query,
            description = "Only emails that begin with this, in any letter case (admins only)"),
        ("role" = Option<String>, Query, description = "Only users of this role: `user` or `admin`"),
        ("disabled" = Option<bool>, Query,
            description = "Only disabled (`true`) or enabled (`false`) users (admins only)"),
    ),
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "A page of users", body = Vec<User>,
            headers(("Link" = String, description = "`</users?limit=…&after=…>; rel=\"next\"` while more remain"))),
        NoValidToken,
        (status = 403, description = "Filtering by `email_prefix` or `disabled` without being an admin", body = ErrorBody),
        (status = 422, description = "`limit` out of range, `after` not a cursor of this filter, or a filter value invalid", body = ValidationErrorBody),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
    query: QueryParams,
) -> Result<Response, RestError> {
    let limit = query.integer("limit")?.unwrap_or(DEFAULT_PAGE);
    let filter = UserFilter {
        username_prefix: query.get(USERNAME_PREFIX).map(str::to_owned),
        email_prefix: query.get(EMAIL_PREFIX).map(str::to_owned),
        role: query.get(ROLE).map(parse_role).transpose()?,
        disabled: query.boolean(DISABLED)?,
    };
    let request = PageRequest {
        size: limit,
        after: query.get("after").map(str::to_owned),
        filter,
    };
    let page = state
        .users
        .list(&viewer, request, Freshness::MayLag)
        .await?;
    let link = page
        .end_cursor()
        .filter(|_| page.has_next)
        .and_then(|cursor| next_link(limit, cursor, &query));
    let users: Vec<User> = page.users.into_iter().map(|(_, u)| u.into()).collect();
    let mut response = Json(users).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// The filter parameters of `GET /users`, which the `Link` of the next page carries on.
const USERNAME_PREFIX: &str = "username_prefix";
const EMAIL_PREFIX: &str = "email_prefix";
const ROLE: &str = "role";
const DISABLED: &str = "disabled";

/// A role as the query string spells it: `user` or `admin`, in any letter case (GraphQL's
/// `USER` works too).
fn parse_role(value: &str) -> Result<Role, RestError> {
    match value.to_ascii_lowercase().as_str() {
        "user" => Ok(Role::User),
        "admin" => Ok(Role::Admin),
        _ => Err(RestError::Invalid {
            location: Location::Query,
            name: ROLE,
            message: "role must be user or admin".to_owned(),
        }),
    }
}

/// The `Link` header value of the next page: a relative URL that keeps `limit` and the
/// filter. (Always `Some`: percent-encoding leaves only visible ASCII, which a header value
/// accepts.)
fn next_link(limit: i64, cursor: &str, query: &QueryParams) -> Option<HeaderValue> {
    let mut url = form_urlencoded::Serializer::new(String::new());
    url.append_pair("limit", &limit.to_string());
    for name in [USERNAME_PREFIX, EMAIL_PREFIX, ROLE, DISABLED] {
        if let Some(value) = query.get(name) {
            url.append_pair(name, value);
        }
    }
    url.append_pair("after", cursor);
    HeaderValue::try_from(format!("</users?{}>; rel=\"next\"", url.finish())).ok()
}

/// Changes the caller's email and/or password.
///
/// Give at least one. A password change signs out every other session of the caller; the
/// token that asked stays valid. The legacy body has no current-password field, so none is
/// asked. Email changes are limited per user (429).
#[utoipa::path(
    put,
    path = "/users",
    tag = "users",
    request_body = UpdateRequest,
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "The updated user", body = UserData),
        NoValidToken,
        (status = 409, description = "Email already taken", body = ErrorBody),
        (status = 422, description = "Neither field given, or a field fails validation", body = ValidationErrorBody),
        TooManyAttempts,
    )
)]
pub async fn update_me(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
    context: SignInContext,
    JsonBody(body): JsonBody<UpdateRequest>,
) -> Result<Json<UserData>, RestError> {
    let user = state
        .users
        .update_me(&viewer, body.into(), CurrentPassword::NotAsked, &context)
        .await?;
    Ok(Json(user.into()))
}

/// Deletes the caller's account and revokes all its tokens.
#[utoipa::path(
    delete,
    path = "/users",
    tag = "users",
    security(("OAuth2PasswordBearer" = []), ("bearerAuth" = [])),
    responses(
        (status = 204, description = "Deleted; every token of the account is revoked"),
        NoValidToken,
        (status = 403, description = "The caller is the last admin, who cannot be deleted", body = ErrorBody),
    )
)]
pub async fn delete_me(
    State(state): State<AppState>,
    CurrentUser(viewer): CurrentUser,
) -> Result<StatusCode, RestError> {
    state.users.delete_me(&viewer).await?;
    Ok(StatusCode::NO_CONTENT)
}
