//! Queries on the `users` table, each written once for both backends.

use chrono::NaiveDateTime;
use diesel::sql_types::{Text, Timestamp};
use diesel::{
    AsChangeset, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    SelectableHelper as _,
};
use diesel_async::{AsyncConnection as _, RunQueryDsl as _};

use super::model::{Role, User, UserRecord, UserRow};
use super::tokens::{Purpose, TokenRow};
use crate::db::DbError;
use crate::db::DbPool;
use crate::db::prepared::CachedBySql;
use crate::db::schema::{
    account_tokens, mail_outbox, mfa_challenges, mfa_recovery_codes, user_totp, users,
};
use crate::mail::outbox::OutboxRow;
use crate::with_conn;

/// What an account change writes beside the `users` row, in the same transaction: a token to
/// issue (replacing the user's older tokens of its purpose) and the mails to queue, so that
/// neither a token without its mail nor a mail about a change that rolled back can exist.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// A token to store; the user's other tokens of the same purpose are deleted.
    pub token: Option<TokenRow>,
    /// Mails to queue.
    pub mails: Vec<OutboxRow>,
    /// A user whose reset links stop working (their address or password changed: a link
    /// mailed before must not outlive that).
    pub end_resets_of: Option<String>,
}

/// Writes `$effects` ([`Effects`]) on the connection `$c`, inside the caller's transaction.
/// A macro rather than a function: the body is expanded once per backend by `with_conn!`.
/// The `new_user` form is for a user inserted in the same transaction, who has no older
/// tokens to replace: it skips that delete, which on MySQL would also lock the gap at the
/// end of the index that every concurrent registration inserts into.
macro_rules! write_effects {
    ($c:ident, $effects:expr) => {
        write_effects!($c, $effects, replace_tokens = true)
    };
    ($c:ident, $effects:expr, new_user) => {
        write_effects!($c, $effects, replace_tokens = false)
    };
    ($c:ident, $effects:expr, replace_tokens = $replace:expr) => {{
        let effects: &Effects = $effects;
        if let Some(token) = &effects.token {
            if $replace {
                CachedBySql(diesel::delete(
                    account_tokens::table
                        .filter(account_tokens::user_id.eq(&token.user_id))
                        .filter(account_tokens::purpose.eq(&token.purpose)),
                ))
                .execute($c)
                .await?;
            }
            CachedBySql(diesel::insert_into(account_tokens::table).values(token))
                .execute($c)
                .await?;
        }
        if let Some(user_id) = &effects.end_resets_of {
            CachedBySql(diesel::delete(
                account_tokens::table
                    .filter(account_tokens::user_id.eq(user_id))
                    .filter(account_tokens::purpose.eq(Purpose::ResetPassword.as_str())),
            ))
            .execute($c)
            .await?;
        }
        for mail in &effects.mails {
            CachedBySql(diesel::insert_into(mail_outbox::table).values(mail))
                .execute($c)
                .await?;
        }
    }};
}

/// Deletes the token `$token` ([`TokenRow`]) on `$c` if it is still live at `$now`, as the
/// first statement of a transaction: yields whether this transaction used it up (of two
/// redeeming one token at once, only one deletes the row). A write first, because SQLite
/// cannot upgrade a transaction that read to one that writes while another connection writes.
macro_rules! use_up_token {
    ($c:ident, $token:expr, $now:expr) => {{
        let token: &TokenRow = $token;
        diesel::delete(
            account_tokens::table
                .find(&token.token_hash)
                .filter(account_tokens::purpose.eq(&token.purpose))
                .filter(account_tokens::expires_at.gt($now)),
        )
        .execute($c)
        .await?
            == 1
    }};
}

/// Changes to one user; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    /// New email as typed.
    pub email: Option<String>,
    /// Its lower-cased copy.
    pub email_lower: Option<String>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// Whether the (new) address is verified: false with every email change.
    pub email_verified: Option<bool>,
    /// Always set.
    pub updated_at: NaiveDateTime,
}

/// The user with this id.
pub async fn find_by_id(db: &DbPool, id: &str) -> Result<Option<User>, DbError> {
    with_conn!(db, |c| users::table
        .find(id)
        .select(UserRecord::as_select())
        .first(c)
        .await
        .optional())?
    .map(User::try_from)
    .transpose()
}

