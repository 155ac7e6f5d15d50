//! `users(filter:)` and `GET /users?username_prefix=&email_prefix=&role=&disabled=`: prefixes
//! in any letter case with `%` and `_` taken literally, admin-only filters, keyset pagination
//! that holds for every filter (ordered by username under a username prefix, by email under an
//! email prefix, by id otherwise), cursors that belong to their list, and invalid prefixes.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::db::{insert_user, make_admin};
use crate::support::rest::call;
use crate::support::{PASSWORD, SignIn, TestApp, backend_tests, error_code, error_field};

const USERS: &str = "query($first: Int, $after: String, $filter: UserFilter) { \
     users(first: $first, after: $after, filter: $filter) { \
       edges { cursor node { username email role disabled } } \
       pageInfo { hasNextPage endCursor } } }";

/// One page: the `users` connection, or the error code and field.
async fn page(
    app: &TestApp,
    token: &str,
    filter: Value,
    first: i64,
    after: Option<&str>,
) -> Result<Value, (String, Option<String>)> {
    let body = app
        .gql(
            USERS,
            json!({"first": first, "after": after, "filter": filter}),
            Some(token),
        )
        .await;
    match error_code(&body) {
        Some(code) => Err((code, error_field(&body))),
        None => Ok(body["data"]["users"].clone()),
    }
}

/// Every username the filter keeps, paging `first` at a time; asserts that each page but the
/// last is full and says more remain, and that no user comes twice.
async fn all_pages(app: &TestApp, token: &str, filter: Value, first: i64) -> Vec<String> {
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let users = page(app, token, filter.clone(), first, after.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{filter}: {e:?}"));
        let edges = users["edges"].as_array().unwrap();
        names.extend(
            edges
                .iter()
                .map(|e| e["node"]["username"].as_str().unwrap().to_owned()),
        );
        if users["pageInfo"]["hasNextPage"] != true {
            break;
        }
        assert_eq!(
            edges.len() as i64,
            first,
            "{filter}: a page before the last is full"
        );
        after = Some(users["pageInfo"]["endCursor"].as_str().unwrap().to_owned());
    }
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "{filter}: a user came twice: {names:?}"
    );
    names
}

