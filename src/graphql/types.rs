//! GraphQL object, input and scalar types. `///` comments here become schema descriptions.

use async_graphql::{
    Enum, ID, InputObject, InputValueError, InputValueResult, Interface, Scalar, ScalarType,
    SimpleObject, Value,
};
use chrono::{SecondsFormat, Utc};

use crate::accounts::model::{self, UserView};
use crate::signins::{SessionView, SignedIn};
use crate::users;

/// A point in time: an RFC 3339 string in UTC, e.g. "2026-11-27T09:41:07Z".
#[derive(Debug, Clone, Copy)]
pub struct DateTime(pub chrono::DateTime<Utc>);

#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 date-time")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Role {
    /// A regular user; every new account starts here.
    User,
    /// An administrator: sees every user's email, may delete any user, set roles and disable
    /// accounts.
    Admin,
}

impl From<model::Role> for Role {
    fn from(role: model::Role) -> Self {
        match role {
            model::Role::User => Role::User,
            model::Role::Admin => Role::Admin,
        }
    }
}

/// An object that can be fetched again by its id alone, with `node(id:)` (Relay's object
/// identification). Ids are unique across all types.
#[derive(Debug, Clone, Interface)]
#[graphql(field(name = "id", ty = "&ID", desc = "Unique across all types."))]
pub enum Node {
    /// A registered user.
    User(UserObject),
}

/// A registered user.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "User")]
pub struct UserObject {
    /// Unique, assigned by the server; ids sort by registration time.
    pub id: ID,
    /// Unique regardless of letter case; 3–32 characters from A–Z a–z 0–9 _ -.
    pub username: String,
    /// Visible to the user themself and to admins; null for anyone else.
    pub email: Option<String>,
    /// Whether a mail proved the address belongs to the user; visible to the user themself
    /// and to admins, null for anyone else.
    pub email_verified: Option<bool>,
    /// Whether an admin suspended the account (it cannot sign in); visible to admins, null
    /// for anyone else.
    pub disabled: Option<bool>,
    /// Whether signing in needs a second factor (TOTP) after the password; visible to the
    /// user themself and to admins, null for anyone else.
    pub mfa_enabled: Option<bool>,
    /// The user's role.
    pub role: Role,
    /// When the account was created (UTC).
    pub registration_date: DateTime,
}

impl From<UserView> for UserObject {
    fn from(user: UserView) -> Self {
        UserObject {
            id: ID(user.id),
            username: user.username,
            email: user.email,
            email_verified: user.email_verified,
            disabled: user.disabled,
            mfa_enabled: user.mfa_enabled,
            role: user.role.into(),
            registration_date: DateTime(user.registration_date),
        }
    }
}

/// An authenticator app enrolment begun by `startTotpEnrollment`: shown once. Confirm it
/// with `confirmTotpEnrollment` and a code the app shows, within 10 minutes.
#[derive(Clone, SimpleObject)]
#[graphql(name = "TotpEnrollment")]
pub struct TotpEnrollment {
    /// The secret in base32, for typing into the app.
    pub secret: String,
    /// `otpauth://totp/{APP_NAME}:{username}?secret=…&issuer={APP_NAME}`.
    pub otpauth_uri: String,
    /// The same URI as an SVG QR code, for the app to scan.
    pub qr_svg: String,
}

/// The secret must not reach a log through `{:?}`.
impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrollment([redacted])")
    }
}

impl From<crate::mfa::TotpEnrolment> for TotpEnrollment {
    fn from(enrolment: crate::mfa::TotpEnrolment) -> Self {
        TotpEnrollment {
            secret: enrolment.secret,
            otpauth_uri: enrolment.otpauth_uri,
            qr_svg: enrolment.qr_svg,
        }
    }
}

/// A new session.
#[derive(Debug, Clone, SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Always "bearer".
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i32,
    /// The signed-in user.
    pub user: UserObject,
    /// Exchange with `refresh` for a new pair before or after the access token expires. Keep
    /// it secret; each one works once.
    pub refresh_token: String,
}

impl From<SignedIn> for AuthPayload {
    fn from(session: SignedIn) -> Self {
        AuthPayload {
            access_token: session.token.token,
            token_type: "bearer".to_owned(),
            expires_in: i32::try_from(session.token.expires_in).unwrap_or(i32::MAX),
            user: session.user.into(),
            refresh_token: session.refresh_token,
        }
    }
}