/// The user with this username, in any letter case.
pub async fn find_by_username(db: &DbPool, username: &str) -> Result<Option<User>, DbError> {
    let lower = username.to_lowercase();
    with_conn!(db, |c| {
        users::table
            .filter(users::username_lower.eq(&lower))
            .select(UserRecord::as_select())
            .first(c)
            .await
            .optional()
    })?
    .map(User::try_from)
    .transpose()
}

/// The user registered with this lower-cased address.
pub async fn find_by_email(db: &DbPool, email_lower: &str) -> Result<Option<User>, DbError> {
    with_conn!(db, |c| {
        users::table
            .filter(users::email_lower.eq(email_lower))
            .select(UserRecord::as_select())
            .first(c)
            .await
            .optional()
    })?
    .map(User::try_from)
    .transpose()
}

/// Whether a user other than `except_id` holds this lower-cased username / email.
pub async fn find_taken(
    db: &DbPool,
    username_lower: Option<&str>,
    email_lower: Option<&str>,
    except_id: Option<&str>,
) -> Result<(bool, bool), DbError> {
    let except = except_id.unwrap_or("");
    let username_taken = match username_lower {
        Some(name) => {
            let q = diesel::select(diesel::dsl::exists(
                users::table
                    .filter(users::username_lower.eq(name))
                    .filter(users::id.ne(except)),
            ));
            with_conn!(db, |c| q.get_result::<bool>(c).await)?
        }
        None => false,
    };
    let email_taken = match email_lower {
        Some(email) => {
            let q = diesel::select(diesel::dsl::exists(
                users::table
                    .filter(users::email_lower.eq(email))
                    .filter(users::id.ne(except)),
            ));
            with_conn!(db, |c| q.get_result::<bool>(c).await)?
        }
        None => false,
    };
    Ok((username_taken, email_taken))
}

/// Inserts a user, with `effects`. A taken username or email fails with `Conflict` from the
/// unique indexes, and writes nothing.
pub async fn create_user(db: &DbPool, row: &UserRow, effects: &Effects) -> Result<(), DbError> {
    with_conn!(db, |c| {
        c.transaction::<(), diesel::result::Error, _>(async |c| {
            CachedBySql(diesel::insert_into(users::table).values(row))
                .execute(c)
                .await?;
            write_effects!(c, effects, new_user);
            Ok(())
        })
        .await
    })
}

/// Writes `effects` alone (a token and its mail for an account that does not change).
pub async fn write(db: &DbPool, effects: &Effects) -> Result<(), DbError> {
    with_conn!(db, |c| {
        c.transaction::<(), diesel::result::Error, _>(async |c| {
            write_effects!(c, effects);
            Ok(())
        })
        .await
    })
}

/// Redeems the reset token `token` (as read just before): deletes it and the user's other
/// reset tokens, sets `password_hash`, moves the credentials version on, marks the address
/// verified, and writes `effects` — all or nothing. Returns whether it did: `false` when the
/// token was no longer live at `now` (or another request redeemed it first), or the user is
/// gone, disabled, or no longer has the address the token was mailed to (the tokens are used
/// up all the same).
pub async fn redeem_reset(
    db: &DbPool,
    token: &TokenRow,
    now: NaiveDateTime,
    password_hash: &str,
    effects: &Effects,
) -> Result<bool, DbError> {
    let purpose = Purpose::ResetPassword.as_str();
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            if !use_up_token!(c, token, now) {
                return Ok(false);
            }
            diesel::delete(
                account_tokens::table
                    .filter(account_tokens::user_id.eq(&token.user_id))
                    .filter(account_tokens::purpose.eq(purpose)),
            )
            .execute(c)
            .await?;
            // Only for the address the link was mailed to, and an account still enabled: the
            // link may have been issued from a read just before the address changed or the
            // account was disabled (both end the user's links, but not one written after).
            // Proving the address by using the link also verifies it.
            let password = (
                users::password_hash.eq(password_hash),
                users::updated_at.eq(now),
                users::credentials_version.eq(users::credentials_version + 1),
            );
            let account = users::table
                .find(&token.user_id)
                .filter(users::disabled.eq(false));
            let changed = match &token.email_lower {
                Some(email_lower) => {
                    diesel::update(account.filter(users::email_lower.eq(email_lower)))
                        .set((password, users::email_verified.eq(true)))
                        .execute(c)
                        .await?
                }
                None => diesel::update(account).set(password).execute(c).await?,
            };
            if changed == 0 {
                return Ok(false);
            }
            write_effects!(c, effects);
            Ok(true)
        })
        .await
    })
}

