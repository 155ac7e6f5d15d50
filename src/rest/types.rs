//! Request and response bodies of the REST routes, as the legacy API spells them. `///`
//! comments here become descriptions in the OpenAPI document.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use super::error::RestError;
use super::extract::{Fields, FromFields};
use crate::accounts::model::UserView;
use crate::signins::SignedIn;
use crate::users::{NewUser, UpdateMe};

/// The `token_type` of every token.
const TOKEN_TYPE: &str = "bearer";

/// Writes a time as the GraphQL `DateTime` does: RFC 3339, UTC, whole seconds.
fn rfc3339<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A registered user.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// Unique, assigned by the server (a UUIDv7); ids sort by registration time.
    #[schema(example = "01936f3e-8a4b-7c3d-9e2f-1a2b3c4d5e6f")]
    pub id: String,
    /// 3–32 characters from A–Z a–z 0–9 _ -; unique regardless of letter case.
    #[schema(example = "alice")]
    pub username: String,
    /// Visible to the user themself and to admins; null for anyone else.
    #[schema(required = true, example = "alice@example.com")]
    pub email: Option<String>,
    /// When the account was created: RFC 3339, UTC.
    #[serde(serialize_with = "rfc3339")]
    #[schema(example = "2026-11-27T09:41:07Z")]
    pub registration_date: DateTime<Utc>,
}

impl From<UserView> for User {
    fn from(user: UserView) -> Self {
        User {
            id: user.id,
            username: user.username,
            email: user.email,
            registration_date: user.registration_date,
        }
    }
}

/// A user, wrapped as the legacy API wraps single results.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserData {
    /// The user.
    pub data: User,
}

impl From<UserView> for UserData {
    fn from(user: UserView) -> Self {
        UserData { data: user.into() }
    }
}

/// A new account and its first token.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The new user.
    pub data: User,
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Exchange at `POST /users/refresh` for a new pair; each one works once.
    pub refresh_token: String,
}

impl From<SignedIn> for Registered {
    fn from(session: SignedIn) -> Self {
        Registered {
            data: session.user.into(),
            access_token: session.token.token,
            token_type: TOKEN_TYPE,
            refresh_token: session.refresh_token,
        }
    }
}

/// A new session's token, in the shape of an OAuth2 token response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 1800)]
    pub expires_in: u64,
    /// Exchange at `POST /users/refresh` for a new pair; each one works once.
    pub refresh_token: String,
}

impl From<SignedIn> for Token {
    fn from(session: SignedIn) -> Self {
        Token {
            access_token: session.token.token,
            token_type: TOKEN_TYPE,
            expires_in: session.token.expires_in,
            refresh_token: session.refresh_token,
        }
    }
}

/// Registration details.
#[derive(Debug, ToSchema)]
pub struct RegisterRequest {
    /// 3–32 characters from A–Z a–z 0–9 _ -; unique regardless of letter case.
    #[schema(
        example = "alice",
        min_length = 3,
        max_length = 32,
        pattern = "^[A-Za-z0-9_-]+$"
    )]
    pub username: String,
    /// 8–128 characters; any characters.
    #[schema(example = "correct horse battery", min_length = 8, max_length = 128)]
    pub password: String,
    /// A valid address, at most 254 characters; unique regardless of letter case.
    #[schema(example = "alice@example.com", format = Email, max_length = 254)]
    pub email: String,
}

impl FromFields for RegisterRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(RegisterRequest {
            username: fields.required_string("username")?,
            password: fields.required_string("password")?,
            email: fields.required_string("email")?,
        })
    }
}

impl From<RegisterRequest> for NewUser {
    fn from(body: RegisterRequest) -> Self {
        NewUser {
            username: body.username,
            email: body.email,
            password: body.password,
        }
    }
}

/// Credentials, as JSON.
#[derive(Debug, ToSchema)]
pub struct LoginRequest {
    /// The username, in any letter case.
    #[schema(example = "alice")]
    pub username: String,
    /// The password.
    #[schema(example = "correct horse battery")]
    pub password: String,
}

