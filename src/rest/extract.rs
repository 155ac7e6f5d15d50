//! Reading REST input so that every failure becomes the contract's error body: a body that is
//! not JSON (or a form) is 400 or 415, a missing or mistyped field is a 422 naming the field
//! (`loc: ["body", field]`), a bad query parameter a 422 with `loc: ["query", name]`. And the
//! caller: [`CurrentUser`] runs a handler only for a request with a valid token; [`UserId`]
//! reads the user id of a path.
//!
//! Bodies are read field by field rather than through serde's derive because serde's errors
//! do not name the field reliably (a type error names only a line and column).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::error::{Location, RestError};
use crate::error::AppError;
use crate::signins::Viewer;
use crate::state::AppState;
use crate::web::authorization::bearer_token;
use crate::web::media;

/// The authenticated caller, from `Authorization: Bearer <token>` or a bare token; any other
/// request gets 401 with `WWW-Authenticate: Bearer`.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Viewer);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, RestError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|value| {
                // A token is ASCII; anything else cannot be one.
                value
                    .to_str()
                    .ok()
                    .and_then(bearer_token)
                    .ok_or(AppError::Unauthenticated("malformed Authorization header"))
            })
            .transpose()?;
        Ok(CurrentUser(state.sign_ins.authenticate(token).await?))
    }
}

/// The `{id}` of a path. A segment that does not even decode (bad percent-encoding) cannot be
/// anyone's id: it is 404 `not_found`, as an id that names nobody is.
#[derive(Debug, Clone)]
pub struct UserId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserId {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, RestError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(UserId(id)),
            Err(_) => Err(AppError::NotFound("user not found").into()),
        }
    }
}

/// A body type read from its fields; see [`Fields`].
pub trait FromFields: Sized {
    /// Takes the fields it needs; unknown fields are ignored, as FastAPI does.
    fn from_fields(fields: &mut Fields) -> Result<Self, RestError>;
}

/// The members of a JSON object body, or the pairs of a form (each value a string).
#[derive(Debug, Default)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// A string field that must be present.
    pub fn required_string(&mut self, name: &'static str) -> Result<String, RestError> {
        self.optional_string(name)?
            .ok_or_else(|| RestError::invalid_body(name, format!("{name} is required")))
    }

    /// A string field that may be absent or null.
    pub fn optional_string(&mut self, name: &'static str) -> Result<Option<String>, RestError> {
        match self.0.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RestError::invalid_body(
                name,
                format!("{name} must be a string"),
            )),
        }
    }

    /// A boolean field that must be present (JSON `true` or `false`, or a form's `true` or
    /// `false`).
    pub fn required_bool(&mut self, name: &'static str) -> Result<bool, RestError> {
        match self.0.remove(name) {
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
            None | Some(Value::Null) => {
                Err(RestError::invalid_body(name, format!("{name} is required")))
            }
            Some(_) => Err(RestError::invalid_body(
                name,
                format!("{name} must be a boolean"),
            )),
        }
    }

    fn from_json(bytes: &[u8]) -> Result<Fields, RestError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Fields(map)),
            Ok(_) => Err(RestError::MalformedBody(
                "the body must be a JSON object".to_owned(),
            )),
            Err(e) => Err(RestError::MalformedBody(format!(
                "the body is not valid JSON: {e}"
            ))),
        }
    }

    fn from_form(bytes: &[u8]) -> Fields {
        // A repeated name keeps its last value, as Starlette's form parser does.
        Fields(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )
    }
}

/// What a request body's `Content-Type` says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Other,
}

fn body_kind(headers: &HeaderMap) -> BodyKind {
    // Legacy clients often send JSON with no Content-Type; FastAPI reads such a body as JSON.
    if !headers.contains_key(header::CONTENT_TYPE) {
        return BodyKind::Json;
    }
    match media::content_type(headers).as_deref() {
        Some("application/x-www-form-urlencoded") => BodyKind::Form,
        Some(essence) if media::is_json(essence) => BodyKind::Json,
        _ => BodyKind::Other,
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, RestError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            RestError::PayloadTooLarge
        } else {
            RestError::MalformedBody(rejection.body_text())
        }
    })
}