/// Redeems the verification token `token` (as read just before): deletes it and marks the
/// user's address verified if it is still the one the token was mailed to. Returns whether it
/// did: `false` for a token no longer live at `now`, or whose address is no longer the
/// account's (the token is used up either way).
pub async fn redeem_verification(
    db: &DbPool,
    token: &TokenRow,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            if !use_up_token!(c, token, now) {
                return Ok(false);
            }
            let Some(email_lower) = &token.email_lower else {
                return Ok(false);
            };
            let verified = diesel::update(
                users::table
                    .find(&token.user_id)
                    .filter(users::email_lower.eq(email_lower)),
            )
            .set(users::email_verified.eq(true))
            .execute(c)
            .await?;
            Ok(verified > 0)
        })
        .await
    })
}

/// Applies `changes` to the user, and with `end_sign_ins` moves their credentials version on
/// in the same statement (see [`User::credentials_version`]); writes `effects` in the same
/// transaction when the user existed. Returns whether the user existed.
///
/// [`User::credentials_version`]: super::model::User::credentials_version
pub async fn update_user(
    db: &DbPool,
    id: &str,
    changes: &UserChanges,
    end_sign_ins: bool,
    effects: &Effects,
) -> Result<bool, DbError> {
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            let changed = if end_sign_ins {
                let bump = users::credentials_version.eq(users::credentials_version + 1);
                CachedBySql(diesel::update(users::table.find(id)).set((changes, bump)))
                    .execute(c)
                    .await?
            } else {
                CachedBySql(diesel::update(users::table.find(id)).set(changes))
                    .execute(c)
                    .await?
            };
            if changed == 0 {
                return Ok(false);
            }
            write_effects!(c, effects);
            Ok(true)
        })
        .await
    })
}

/// Moves the user's credentials version on: every sign-in checked before now withdraws if it
/// has not stored its session yet, and refresh tokens issued before now stop working.
/// Returns whether the user existed.
pub async fn bump_credentials_version(db: &DbPool, id: &str) -> Result<bool, DbError> {
    let query = CachedBySql(
        diesel::update(users::table.find(id))
            .set(users::credentials_version.eq(users::credentials_version + 1)),
    );
    with_conn!(db, |c| query.clone().execute(c).await).map(|n| n > 0)
}

/// The user's credentials version; `None` when the user no longer exists.
pub async fn find_credentials_version(db: &DbPool, id: &str) -> Result<Option<i64>, DbError> {
    with_conn!(db, |c| users::table
        .find(id)
        .select(users::credentials_version)
        .first::<i64>(c)
        .await
        .optional())
}

/// Deletes the user unless they are the last (enabled) admin, and with them, in the same
/// transaction, their second factors (TOTP secret, recovery codes) and the sign-ins awaiting
/// one, so that no secret outlives its account. Returns whether the user went (`false`: no
/// such user, or the last admin). See `NOT_THE_LAST_ADMIN` for why this is race-safe.
pub async fn delete_user(db: &DbPool, id: &str) -> Result<bool, DbError> {
    let query = diesel::sql_query(format!(
        "DELETE FROM users WHERE id = ? AND {NOT_THE_LAST_ADMIN}"
    ))
    .bind::<Text, _>(id)
    .bind::<Text, _>(id);
    with_conn!(db, |c| {
        c.transaction::<bool, diesel::result::Error, _>(async |c| {
            if query.clone().execute(c).await? == 0 {
                return Ok(false);
            }
            diesel::delete(user_totp::table.find(id)).execute(c).await?;
            diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(id)))
                .execute(c)
                .await?;
            diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(id)))
                .execute(c)
                .await?;
            Ok(true)
        })
        .await
    })
}

