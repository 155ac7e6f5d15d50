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
        /// Bumped by every change that ends all of the user's sign-ins (password change,
        /// logoutAll): a sign-in that read an older value withdraws its session.
        credentials_version -> BigInt,
        /// Whether a mail proved the current address belongs to the user.
        email_verified -> Bool,
        /// Whether an admin suspended the account: it cannot sign in or refresh.
        disabled -> Bool,
        /// Whether a sign-in needs a second factor (a TOTP code or a recovery code).
        mfa_enabled -> Bool,
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
        /// The `User-Agent` of the request that opened the session, cut to 255 characters.
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    /// Refresh tokens, by the SHA-256 of the token; one family per sign-in.
    refresh_tokens (token_hash) {
        /// Hex SHA-256 of the token; the token itself is never stored.
        token_hash -> Text,
        /// The sign-in this token belongs to; reuse of a rotated token ends the whole family.
        family_id -> Text,
        /// Owner.
        user_id -> Text,
        /// The access session (`jti`) issued together with this token.
        session_id -> Text,
        /// The `User-Agent` of the request that obtained this token.
        user_agent -> Nullable<Text>,
        /// UTC.
        created_at -> Timestamp,
        /// UTC; an expired token is refused and purged.
        expires_at -> Timestamp,
        /// When the token was exchanged for its successor; null while it is the live one.
        rotated_at -> Nullable<Timestamp>,
        /// Hash of the token that replaced this one.
        successor_hash -> Nullable<Text>,
        /// The user's `credentials_version` when the sign-in began; a token whose value is
        /// older than the user's is refused.
        credentials_version -> BigInt,
    }
}

diesel::table! {
    /// Email-verification and password-reset tokens, by the SHA-256 of the token.
    account_tokens (token_hash) {
        /// Hex SHA-256 of the token; the token itself is only ever in the mail.
        token_hash -> Text,
        /// Owner.
        user_id -> Text,
        /// `verify-email` or `reset-password`.
        purpose -> Text,
        /// For a verification: the lower-cased address it proves.
        email_lower -> Nullable<Text>,
        /// UTC.
        created_at -> Timestamp,
        /// UTC; an expired token is refused and purged.
        expires_at -> Timestamp,
    }
}

diesel::table! {
    /// Mails waiting for delivery (see the migration for the claim protocol).
    mail_outbox (id) {
        /// UUIDv7.
        id -> Text,
        /// Which mail, for metrics and logs.
        kind -> Text,
        /// The envelope recipient.
        recipient -> Text,
        /// The whole RFC 5322 message.
        message -> Text,
        /// Delivery attempts so far.
        attempts -> Integer,
        /// UTC; when the row is next due.
        next_attempt_at -> Timestamp,
        /// Why the latest attempt failed.
        last_error -> Nullable<Text>,
        /// UTC.
        created_at -> Timestamp,
        /// UTC; set when the attempts ran out.
        failed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// TOTP secrets: the confirmed one and one being enrolled, each encrypted.
    user_totp (user_id) {
        /// Owner.
        user_id -> Text,
        /// The confirmed secret, sealed; null until an enrolment is confirmed.
        secret -> Nullable<Text>,
        /// A secret being enrolled, sealed.
        pending_secret -> Nullable<Text>,
        /// UTC; when the enrolment lapses.
        pending_expires_at -> Nullable<Timestamp>,
        /// The highest 30-second step whose code was accepted.
        last_step -> BigInt,
    }
}

diesel::table! {
    /// Recovery codes, by their keyed hash.
    mfa_recovery_codes (user_id, code_hash) {
        /// Owner.
        user_id -> Text,
        /// HMAC-SHA-256 of the normalised code, hex.
        code_hash -> Text,
    }
}

diesel::table! {
    /// Sign-ins waiting for their second factor, by the SHA-256 of the `mfaToken`.
    mfa_challenges (token_hash) {
        /// Hex SHA-256 of the token.
        token_hash -> Text,
        /// The user whose password was right.
        user_id -> Text,
        /// The user's credentials version when the password was checked.
        credentials_version -> BigInt,
        /// Codes tried with this token so far.
        attempts -> Integer,
        /// UTC.
        expires_at -> Timestamp,
    }
}

// A challenge is read together with the user it signs in: one statement for the second step.
diesel::joinable!(mfa_challenges -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(mfa_challenges, users);
