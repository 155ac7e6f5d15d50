//! [`ApiClient`]: where a test server is and the HTTP client that calls it. The GraphQL calls
//! are its methods (`graphql.rs`); the REST calls take one (`rest.rs`).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// A client of one test server. It follows no redirects, so that tests see them.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// The HTTP client.
    pub client: reqwest::Client,
}

impl ApiClient {
    /// A client of the server at `base`.
    pub(super) fn new(base: String) -> ApiClient {
        ApiClient::with_headers(base, HeaderMap::new())
    }

    fn with_headers(base: String, headers: HeaderMap) -> ApiClient {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("client");
        ApiClient { base, client }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A client of the same server that names itself `user_agent` in every request (sessions
    /// keep the client that opened them). Without one, requests carry no `User-Agent`.
    pub fn with_user_agent(&self, user_agent: &str) -> ApiClient {
        self.with_header(reqwest::header::USER_AGENT, user_agent)
    }

    /// A client of the same server whose every request says, in `X-Forwarded-For`, that it
    /// comes from `address`; the server believes that only from a trusted proxy.
    pub fn forwarded_for(&self, address: &str) -> ApiClient {
        self.with_header(HeaderName::from_static("x-forwarded-for"), address)
    }

    fn with_header(&self, name: HeaderName, value: &str) -> ApiClient {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("a header value"));
        ApiClient::with_headers(self.base.clone(), headers)
    }
}