/// Up to `limit` users with ids greater than `after`, by id: keyset pagination on the primary
/// key, so page 5,000 costs what page 1 costs.
pub async fn list_users(
    db: &DbPool,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<User>, DbError> {
    // Every id is greater than "", so the first page needs no second query shape.
    let after = after.unwrap_or("");
    with_conn!(db, |c| {
        users::table
            .filter(users::id.gt(after))
            .order(users::id.asc())
            .limit(limit)
            .select(UserRecord::as_select())
            .load(c)
            .await
    })?
    .into_iter()
    .map(User::try_from)
    .collect()
}

/// The condition, bound to the id of the row a statement changes, that the change (a
/// deletion, a demotion, disabling) leaves an enabled admin: the row is not an admin, or is an
/// admin already disabled (not one of the enabled admins), or some enabled admin other than it
/// exists. A disabled admin does not count as another admin: they cannot sign in, so the
/// service would be left without anyone able to run it.
///
/// Written into the very statement that demotes, deletes or disables the user, so the check
/// and the change cannot be split by a concurrent one: SQLite runs one writer at a time, and
/// InnoDB takes shared locks on the rows a DML statement's subquery reads, so a concurrent
/// removal of the other admin waits for this one (then sees no other admin) or deadlocks (one
/// is rolled back and the client retries). MySQL refuses a subquery on the table being
/// changed, but not a derived table it materializes; the aggregate inside makes sure it is
/// materialized rather than merged. Both MySQL 8 / MariaDB and SQLite accept this form.
const NOT_THE_LAST_ADMIN: &str = "(role <> 'admin' OR disabled = TRUE OR \
     (SELECT n FROM (SELECT COUNT(*) AS n FROM users \
     WHERE role = 'admin' AND disabled = FALSE AND id <> ?) AS other_admins) > 0)";

/// Sets the user's role, unless that would demote the last admin; returns whether the user
/// was changed (`false`: no such user, or the last admin).
pub async fn update_role(
    db: &DbPool,
    id: &str,
    role: Role,
    updated_at: NaiveDateTime,
) -> Result<bool, DbError> {
    // updated_at always changes, so a matched row always counts as changed, on MySQL too.
    let query = diesel::sql_query(format!(
        "UPDATE users SET role = ?, updated_at = ? \
         WHERE id = ? AND (? = 'admin' OR {NOT_THE_LAST_ADMIN})"
    ))
    .bind::<Text, _>(role.as_str())
    .bind::<Timestamp, _>(updated_at)
    .bind::<Text, _>(id)
    .bind::<Text, _>(role.as_str())
    .bind::<Text, _>(id);
    with_conn!(db, |c| query.clone().execute(c).await).map(|n| n > 0)
}

/// What [`disable_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disabling {
    /// The account was enabled and is now disabled; its effects were written with it.
    Disabled,
    /// The account was disabled already; its credentials version moved on again (a sign-in
    /// that slipped in is withdrawn all the same), and nothing was written.
    AlreadyDisabled,
    /// Nothing changed: there is no such user, or they are the last enabled admin.
    Unchanged,
}

/// Disables the user unless they are the last enabled admin, moving their credentials version
/// on in the same statement (a sign-in checked before now withdraws, see
/// `SignIns::confirm_sign_in`, and their refresh tokens stop working), and writes `effects`
/// (the notice, the end of their reset links) in the same transaction when the account was
/// enabled: a failure after it cannot lose the notice or leave a reset link that works again
/// once the account is enabled.
pub async fn disable_user(
    db: &DbPool,
    id: &str,
    updated_at: NaiveDateTime,
    effects: &Effects,
) -> Result<Disabling, DbError> {
    // updated_at and the version always change, so a matched row always counts as changed,
    // on MySQL too.
    let disable = diesel::sql_query(format!(
        "UPDATE users SET disabled = TRUE, credentials_version = credentials_version + 1, \
         updated_at = ? WHERE id = ? AND disabled = FALSE AND {NOT_THE_LAST_ADMIN}"
    ))
    .bind::<Timestamp, _>(updated_at)
    .bind::<Text, _>(id)
    .bind::<Text, _>(id);
    let again = diesel::update(
        users::table
            .find(id.to_owned())
            .filter(users::disabled.eq(true)),
    )
    .set((
        users::credentials_version.eq(users::credentials_version + 1),
        users::updated_at.eq(updated_at),
    ));
    with_conn!(db, |c| {
        c.transaction::<Disabling, diesel::result::Error, _>(async |c| {
            if disable.clone().execute(c).await? > 0 {
                write_effects!(c, effects);
                return Ok(Disabling::Disabled);
            }
            if again.clone().execute(c).await? > 0 {
                return Ok(Disabling::AlreadyDisabled);
            }
            Ok(Disabling::Unchanged)
        })
        .await
    })
}

/// Enables the user; returns whether they exist.
pub async fn enable_user(
    db: &DbPool,
    id: &str,
    updated_at: NaiveDateTime,
) -> Result<bool, DbError> {
    let query = CachedBySql(
        diesel::update(users::table.find(id))
            .set((users::disabled.eq(false), users::updated_at.eq(updated_at))),
    );
    with_conn!(db, |c| query.clone().execute(c).await).map(|n| n > 0)
}

