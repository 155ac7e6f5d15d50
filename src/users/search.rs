//! Filtered lists of users (`users(filter:)`): who may filter by what, which prefixes are
//! valid, and which order (and so which index and which cursor) a filter gets.
//!
//! The order follows the filter so that one index range serves both the filter and the order,
//! and a page costs about what the first unfiltered page costs however many users there are:
//! - a username prefix: by lower-cased username (`users_username_lower_key`);
//! - else an email prefix: by lower-cased email (`users_email_lower_key`);
//! - else (role and/or disabled only): by id, as the unfiltered list
//!   (`users_role_id`, `users_disabled_id`, `users_role_disabled_id`).
//!
//! A prefix is matched as the range `[prefix, next(prefix))` on the lower-cased column, not
//! with LIKE: `%` and `_` in a prefix are plain characters, and the comparison uses the
//! column's binary collation and index on both backends (SQLite's LIKE ignores case and so
//! cannot use a BINARY index).

use crate::accounts::model::Role;
use crate::accounts::repo::{PrefixRange, SortKey, UserQuery};
use crate::accounts::validation;
use crate::error::{AppError, Field};

use super::Cursor;

/// Which users a list holds; every field `None` is the whole, unfiltered list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Usernames that begin with this, in any letter case: 1–32 characters from
    /// `A–Z a–z 0–9 _ -`. Anyone may filter by it.
    pub username_prefix: Option<String>,
    /// Emails that begin with this, in any letter case: 1–254 characters, no control
    /// characters, no whitespace at the end. Admins only.
    pub email_prefix: Option<String>,
    /// Users of this role. Anyone may filter by it.
    pub role: Option<Role>,
    /// Users that are (or are not) disabled. Admins only.
    pub disabled: Option<bool>,
}

impl UserFilter {
    /// Whether the filter keeps every user.
    pub fn is_empty(&self) -> bool {
        *self == UserFilter::default()
    }
}

/// What a non-admin gets for filtering by what only admins see.
const ADMIN_FILTER: AppError =
    AppError::Forbidden("only an admin may filter users by email or by disabled");
/// A cursor of another filter's order, or outside this filter's range.
const FOREIGN_CURSOR: &str = "the cursor belongs to a list with another filter";

/// A checked filter: prefixes lower-cased with their ranges' ends, ready for one query.
#[derive(Debug, Clone)]
pub(super) struct Search {
    order: SortKey,
    username: Option<(String, String)>,
    email: Option<(String, String)>,
    role: Option<Role>,
    disabled: Option<bool>,
}

impl Search {
    /// Checks `filter` for a viewer (`admin` or not): FORBIDDEN for an admin-only filter,
    /// BAD_USER_INPUT (naming the field) for an invalid prefix.
    pub(super) fn new(filter: &UserFilter, admin: bool) -> Result<Search, AppError> {
        if !admin && (filter.email_prefix.is_some() || filter.disabled.is_some()) {
            return Err(ADMIN_FILTER);
        }
        let username = filter
            .username_prefix
            .as_deref()
            .map(username_range)
            .transpose()?;
        let email = filter
            .email_prefix
            .as_deref()
            .map(email_range)
            .transpose()?;
        let order = if username.is_some() {
            SortKey::Username
        } else if email.is_some() {
            SortKey::Email
        } else {
            SortKey::Id
        };
        Ok(Search {
            order,
            username,
            email,
            role: filter.role,
            disabled: filter.disabled,
        })
    }

    /// The order of the list, which its cursors point into.
    /// A key naming the set of users the filter keeps (whatever its order), for caching.
    pub(super) fn count_key(&self) -> String {
        let start = |r: &Option<(String, String)>| r.as_ref().map(|(s, _)| s.clone());
        format!(
            "{:?}|{:?}|{:?}|{:?}",
            start(&self.username),
            start(&self.email),
            self.role.map(Role::as_str),
            self.disabled
        )
    }

    pub(super) fn order(&self) -> SortKey {
        self.order
    }

    /// The query for the page after `after`. A cursor of another order, or whose key lies
    /// outside this filter's prefix, is a BAD_USER_INPUT on the cursor: it was made for
    /// another list.
    pub(super) fn query<'a>(
        &'a self,
        after: Option<&'a Cursor>,
    ) -> Result<UserQuery<'a>, AppError> {
        let range = |r: &'a (String, String)| PrefixRange {
            start: &r.0,
            end: &r.1,
        };
        if let Some(cursor) = after {
            let own_range = match self.order {
                SortKey::Id => None,
                SortKey::Username => self.username.as_ref(),
                SortKey::Email => self.email.as_ref(),
            };
            let in_range = own_range.is_none_or(|(prefix, _)| cursor.key().starts_with(prefix));
            if cursor.order() != self.order || !in_range {
                return Err(AppError::validation(Field::Cursor, FOREIGN_CURSOR));
            }
        }
        Ok(UserQuery {
            order: self.order,
            after: after.map(Cursor::key),
            username: self.username.as_ref().map(range),
            email: self.email.as_ref().map(range),
            role: self.role,
            disabled: self.disabled,
        })
    }
}

