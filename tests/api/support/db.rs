//! Reaching behind the API, into the test server's database: where waiting would be slow
//! (back-dating or expiring a refresh token), where the API has no way in (making the first
//! admin), and to count what the API does not show.

use chrono::NaiveDateTime;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use user_api::accounts::model::UserRow;
use user_api::accounts::repo;
use user_api::config::DatabaseUrl;
use user_api::db::DbError;
use user_api::db::schema::{account_tokens, refresh_tokens, users};
use user_api::signins::refresh_tokens as refresh;

use super::app::TestApp;

/// `DATABASE_URL` of the test's database, as the binary takes it.
pub fn database_url(app: &TestApp) -> String {
    match &app.state.config.database.url {
        DatabaseUrl::Mysql(url) => url.clone(),
        DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
    }
}

/// Makes a user an admin behind the API's back (the CLI is tested on its own).
pub async fn make_admin(app: &TestApp, user_id: &str) {
    async fn run(app: &TestApp, user_id: &str) -> Result<usize, DbError> {
        let query = diesel::update(users::table.find(user_id)).set(users::role.eq("admin"));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert_eq!(run(app, user_id).await.expect("make admin"), 1);
}

/// Makes every user a USER, behind the API's back.
pub async fn demote_everyone(app: &TestApp) {
    async fn run(app: &TestApp) -> Result<usize, DbError> {
        let query = diesel::update(users::table).set(users::role.eq("user"));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    run(app).await.expect("demote everyone");
}

/// How many admins the database holds that are not disabled.
pub async fn count_enabled_admins(app: &TestApp) -> i64 {
    async fn run(app: &TestApp) -> Result<i64, DbError> {
        let query = users::table
            .filter(users::role.eq("admin"))
            .filter(users::disabled.eq(false))
            .count();
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .get_result::<i64>(c)
            .await)
    }
    run(app).await.expect("count enabled admins")
}

/// Puts a user straight into the database, much faster than registering (no hash: the user
/// cannot sign in); returns its id. `role` is `user` or `admin`.
pub async fn insert_user(
    app: &TestApp,
    username: &str,
    email: &str,
    role: &str,
    disabled: bool,
) -> String {
    let now = chrono::Utc::now().naive_utc();
    let row = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        username: username.to_owned(),
        username_lower: username.to_lowercase(),
        email: email.to_owned(),
        email_lower: email.to_lowercase(),
        password_hash: "no password: inserted by a test".to_owned(),
        role: role.to_owned(),
        registration_date: now,
        updated_at: now,
        credentials_version: 0,
        email_verified: false,
        disabled,
        mfa_enabled: false,
    };
    repo::create_user(app.state.dependencies.database(), &row, &Default::default())
        .await
        .expect("insert user");
    row.id
}

/// How many admins the database holds.
pub async fn count_admins(app: &TestApp) -> i64 {
    async fn run(app: &TestApp) -> Result<i64, DbError> {
        let query = users::table.filter(users::role.eq("admin")).count();
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .get_result::<i64>(c)
            .await)
    }
    run(app).await.expect("count admins")
}

/// Moves a refresh token's rotation time `secs` seconds into the past, standing in for waiting.
pub async fn backdate_rotation(app: &TestApp, refresh_token: &str, secs: i64) {
    let hash = refresh::hash(refresh_token);
    async fn run(app: &TestApp, hash: &str, secs: i64) -> Result<usize, DbError> {
        let row = refresh_tokens::table.find(hash);
        let rotated: Option<NaiveDateTime> =
            user_api::with_conn!(app.state.dependencies.database(), |c| row
                .select(refresh_tokens::rotated_at)
                .first(c)
                .await)?;
        let rotated = rotated.expect("the token has been rotated");
        let query = diesel::update(refresh_tokens::table.find(hash))
            .set(refresh_tokens::rotated_at.eq(rotated - chrono::Duration::seconds(secs)));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert_eq!(run(app, &hash, secs).await.expect("back-date"), 1);
}

/// Makes a refresh token expired, standing in for waiting out its lifetime.
pub async fn expire_refresh_token(app: &TestApp, refresh_token: &str) {
    let hash = refresh::hash(refresh_token);
    async fn run(app: &TestApp, hash: &str) -> Result<usize, DbError> {
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        let query = diesel::update(refresh_tokens::table.find(hash))
            .set(refresh_tokens::expires_at.eq(past));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert_eq!(run(app, &hash).await.expect("expire"), 1);
}

/// A refresh token's stored lifetime, in seconds.
pub async fn refresh_lifetime(app: &TestApp, refresh_token: &str) -> i64 {
    let hash = refresh::hash(refresh_token);
    async fn run(app: &TestApp, hash: &str) -> Result<(NaiveDateTime, NaiveDateTime), DbError> {
        let query = refresh_tokens::table
            .find(hash)
            .select((refresh_tokens::created_at, refresh_tokens::expires_at));
        user_api::with_conn!(app.state.dependencies.database(), |c| query.first(c).await)
    }
    let (created, expires) = run(app, &hash).await.expect("refresh token row");
    (expires - created).num_seconds()
}

/// Moves every verification and reset token's expiry into the past, standing in for waiting.
pub async fn expire_account_tokens(app: &TestApp) {
    async fn run(app: &TestApp) -> Result<usize, DbError> {
        let past = chrono::Utc::now().naive_utc() - chrono::TimeDelta::seconds(1);
        let query = diesel::update(account_tokens::table).set(account_tokens::expires_at.eq(past));
        user_api::with_conn!(app.state.dependencies.database(), |c| query
            .clone()
            .execute(c)
            .await)
    }
    assert!(run(app).await.expect("expire tokens") > 0);
}
