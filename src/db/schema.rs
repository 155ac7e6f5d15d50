//! Table definitions shared by both backends (the types are portable: `Text` is CHAR/VARCHAR on
//! MySQL and TEXT on SQLite; `Timestamp` is DATETIME(6) on MySQL).

diesel::table! {
    /// Registered users.
    users (id) {
        /// UUIDv7, made in Rust.
        id -> Text,
        /// As the user typed it.
        username -> Text,
        /// Lower-cased copy that carries the case-insensitive unique index.
        username_lower -> Text,
        /// As the user typed it.
        email -> Text,
        /// Lower-cased copy that carries the case-insensitive unique index.
        email_lower -> Text,
        /// argon2id PHC string.
        password_hash -> Text,
        /// `user` or `admin`.
        role -> Text,
        /// UTC.
        registration_date -> Timestamp,
        /// UTC.
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Active sessions, when they are kept in the database rather than in Redis.
    sessions (id) {
        /// The `jti` of the access token.
        id -> Text,
        /// Owner.
        user_id -> Text,
        /// UTC.
        created_at -> Timestamp,
        /// UTC; an expired row is ignored and purged.
        expires_at -> Timestamp,
    }
}