/// Registration details.
#[derive(Debug, Clone, InputObject)]
pub struct RegisterInput {
    /// 3–32 characters from A–Z a–z 0–9 _ -; unique regardless of letter case.
    pub username: String,
    /// A valid address, at most 254 characters; unique regardless of letter case.
    pub email: String,
    /// 8–128 characters; any characters.
    pub password: String,
}

/// Changes to the caller's account; give at least one of `email` and `password`.
#[derive(Debug, Clone, InputObject)]
pub struct UpdateMeInput {
    /// The new email.
    pub email: Option<String>,
    /// The new password; needs `currentPassword`, and signs out every other session.
    pub password: Option<String>,
    /// The current password, required to change it.
    pub current_password: Option<String>,
}

/// Which users `users` lists. Every field is optional; those given must all hold. With
/// `usernamePrefix` the list is ordered by username (letter case ignored), else with
/// `emailPrefix` by email, else by registration, as without a filter.
#[derive(Debug, Clone, Default, InputObject)]
pub struct UserFilter {
    /// Usernames that begin with this, in any letter case: 1–32 characters from
    /// A–Z a–z 0–9 _ - (`_` is a plain character, not a wildcard).
    pub username_prefix: Option<String>,
    /// Emails that begin with this, in any letter case (`%` and `_` are plain characters).
    /// ADMIN only; anyone else gets FORBIDDEN.
    pub email_prefix: Option<String>,
    /// Users of this role.
    pub role: Option<Role>,
    /// Disabled users (true) or enabled ones (false). ADMIN only; anyone else gets FORBIDDEN.
    pub disabled: Option<bool>,
}

impl From<UserFilter> for users::UserFilter {
    fn from(filter: UserFilter) -> Self {
        users::UserFilter {
            username_prefix: filter.username_prefix,
            email_prefix: filter.email_prefix,
            role: filter.role.map(model::Role::from),
            disabled: filter.disabled,
        }
    }
}

impl From<Role> for model::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::User => model::Role::User,
            Role::Admin => model::Role::Admin,
        }
    }
}

/// One of the caller's sessions: a sign-in that can still be used or refreshed.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(name = "Session")]
pub struct SessionObject {
    /// Identifies the session for `revokeSession`; a refresh gives the session a new id.
    pub id: ID,
    /// When the session got this id: the sign-in, or its latest refresh (UTC).
    pub created_at: DateTime,
    /// When the session ends unless it is refreshed first (UTC).
    pub expires_at: DateTime,
    /// The User-Agent of the client that signed in or last refreshed, if it sent one.
    pub user_agent: Option<String>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl From<SessionView> for SessionObject {
    fn from(session: SessionView) -> Self {
        SessionObject {
            id: ID(session.id),
            created_at: DateTime(session.created_at),
            expires_at: DateTime(session.expires_at),
            user_agent: session.user_agent,
            current: session.current,
        }
    }
}

/// What happened to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::events::AccountEventKind")]
pub enum AccountEventKind {
    /// A sign-in began (login or registration); `sessionId` is its session.
    SessionStarted,
    /// A sign-in ended (logout, revoked): `sessionId` is its session, or null when every
    /// sign-in of the account ended (logoutAll).
    SessionEnded,
    /// The password changed; every sign-in but `sessionId`'s ended (all of them when null: a
    /// reset by mail).
    PasswordChanged,
    /// The email address changed (it needs verifying again).
    EmailChanged,
    /// The email address was verified.
    EmailVerified,
    /// An admin changed the account's role.
    RoleChanged,
    /// An admin disabled the account; every sign-in ended.
    AccountDisabled,
    /// The account was deleted; every sign-in ended.
    AccountDeleted,
    /// Two-step sign-in (TOTP) was turned on.
    MfaEnabled,
    /// Two-step sign-in was turned off, by the user or by an admin.
    MfaDisabled,
    /// A recovery code was used in place of a TOTP code; it no longer works.
    RecoveryCodeUsed,
}

/// Something that happened to the caller's account.
#[derive(Debug, Clone, SimpleObject)]
pub struct AccountEvent {
    /// What happened.
    pub kind: AccountEventKind,
    /// When.
    pub at: DateTime,
    /// The session it concerns, where one does (see `AccountEventKind`).
    pub session_id: Option<ID>,
}

impl From<crate::events::AccountEvent> for AccountEvent {
    fn from(event: crate::events::AccountEvent) -> Self {
        AccountEvent {
            kind: event.kind.into(),
            at: DateTime(event.at),
            session_id: event.session_id.map(ID),
        }
    }
}