/// The lower-cased username prefix and the end of its range.
fn username_range(prefix: &str) -> Result<(String, String), AppError> {
    let bad = |message: &str| AppError::validation(Field::UsernamePrefix, message);
    let len = prefix.chars().count();
    if !(1..=32).contains(&len) {
        return Err(bad("usernamePrefix must be 1 to 32 characters long"));
    }
    // Any other character cannot begin a username; refusing it also keeps non-ASCII text away
    // from MySQL's ASCII column, which would refuse the comparison.
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad(
            "usernamePrefix may contain only letters A-Z, digits, _ and -",
        ));
    }
    let lower = prefix.to_ascii_lowercase();
    let end = range_end(&lower).ok_or_else(|| bad("usernamePrefix is not a valid prefix"))?;
    Ok((lower, end))
}

/// The lower-cased email prefix and the end of its range.
fn email_range(prefix: &str) -> Result<(String, String), AppError> {
    let bad = |message: &str| AppError::validation(Field::EmailPrefix, message);
    let len = prefix.chars().count();
    if !(1..=validation::EMAIL_MAX).contains(&len) {
        return Err(bad("emailPrefix must be 1 to 254 characters long"));
    }
    if prefix.chars().any(char::is_control) {
        return Err(bad("emailPrefix may not contain control characters"));
    }
    // MySQL compares with trailing spaces ignored (PAD SPACE), so a prefix ending in
    // whitespace would match differently on the two backends; no address ends in one.
    if prefix.ends_with(char::is_whitespace) {
        return Err(bad("emailPrefix may not end with whitespace"));
    }
    // As the stored copy is made (`str::to_lowercase` of the whole address).
    let lower = prefix.to_lowercase();
    let end = range_end(&lower).ok_or_else(|| bad("emailPrefix is not a valid prefix"))?;
    Ok((lower, end))
}

/// The least string greater than every string that begins with `prefix`, in code-point
/// order (which is the byte order of UTF-8, so both backends' binary collations agree): the
/// prefix with its last character that can be incremented incremented, and what follows it
/// dropped. `None` when no character can be (every one is U+10FFFF).
fn range_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, skipping the surrogate gap.
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_end_just_after_the_prefix() {
        assert_eq!(range_end("al").as_deref(), Some("am"));
        assert_eq!(range_end("a_").as_deref(), Some("a`"));
        assert_eq!(range_end("az").as_deref(), Some("a{"));
        assert_eq!(range_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(range_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(range_end("\u{10FFFF}"), None);
    }

    #[test]
    fn prefixes_are_checked_and_lower_cased() {
        assert_eq!(username_range("AL").unwrap(), ("al".into(), "am".into()));
        for bad in ["", "a b", "é", "a%", &"a".repeat(33)] {
            assert!(username_range(bad).is_err(), "{bad:?}");
        }
        assert_eq!(email_range("A%B").unwrap(), ("a%b".into(), "a%c".into()));
        for bad in ["", "a\u{0}", "a ", &"a".repeat(255)] {
            assert!(email_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn admin_only_filters() {
        let by_email = UserFilter {
            email_prefix: Some("a".into()),
            ..UserFilter::default()
        };
        assert!(matches!(
            Search::new(&by_email, false),
            Err(AppError::Forbidden(_))
        ));
        assert_eq!(
            Search::new(&by_email, true).unwrap().order(),
            SortKey::Email
        );
        let by_disabled = UserFilter {
            disabled: Some(false),
            ..UserFilter::default()
        };
        assert!(Search::new(&by_disabled, false).is_err());
        assert_eq!(
            Search::new(&by_disabled, true).unwrap().order(),
            SortKey::Id
        );
    }

    #[test]
    fn foreign_cursors_are_refused() {
        let filter = UserFilter {
            username_prefix: Some("al".into()),
            ..UserFilter::default()
        };
        let search = Search::new(&filter, false).unwrap();
        assert!(
            search
                .query(Some(&Cursor::at(SortKey::Username, "alice")))
                .is_ok()
        );
        for foreign in [
            Cursor::at(SortKey::Username, "bob"),
            Cursor::at(SortKey::Email, "alice@example.com"),
            Cursor::after(&uuid::Uuid::now_v7().to_string()),
        ] {
            assert!(search.query(Some(&foreign)).is_err(), "{foreign:?}");
        }
    }
}
