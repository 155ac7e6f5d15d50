//! User records as stored, and as a given viewer may see them.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::DbError;
use crate::db::schema::users;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every new user.
    User,
    /// Sees every email.
    Admin,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// A stored role; anything else is a row this server did not write.
    fn parse(s: &str) -> Result<Role, DbError> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(DbError::Query(diesel::result::Error::DeserializationError(
                format!("unknown role {other:?} in the database").into(),
            ))),
        }
    }
}

/// A whole row of the `users` table, as inserted.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    /// UUIDv7.
    pub id: String,
    /// As typed.
    pub username: String,
    /// Lower-cased, for uniqueness.
    pub username_lower: String,
    /// As typed.
    pub email: String,
    /// Lower-cased, for uniqueness.
    pub email_lower: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `user` or `admin`.
    pub role: String,
    /// UTC.
    pub registration_date: NaiveDateTime,
    /// UTC.
    pub updated_at: NaiveDateTime,
    /// Starts at 0; see [`User::credentials_version`].
    pub credentials_version: i64,
    /// Starts false: registration sends the mail that proves it.
    pub email_verified: bool,
    /// Starts false.
    pub disabled: bool,
    /// Starts false: the user turns it on.
    pub mfa_enabled: bool,
}

/// The columns of a `users` row that make a [`User`]: every read selects these and no more
/// (the lower-cased copies and `updated_at` serve the database, not the domain), which keeps
/// the result sets of the hottest queries small.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRecord {
    /// UUIDv7.
    pub id: String,
    /// As typed.
    pub username: String,
    /// As typed.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `user` or `admin`.
    pub role: String,
    /// UTC.
    pub registration_date: NaiveDateTime,
    /// See [`User::credentials_version`].
    pub credentials_version: i64,
    /// See [`User::email_verified`].
    pub email_verified: bool,
    /// See [`User::disabled`].
    pub disabled: bool,
    /// See [`User::mfa_enabled`].
    pub mfa_enabled: bool,
}

/// A user as the domain sees it.
#[derive(Debug, Clone)]
pub struct User {
    /// UUIDv7 string.
    pub id: String,
    /// As typed at registration.
    pub username: String,
    /// As last set.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// When the account was created.
    pub registration_date: DateTime<Utc>,
    /// Moves on with every change that ends all of the user's sign-ins (a password change,
    /// logoutAll); read together with `password_hash`, it says which credentials a sign-in
    /// was checked against.
    pub credentials_version: i64,
    /// Whether a mail proved that `email` belongs to the user.
    pub email_verified: bool,
    /// Whether an admin suspended the account: it cannot sign in or refresh.
    pub disabled: bool,
    /// Whether a sign-in needs a second factor (TOTP or a recovery code) after the password.
    pub mfa_enabled: bool,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> UserRecord {
        UserRecord {
            id: row.id,
            username: row.username,
            email: row.email,
            password_hash: row.password_hash,
            role: row.role,
            registration_date: row.registration_date,
            credentials_version: row.credentials_version,
            email_verified: row.email_verified,
            disabled: row.disabled,
            mfa_enabled: row.mfa_enabled,
        }
    }
}

impl TryFrom<UserRecord> for User {
    type Error = DbError;

    fn try_from(row: UserRecord) -> Result<User, DbError> {
        Ok(User {
            role: Role::parse(&row.role)?,
            id: row.id,
            username: row.username,
            email: row.email,
            password_hash: row.password_hash,
            registration_date: row.registration_date.and_utc(),
            credentials_version: row.credentials_version,
            email_verified: row.email_verified,
            disabled: row.disabled,
            mfa_enabled: row.mfa_enabled,
        })
    }
}

/// A user as one viewer may see them: `email`, `email_verified` and `mfa_enabled` are `None`
/// unless the viewer is that user or an admin, `disabled` unless the viewer is an admin. Built only by
/// [`UserView::for_viewer`] and [`UserView::own`], so the rule lives in one place.
#[derive(Debug, Clone)]
pub struct UserView {
    /// UUIDv7 string.
    pub id: String,
    /// Username.
    pub username: String,
    /// Email, where the viewer may see it.
    pub email: Option<String>,
    /// Whether the email is verified, where the viewer may see it.
    pub email_verified: Option<bool>,
    /// Whether the account is disabled, where the viewer (an admin) may see it.
    pub disabled: Option<bool>,
    /// Whether sign-ins need a second factor, where the viewer (the user, an admin) may see it.
    pub mfa_enabled: Option<bool>,
    /// Role.
    pub role: Role,
    /// When the account was created.
    pub registration_date: DateTime<Utc>,
}

impl UserView {
    /// `user` as seen by `viewer`.
    pub fn for_viewer(user: User, viewer: &User) -> UserView {
        let admin = viewer.role == Role::Admin;
        let sees_email = viewer.id == user.id || admin;
        UserView {
            email: sees_email.then_some(user.email),
            email_verified: sees_email.then_some(user.email_verified),
            disabled: admin.then_some(user.disabled),
            mfa_enabled: sees_email.then_some(user.mfa_enabled),
            id: user.id,
            username: user.username,
            role: user.role,
            registration_date: user.registration_date,
        }
    }

    /// `user` as seen by themself.
    pub fn own(user: User) -> UserView {
        UserView {
            email: Some(user.email),
            email_verified: Some(user.email_verified),
            disabled: (user.role == Role::Admin).then_some(user.disabled),
            mfa_enabled: Some(user.mfa_enabled),
            id: user.id,
            username: user.username,
            role: user.role,
            registration_date: user.registration_date,
        }
    }
}
