//! The committed `schema.graphql` is the SDL the code generates (`user-api print-schema`).

#[test]
fn committed_schema_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql is committed");
    let generated = user_api::graphql::sdl();
    assert!(
        committed == generated,
        "schema.graphql is stale: run `cargo run -- print-schema > schema.graphql`"
    );
}

#[test]
fn schema_has_the_contract_operations() {
    let sdl = user_api::graphql::sdl();
    for needle in [
        "type Query {",
        "type Mutation {",
        "me: User!",
        "user(id: ID, username: String): User",
        "users(first: Int = 20, after: String, filter: UserFilter): UserConnection!",
        "setUserDisabled(id: ID!, disabled: Boolean!): User!",
        "input UserFilter {",
        "register(input: RegisterInput!): AuthPayload!",
        "login(username: String!, password: String!): AuthPayload!",
        "logout: Boolean!",
        "updateMe(input: UpdateMeInput!): User!",
        "deleteMe: Boolean!",
        "enum Role {",
        "scalar DateTime",
    ] {
        assert!(sdl.contains(needle), "schema lacks `{needle}`");
    }
}
