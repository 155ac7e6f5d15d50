//! The GraphQL API: schema building and limits, the resolvers, and the HTTP handler.

pub mod documents;
pub mod errors;
pub mod graphiql;
pub mod http;
pub mod limits;
pub mod live;
pub mod mutation;
pub mod persisted;
pub mod query;
pub mod subscription;
pub mod types;
mod walk;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Context, Schema, ValidationMode};
use tokio::sync::OnceCell;

use crate::config::GraphqlLimitsConfig;
use crate::error::AppError;
use crate::signins::{SignInContext, Viewer};
use crate::state::AppState;
use crate::users::Freshness;
use crate::web::authorization::bearer_token;
use mutation::MutationRoot;
use query::QueryRoot;
use subscription::SubscriptionRoot;

/// The executable schema.
pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema; with `state`, ready to execute under its configured limits, without,
/// enough to print the SDL.
pub fn build_schema(state: Option<AppState>) -> ApiSchema {
    build_schema_validating(state, ValidationMode::Strict)
}

/// The schema, validating documents in `mode`. `Fast` skips the spec's validation rules but
/// keeps the depth and complexity limits: only for documents already validated in full.
pub(crate) fn build_schema_validating(state: Option<AppState>, mode: ValidationMode) -> ApiSchema {
    // Without state, only the SDL is asked of the schema; the default limits all the same.
    let limits = state.as_ref().map(|state| &state.config.graphql);
    let depth = limits.map_or(GraphqlLimitsConfig::DEFAULT_MAX_DEPTH, |l| l.max_depth);
    let complexity = limits.map_or(GraphqlLimitsConfig::DEFAULT_MAX_COMPLEXITY, |l| {
        l.max_complexity
    });
    let introspection = limits.is_none_or(|l| l.introspection);
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .limit_depth(usize::from(depth))
        .limit_complexity(usize::try_from(complexity).unwrap_or(usize::MAX))
        .validation_mode(mode);
    if !introspection {
        // The HTTP handler refuses such documents with a clear error first; this is the
        // backstop. Validation's "Did you mean …" suggestions would reveal the schema's
        // field and argument names one guess at a time, so they go too.
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(state) = state {
        builder = builder.data(state);
    }
    builder.finish()
}

/// The schema as SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None).sdl()
}

/// What a GraphQL request asks, kept to be run again: its document's text, operation name,
/// variables and extensions. async-graphql's `Request` cannot be cloned (it carries data), so
/// a request that runs more than once (a subscription, once per event) or is read once for
/// many runs (a GET's query string) keeps this and makes a fresh `Request` each time.
#[derive(Debug, Clone)]
pub struct KeptRequest {
    query: String,
    operation_name: Option<String>,
    variables: async_graphql::Variables,
    extensions: async_graphql::Extensions,
}

impl KeptRequest {
    /// What `request` asks.
    pub fn of(request: &async_graphql::Request) -> Self {
        KeptRequest {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            extensions: request.extensions.clone(),
        }
    }

    /// A request asking it again.
    pub fn request(&self) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(self.query.clone());
        request.operation_name.clone_from(&self.operation_name);
        request.variables = self.variables.clone();
        request.extensions = self.extensions.clone();
        request
    }
}

/// What the HTTP handler tells the resolvers of one request: the raw `Authorization` header,
/// resolved to a viewer the first time a resolver needs one, the client, and how fresh reads of
/// other users must be. One piece of request data rather than three: each is a map entry that
/// every request builds and drops.
#[derive(Debug, Default)]
pub struct Caller {
    header: Option<String>,
    viewer: OnceCell<Viewer>,
    context: SignInContext,
    freshness: Freshness,
}

impl Caller {
    /// The caller of a request with `header` as its `Authorization` (if any), from the client
    /// `context`, whose reads of other users must be as fresh as `freshness`.
    pub fn new(header: Option<String>, context: SignInContext, freshness: Freshness) -> Self {
        Caller {
            header,
            viewer: OnceCell::new(),
            context,
            freshness,
        }
    }
}

/// The type of the operation a request runs: the one named `name`, or, without a name, the
/// document's only operation — as async-graphql picks it, which parses a named operation into
/// `Multiple` even when it is the only one (and runs it when no name is given). `None` when
/// nothing would run: no such name, or several operations and no name.
pub(crate) fn selected_operation_type(
    doc: &ExecutableDocument,
    name: Option<&str>,
) -> Option<OperationType> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The application state.
pub(crate) fn state<'a>(ctx: &'a Context<'_>) -> Result<&'a AppState, AppError> {
    ctx.data::<AppState>().map_err(|e| {
        AppError::internal(anyhow::anyhow!("schema built without state: {}", e.message))
    })
}

/// The authenticated caller, or `UNAUTHENTICATED`.
pub(crate) async fn viewer<'a>(ctx: &'a Context<'_>) -> Result<&'a Viewer, AppError> {
    let auth = ctx.data::<Caller>().map_err(|e| {
        AppError::internal(anyhow::anyhow!("request without auth data: {}", e.message))
    })?;
    let state = state(ctx)?;
    auth.viewer
        .get_or_try_init(|| async {
            let token = auth
                .header
                .as_deref()
                .map(|header| {
                    bearer_token(header)
                        .ok_or(AppError::Unauthenticated("malformed Authorization header"))
                })
                .transpose()?;
            state.sign_ins.authenticate(token).await
        })
        .await
}

/// How fresh reads of other users must be: as the HTTP handler decided for the request (see
/// `http::execute`), else every write seen.
pub(crate) fn freshness(ctx: &Context<'_>) -> Freshness {
    ctx.data_opt::<Caller>()
        .map(|caller| caller.freshness)
        .unwrap_or_default()
}

/// The client of the request, for the sign-ins and password checks it asks for (the HTTP
/// handler adds it to every request; a schema executed without it knows nothing of the client).
pub(crate) fn context(ctx: &Context<'_>) -> SignInContext {
    ctx.data_opt::<Caller>()
        .map(|caller| caller.context.clone())
        .unwrap_or_default()
}