/// The usernames of one page (the first 100).
async fn usernames(
    app: &TestApp,
    token: &str,
    filter: Value,
) -> Result<Vec<String>, (String, Option<String>)> {
    let users = page(app, token, filter, 100, None).await?;
    Ok(users["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["username"].as_str().unwrap().to_owned())
        .collect())
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// An admin (`root`), a user (`plain`), and a few users put straight into the database.
async fn people(app: &TestApp) -> (SignIn, SignIn) {
    let admin = app.register("root", PASSWORD).await;
    make_admin(app, &admin.user_id).await;
    let user = app.register("plain", PASSWORD).await;
    for (name, email, role, disabled) in [
        ("Alice", "alice@example.com", "user", false),
        ("alina", "Alina@Example.org", "user", true),
        ("ALVIN", "alvin@example.net", "admin", false),
        ("al_x", "al_x@example.com", "user", false),
        ("alx1", "p%q@example.com", "user", false),
        ("bob", "pzq@example.com", "admin", true),
    ] {
        insert_user(app, name, email, role, disabled).await;
    }
    (admin, user)
}

/// One of 13 users for the pagination test, by insertion (id) order `k`: usernames and emails
/// in orders unlike the ids' and unlike each other, in mixed letter case.
struct Paged {
    username: String,
    email: String,
    admin: bool,
    disabled: bool,
}

fn paged(k: usize) -> Paged {
    let name = format!("pg{:02}", (k * 5) % 13);
    Paged {
        username: if k % 2 == 1 {
            name.to_uppercase()
        } else {
            name
        },
        email: format!("M{:02}.{k}@Page.Test", (k * 7) % 13),
        admin: k.is_multiple_of(3),
        disabled: k.is_multiple_of(4),
    }
}

backend_tests! {
    async fn username_prefixes_match_in_any_letter_case(app: TestApp) {
        let (_, user) = people(&app).await;
        // Anyone may search by username; the list is ordered by the lower-cased username.
        let expected = names(&["al_x", "Alice", "alina", "ALVIN", "alx1"]);
        for prefix in ["al", "AL", "aL"] {
            assert_eq!(usernames(&app, &user.access, json!({"usernamePrefix": prefix})).await, Ok(expected.clone()), "{prefix}");
        }
        assert_eq!(usernames(&app, &user.access, json!({"usernamePrefix": "ALI"})).await, Ok(names(&["Alice", "alina"])));
        assert_eq!(usernames(&app, &user.access, json!({"usernamePrefix": "alice"})).await, Ok(names(&["Alice"])), "a whole name");
        assert_eq!(usernames(&app, &user.access, json!({"usernamePrefix": "zz"})).await, Ok(vec![]));
        // A null filter, or one with every field null, is no filter: the list by id.
        let all = usernames(&app, &user.access, Value::Null).await.unwrap();
        assert_eq!(all, names(&["root", "plain", "Alice", "alina", "ALVIN", "al_x", "alx1", "bob"]));
        assert_eq!(usernames(&app, &user.access, json!({"usernamePrefix": null})).await, Ok(all));
    }

    async fn wildcards_are_plain_characters(app: TestApp) {
        let (admin, user) = people(&app).await;
        // LIKE 'al_%' would match alx1 too, and LIKE 'p%%' pzq@….
        assert_eq!(usernames(&app, &user.access, json!({"usernamePrefix": "al_"})).await, Ok(names(&["al_x"])));
        assert_eq!(usernames(&app, &admin.access, json!({"emailPrefix": "p%"})).await, Ok(names(&["alx1"])));
        assert_eq!(usernames(&app, &admin.access, json!({"emailPrefix": "P%Q@"})).await, Ok(names(&["alx1"])));
        assert_eq!(usernames(&app, &admin.access, json!({"emailPrefix": "%"})).await, Ok(vec![]));
        assert_eq!(usernames(&app, &admin.access, json!({"emailPrefix": "al_"})).await, Ok(names(&["al_x"])));
        // Email prefixes ignore case too, and order by the lower-cased address.
        assert_eq!(
            usernames(&app, &admin.access, json!({"emailPrefix": "AL"})).await,
            Ok(names(&["al_x", "Alice", "alina", "ALVIN"]))
        );
        let reply = usernames(&app, &admin.access, json!({"emailPrefix": "alina@example.ORG"})).await;
        assert_eq!(reply, Ok(names(&["alina"])));
    }

    async fn only_admins_filter_by_email_or_disabled(app: TestApp) {
        let (admin, user) = people(&app).await;
        for filter in [
            json!({"emailPrefix": "a"}),
            json!({"disabled": true}),
            json!({"disabled": false}),
            json!({"usernamePrefix": "al", "disabled": false}),
            // Refused before the prefix is even looked at.
            json!({"emailPrefix": ""}),
        ] {
            assert_eq!(usernames(&app, &user.access, filter.clone()).await, Err(("FORBIDDEN".into(), None)), "{filter}");
        }
        for query in ["email_prefix=a", "disabled=false", "disabled=true&role=user"] {
            let reply = call(&app, Method::GET, &format!("/users?{query}"), Some(&user.access), None).await;
            reply.assert_detail(403);
        }
        // Role and username filters are anyone's.
        assert_eq!(usernames(&app, &user.access, json!({"role": "ADMIN"})).await, Ok(names(&["root", "ALVIN", "bob"])));
        // The admin may use every filter.
        assert_eq!(usernames(&app, &admin.access, json!({"disabled": true})).await, Ok(names(&["alina", "bob"])));
        assert_eq!(
            usernames(&app, &admin.access, json!({"disabled": false})).await,
            Ok(names(&["root", "plain", "Alice", "ALVIN", "al_x", "alx1"]))
        );
    }

    async fn role_and_combined_filters(app: TestApp) {
        let (admin, user) = people(&app).await;
        assert_eq!(usernames(&app, &user.access, json!({"role": "USER"})).await, Ok(names(&["plain", "Alice", "alina", "al_x", "alx1"])));
        assert_eq!(usernames(&app, &user.access, json!({"role": "ADMIN", "usernamePrefix": "AL"})).await, Ok(names(&["ALVIN"])));
        assert_eq!(usernames(&app, &user.access, json!({"role": "USER", "usernamePrefix": "ali"})).await, Ok(names(&["Alice", "alina"])));
        let filter = json!({"role": "USER", "usernamePrefix": "al", "disabled": false});
        assert_eq!(usernames(&app, &admin.access, filter).await, Ok(names(&["al_x", "Alice", "alx1"])));
        let filter = json!({"role": "ADMIN", "disabled": true});
        assert_eq!(usernames(&app, &admin.access, filter).await, Ok(names(&["bob"])));
        let filter = json!({"emailPrefix": "p", "role": "ADMIN"});
        assert_eq!(usernames(&app, &admin.access, filter).await, Ok(names(&["bob"])));
        // Both prefixes: both hold, ordered by username.
        let filter = json!({"usernamePrefix": "al", "emailPrefix": "al"});
        assert_eq!(usernames(&app, &admin.access, filter).await, Ok(names(&["al_x", "Alice", "alina", "ALVIN"])));
        let filter = json!({"usernamePrefix": "alx", "emailPrefix": "al"});
        assert_eq!(usernames(&app, &admin.access, filter).await, Ok(vec![]));
        // Fields the caller may see stay as they were: the email of others is hidden from a user.
        let users = page(&app, &user.access, json!({"usernamePrefix": "alice"}), 5, None).await.unwrap();
        assert_eq!(users["edges"][0]["node"], json!({"username": "Alice", "email": null, "role": "USER", "disabled": null}));
    }

    async fn pagination_holds_for_every_filter(app: TestApp) {
        let admin = app.register("root", PASSWORD).await;
        make_admin(&app, &admin.user_id).await;
        let people: Vec<Paged> = (0..13).map(paged).collect();
        for p in &people {
            insert_user(&app, &p.username, &p.email, if p.admin { "admin" } else { "user" }, p.disabled).await;
        }
        let by_id = |keep: &dyn Fn(&Paged) -> bool| -> Vec<String> {
            people.iter().filter(|p| keep(p)).map(|p| p.username.clone()).collect()
        };
        let by_name = |keep: &dyn Fn(&Paged) -> bool| -> Vec<String> {
            let mut list: Vec<&Paged> = people.iter().filter(|p| keep(p)).collect();
            list.sort_by_key(|p| p.username.to_lowercase());
            list.into_iter().map(|p| p.username.clone()).collect()
        };
        let by_email = |keep: &dyn Fn(&Paged) -> bool| -> Vec<String> {
            let mut list: Vec<&Paged> = people.iter().filter(|p| keep(p)).collect();
            list.sort_by_key(|p| p.email.to_lowercase());
            list.into_iter().map(|p| p.username.clone()).collect()
        };
        let mut everyone = vec!["root".to_owned()];
        everyone.extend(by_id(&|_| true));
        let mut admins = vec!["root".to_owned()];
        admins.extend(by_id(&|p| p.admin));
        let cases: Vec<(Value, Vec<String>)> = vec![
            (Value::Null, everyone),
            (json!({"usernamePrefix": "Pg"}), by_name(&|_| true)),
            (json!({"usernamePrefix": "pG0"}), by_name(&|p| p.username.to_lowercase().starts_with("pg0"))),
            (json!({"emailPrefix": "m"}), by_email(&|_| true)),
            (json!({"role": "ADMIN"}), admins),
            (json!({"role": "USER"}), by_id(&|p| !p.admin)),
            (json!({"disabled": true}), by_id(&|p| p.disabled)),
            (json!({"role": "USER", "disabled": false}), by_id(&|p| !p.admin && !p.disabled)),
            (json!({"usernamePrefix": "PG", "role": "USER", "disabled": false}), by_name(&|p| !p.admin && !p.disabled)),
            (json!({"emailPrefix": "M", "disabled": true}), by_email(&|p| p.disabled)),
        ];
        for (filter, expected) in cases {
            assert!(expected.len() > 3, "{filter}: enough users for several pages");
            for first in [1, 4] {
                let got = all_pages(&app, &admin.access, filter.clone(), first).await;
                assert_eq!(got, expected, "{filter}, {first} a page");
            }
            // The same again: a stable order.
            assert_eq!(all_pages(&app, &admin.access, filter.clone(), 5).await, expected, "{filter}");
        }
    }

    async fn cursors_belong_to_their_list(app: TestApp) {
        let (admin, _) = people(&app).await;
        let first_page = |filter: Value| {
            let app = &app;
            let token = admin.access.clone();
            async move {
                let users = page(app, &token, filter, 1, None).await.unwrap();
                users["pageInfo"]["endCursor"].as_str().unwrap().to_owned()
            }
        };
        let by_name = first_page(json!({"usernamePrefix": "al"})).await;
        let by_email = first_page(json!({"emailPrefix": "al"})).await;
        let by_id = first_page(Value::Null).await;
        let after_cursor = Some(("BAD_USER_INPUT".to_owned(), Some("after".to_owned())));
        for (filter, cursor) in [
            (Value::Null, &by_name),
            (json!({"role": "USER"}), &by_email),
            (json!({"emailPrefix": "al"}), &by_name),
            (json!({"usernamePrefix": "al"}), &by_id),
            (json!({"usernamePrefix": "al"}), &by_email),
            // The same order, another prefix: the cursor lies outside it.
            (json!({"usernamePrefix": "bo"}), &by_name),
            (json!({"emailPrefix": "p"}), &by_email),
        ] {
            let reply = page(&app, &admin.access, filter.clone(), 5, Some(cursor)).await;
            assert_eq!(reply.err(), after_cursor, "{filter}");
        }
        // A narrower prefix that still holds the cursor carries on from it.
        let two = page(&app, &admin.access, json!({"usernamePrefix": "al"}), 2, None).await.unwrap();
        let after_alice = two["pageInfo"]["endCursor"].as_str().unwrap();
        let users = page(&app, &admin.access, json!({"usernamePrefix": "ALI"}), 5, Some(after_alice)).await.unwrap();
        let rest: Vec<&str> = users["edges"].as_array().unwrap().iter().map(|e| e["node"]["username"].as_str().unwrap()).collect();
        assert_eq!(rest, ["alina"], "after al_x and Alice");
        // An id cursor is a position in id order, whichever id-ordered filter made it.
        let users = page(&app, &admin.access, json!({"role": "ADMIN"}), 5, Some(&by_id)).await.unwrap();
        assert_eq!(users["edges"].as_array().unwrap().len(), 2, "{users}");
        // REST says the same, in the query string.
        let reply = call(&app, Method::GET, &format!("/users?username_prefix=bo&after={by_name}"), Some(&admin.access), None).await;
        reply.assert_invalid("query", "after");
    }

    async fn invalid_prefixes_are_bad_user_input(app: TestApp) {
        let (admin, user) = people(&app).await;
        let long_name = "a".repeat(33);
        for prefix in ["", "a b", "é", "a%", "al*", long_name.as_str()] {
            let reply = usernames(&app, &user.access, json!({"usernamePrefix": prefix})).await;
            assert_eq!(reply, Err(("BAD_USER_INPUT".into(), Some("usernamePrefix".into()))), "{prefix:?}");
        }
        assert!(usernames(&app, &user.access, json!({"usernamePrefix": "a".repeat(32)})).await.is_ok());
        let long_email = "a".repeat(255);
        for prefix in ["", "a\u{1}", "al ", long_email.as_str()] {
            let reply = usernames(&app, &admin.access, json!({"emailPrefix": prefix})).await;
            assert_eq!(reply, Err(("BAD_USER_INPUT".into(), Some("emailPrefix".into()))), "{prefix:?}");
        }
        assert!(usernames(&app, &admin.access, json!({"emailPrefix": "a".repeat(254)})).await.is_ok());
        // Non-ASCII is fine in an email prefix (MySQL compares it with the utf8mb4 column).
        assert_eq!(usernames(&app, &admin.access, json!({"emailPrefix": "İé"})).await, Ok(vec![]));

        for (query, field) in [
            ("username_prefix=a%20b", "username_prefix"),
            ("username_prefix=", "username_prefix"),
            ("email_prefix=", "email_prefix"),
            ("role=boss", "role"),
            ("disabled=maybe", "disabled"),
        ] {
            let reply = call(&app, Method::GET, &format!("/users?{query}"), Some(&admin.access), None).await;
            reply.assert_invalid("query", field);
        }
    }

    async fn rest_filters_and_their_links(app: TestApp) {
        let (admin, user) = people(&app).await;
        let get = |path: String, token: String| {
            let app = &app;
            async move { call(app, Method::GET, &path, Some(&token), None).await }
        };
        let reply = get("/users?username_prefix=AL&limit=2".into(), user.access.clone()).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let mut seen: Vec<String> = Vec::new();
        let mut reply = reply;
        loop {
            seen.extend(reply.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()));
            let Some(link) = reply.header("link").map(str::to_owned) else { break };
            // The next page keeps the limit and the filter.
            let url = link.trim_start_matches('<').split('>').next().unwrap().to_owned();
            assert!(url.starts_with("/users?limit=2&username_prefix=AL&after="), "{link}");
            reply = get(url, user.access.clone()).await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        assert_eq!(seen, names(&["al_x", "Alice", "alina", "ALVIN", "alx1"]));

        let reply = get("/users?email_prefix=p%25&role=USER&disabled=false".into(), admin.access.clone()).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        let found: Vec<&str> = reply.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(found, ["alx1"]);
        // The legacy user object is unchanged: four keys.
        assert_eq!(reply.body[0].as_object().unwrap().len(), 4, "{reply:?}");

        let reply = get("/users?role=admin&disabled=true&limit=1".into(), admin.access.clone()).await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body[0]["username"], "bob");
        assert!(reply.header("link").is_none(), "{reply:?}");
        let reply = get("/users?role=admin&limit=1".into(), admin.access.clone()).await;
        let link = reply.header("link").unwrap();
        assert!(link.starts_with("</users?limit=1&role=admin&after="), "{link}");
    }
}