impl FromFields for LoginRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        // The OAuth2 password form may name its grant type; if it does, it must be this one.
        if let Some(grant) = fields.optional_string("grant_type")?
            && grant != "password"
        {
            return Err(RestError::invalid_body(
                "grant_type",
                "grant_type must be \"password\"",
            ));
        }
        Ok(LoginRequest {
            username: fields.required_string("username")?,
            password: fields.required_string("password")?,
        })
    }
}

/// Credentials, as an OAuth2 password-grant form (RFC 6749 §4.3); what Swagger UI's
/// "Authorize" sends. Read into [`LoginRequest`]; `scope` and client credentials are ignored.
#[derive(Debug, ToSchema)]
pub struct LoginForm {
    /// `password`, if given.
    #[schema(example = "password")]
    pub grant_type: Option<String>,
    /// The username, in any letter case.
    pub username: String,
    /// The password.
    pub password: String,
    /// Ignored.
    pub scope: Option<String>,
    /// Ignored.
    pub client_id: Option<String>,
    /// Ignored.
    pub client_secret: Option<String>,
}

/// Changes to the caller's account: at least one of the two. No current password is asked.
#[derive(Debug, ToSchema)]
pub struct UpdateRequest {
    /// The new email: a valid address, at most 254 characters.
    #[schema(example = "alice@example.org", format = Email, max_length = 254)]
    pub email: Option<String>,
    /// The new password, 8–128 characters; signs out every other session of the caller.
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

impl FromFields for UpdateRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(UpdateRequest {
            email: fields.optional_string("email")?,
            password: fields.optional_string("password")?,
        })
    }
}

impl From<UpdateRequest> for UpdateMe {
    fn from(body: UpdateRequest) -> Self {
        UpdateMe {
            email: body.email,
            password: body.password,
            current_password: None,
        }
    }
}

/// A refresh token to exchange.
#[derive(Debug, ToSchema)]
pub struct RefreshRequest {
    /// The `refresh_token` of a previous register, login or refresh.
    pub refresh_token: String,
}

impl FromFields for RefreshRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(RefreshRequest {
            refresh_token: fields.required_string("refresh_token")?,
        })
    }
}

/// The second step of a login. Its `Debug` hides the token and the code.
#[derive(ToSchema)]
pub struct MfaLoginRequest {
    /// The `mfa_token` of the login's 401.
    pub mfa_token: String,
    /// A TOTP code (6 digits) or a recovery code.
    #[schema(example = "123456")]
    pub code: String,
}

impl std::fmt::Debug for MfaLoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaLoginRequest([redacted])")
    }
}

impl FromFields for MfaLoginRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(MfaLoginRequest {
            mfa_token: fields.required_string("mfa_token")?,
            code: fields.required_string("code")?,
        })
    }
}

/// An address to send a password-reset link to.
#[derive(Debug, ToSchema)]
pub struct PasswordResetRequest {
    /// The account's email address, in any letter case.
    #[schema(example = "alice@example.com", format = Email, max_length = 254)]
    pub email: String,
}

impl FromFields for PasswordResetRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(PasswordResetRequest {
            email: fields.required_string("email")?,
        })
    }
}

/// A reset token from a mail, and the new password.
#[derive(Debug, ToSchema)]
pub struct PasswordResetConfirm {
    /// The `token` of the link in the mail.
    pub token: String,
    /// The new password, 8–128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

impl FromFields for PasswordResetConfirm {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(PasswordResetConfirm {
            token: fields.required_string("token")?,
            new_password: fields.required_string("new_password")?,
        })
    }
}

/// A verification token from a mail.
#[derive(Debug, ToSchema)]
pub struct VerifyEmailRequest {
    /// The `token` of the link in the mail.
    pub token: String,
}

impl FromFields for VerifyEmailRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(VerifyEmailRequest {
            token: fields.required_string("token")?,
        })
    }
}

/// Whether to disable the account.
#[derive(Debug, ToSchema)]
pub struct DisabledRequest {
    /// `true` disables the account (it cannot sign in; its sessions end), `false` enables it.
    pub disabled: bool,
}

impl FromFields for DisabledRequest {
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError> {
        Ok(DisabledRequest {
            disabled: fields.required_bool("disabled")?,
        })
    }
}