/// A JSON body (`application/json`, a `+json` type, or no `Content-Type` at all).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: FromFields> FromRequest<S> for JsonBody<T> {
    type Rejection = RestError;

    async fn from_request(req: Request, state: &S) -> Result<Self, RestError> {
        if body_kind(req.headers()) != BodyKind::Json {
            return Err(RestError::UnsupportedMediaType(
                "send the body as application/json",
            ));
        }
        let bytes = read_body(req, state).await?;
        T::from_fields(&mut Fields::from_json(&bytes)?).map(JsonBody)
    }
}

/// A JSON body or an `application/x-www-form-urlencoded` form, read into the same fields (the
/// login route takes both: JSON from legacy clients, the OAuth2 password form from others).
#[derive(Debug)]
pub struct JsonOrForm<T>(pub T);

impl<S: Send + Sync, T: FromFields> FromRequest<S> for JsonOrForm<T> {
    type Rejection = RestError;

    async fn from_request(req: Request, state: &S) -> Result<Self, RestError> {
        let kind = body_kind(req.headers());
        if kind == BodyKind::Other {
            return Err(RestError::UnsupportedMediaType(
                "send the body as application/json or application/x-www-form-urlencoded",
            ));
        }
        let bytes = read_body(req, state).await?;
        let mut fields = match kind {
            BodyKind::Form => Fields::from_form(&bytes),
            _ => Fields::from_json(&bytes)?,
        };
        T::from_fields(&mut fields).map(JsonOrForm)
    }
}

/// The query string's parameters; a repeated name keeps its last value.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer parameter; a value that is not one is a 422 located in the query.
    pub fn integer(&self, name: &'static str) -> Result<Option<i64>, RestError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| RestError::Invalid {
                    location: Location::Query,
                    name,
                    message: format!("{name} must be an integer"),
                })
            })
            .transpose()
    }
}

impl QueryParams {
    /// A boolean parameter (`true` or `false`); anything else is a 422 located in the query.
    pub fn boolean(&self, name: &'static str) -> Result<Option<bool>, RestError> {
        self.get(name)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(RestError::Invalid {
                    location: Location::Query,
                    name,
                    message: format!("{name} must be true or false"),
                }),
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = RestError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, RestError> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(QueryParams(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn content_types() {
        assert_eq!(body_kind(&HeaderMap::new()), BodyKind::Json);
        assert_eq!(
            body_kind(&with_type("application/json; charset=utf-8")),
            BodyKind::Json
        );
        assert_eq!(
            body_kind(&with_type("application/merge-patch+json")),
            BodyKind::Json
        );
        assert_eq!(
            body_kind(&with_type("Application/X-WWW-Form-Urlencoded")),
            BodyKind::Form
        );
        assert_eq!(body_kind(&with_type("text/plain")), BodyKind::Other);
    }

    #[test]
    fn fields_name_themselves() {
        let mut fields = Fields::from_json(br#"{"a": "x", "b": 5, "c": null}"#).unwrap();
        assert_eq!(fields.required_string("a").unwrap(), "x");
        let err = fields.required_string("b").unwrap_err();
        assert!(matches!(err, RestError::Invalid { name: "b", .. }));
        assert_eq!(fields.optional_string("c").unwrap(), None);
        let err = fields.required_string("d").unwrap_err();
        assert!(matches!(err, RestError::Invalid { name: "d", .. }));
        assert!(matches!(
            Fields::from_json(b"[1]"),
            Err(RestError::MalformedBody(_))
        ));
        assert!(matches!(
            Fields::from_json(b"{"),
            Err(RestError::MalformedBody(_))
        ));
        let mut form = Fields::from_form(b"username=a%20b&password=p&username=c");
        assert_eq!(form.required_string("username").unwrap(), "c");
    }
}