/// The column a filtered list is ordered by, and its cursors point into. Each is unique and
/// carries an index, so the order is total and a page is one index range scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// `id`: registration order.
    Id,
    /// `username_lower`.
    Username,
    /// `email_lower`.
    Email,
}

/// A half-open range `[start, end)` of a text column: the values that begin with a prefix.
#[derive(Debug, Clone, Copy)]
pub struct PrefixRange<'a> {
    /// The prefix itself: the least value that begins with it.
    pub start: &'a str,
    /// The least value greater than every value that begins with the prefix.
    pub end: &'a str,
}

/// Which users a filtered list holds, in which order, from where.
#[derive(Debug, Clone, Copy)]
pub struct UserQuery<'a> {
    /// The order, and the column `after` is a value of.
    pub order: SortKey,
    /// Start after the user with this value of the order column; `None` for the first page.
    /// With a range on the order column, it must lie in the range (the caller checks).
    pub after: Option<&'a str>,
    /// Only usernames (lower-cased) in this range.
    pub username: Option<PrefixRange<'a>>,
    /// Only emails (lower-cased) in this range.
    pub email: Option<PrefixRange<'a>>,
    /// Only users of this role.
    pub role: Option<Role>,
    /// Only users that are (or are not) disabled.
    pub disabled: Option<bool>,
}

/// Up to `limit` users that `query` selects, in its order: keyset pagination on an indexed
/// unique column, so each page is one index range scan (see the README's "Disabling and
/// searching users" for which index serves which filter).
///
/// On the order column, the lower bound is either the range's start (inclusive, first page)
/// or the cursor (exclusive), never both: SQLite uses one lower bound of a column for the
/// index seek and checks any other row by row, which would make page n cost O(n).
pub async fn list_filtered(
    db: &DbPool,
    query: &UserQuery<'_>,
    limit: i64,
) -> Result<Vec<User>, DbError> {
    let q = *query;
    with_conn!(db, |c| {
        let mut select = users::table.select(UserRecord::as_select()).into_boxed();
        if let Some(role) = q.role {
            select = select.filter(users::role.eq(role.as_str()));
        }
        if let Some(disabled) = q.disabled {
            select = select.filter(users::disabled.eq(disabled));
        }
        if let Some(range) = q.username {
            select = select.filter(users::username_lower.lt(range.end));
            if q.order != SortKey::Username || q.after.is_none() {
                select = select.filter(users::username_lower.ge(range.start));
            }
        }
        if let Some(range) = q.email {
            select = select.filter(users::email_lower.lt(range.end));
            if q.order != SortKey::Email || q.after.is_none() {
                select = select.filter(users::email_lower.ge(range.start));
            }
        }
        select = match q.order {
            SortKey::Id => select
                .filter(users::id.gt(q.after.unwrap_or("")))
                .order(users::id.asc()),
            SortKey::Username => match q.after {
                Some(after) => select.filter(users::username_lower.gt(after)),
                None => select,
            }
            .order(users::username_lower.asc()),
            SortKey::Email => match q.after {
                Some(after) => select.filter(users::email_lower.gt(after)),
                None => select,
            }
            .order(users::email_lower.asc()),
        };
        select.limit(limit).load(c).await
    })?
    .into_iter()
    .map(User::try_from)
    .collect()
}

/// How many users `query` selects (its order and `after` aside): one index range scan per
/// filter, or the whole table without one.
pub async fn count_filtered(db: &DbPool, query: &UserQuery<'_>) -> Result<i64, DbError> {
    let q = *query;
    with_conn!(db, |c| {
        let mut select = users::table.count().into_boxed();
        if let Some(role) = q.role {
            select = select.filter(users::role.eq(role.as_str()));
        }
        if let Some(disabled) = q.disabled {
            select = select.filter(users::disabled.eq(disabled));
        }
        if let Some(range) = q.username {
            select = select
                .filter(users::username_lower.ge(range.start))
                .filter(users::username_lower.lt(range.end));
        }
        if let Some(range) = q.email {
            select = select
                .filter(users::email_lower.ge(range.start))
                .filter(users::email_lower.lt(range.end));
        }
        select.get_result::<i64>(c).await
    })
}

/// The users with these ids (the ones that exist, in no particular order), in one query.
pub async fn find_by_ids(db: &DbPool, ids: &[&str]) -> Result<Vec<User>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    with_conn!(db, |c| users::table
        .filter(users::id.eq_any(ids))
        .select(UserRecord::as_select())
        .load(c)
        .await)?
    .into_iter()
    .map(User::try_from)
    .collect()
}
