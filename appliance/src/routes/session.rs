//! Owner setup, signing in and out, and API tokens for scripts: `/api/session`,
//! `/api/setup/owner`, `/api/tokens`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Body, Data, Segment};
use crate::auth::{AuthError, SESSION_COOKIE, SESSION_LIFETIME, TokenInfo};
use crate::http::extract::{cookie_token, user_of};
use crate::http::{Client, Owner, Shared};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/session", get(status).post(sign_in).delete(sign_out))
        .route("/api/setup/owner", post(create_owner))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/tokens/{id}", delete(revoke_token))
}

/// The HTTP answer for each account error.
fn api_error(e: AuthError) -> ApiError {
    let retry = e.retry_after();
    let message = sentence(&e.to_string());
    let (status, code) = match &e {
        AuthError::OwnerExists | AuthError::TokenExists(_) => (StatusCode::CONFLICT, "conflict"),
        AuthError::WrongCode => (StatusCode::FORBIDDEN, "wrong_code"),
        AuthError::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
        AuthError::BadUsername
        | AuthError::ShortPassword
        | AuthError::LongPassword
        | AuthError::TokenName => (StatusCode::BAD_REQUEST, "bad_request"),
        AuthError::Throttled { .. } | AuthError::InFlight { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
        }
        AuthError::Busy | AuthError::NoSetupCode => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        AuthError::NoSuchToken(_) => (StatusCode::NOT_FOUND, "not_found"),
        AuthError::Storage(s) => return ApiError::storage(s),
        AuthError::NoRandomness(_) | AuthError::Hashing(_) => {
            return ApiError::internal(format!("accounts: {e}"));
        }
    };
    ApiError::new(status, code, message).retry_after(retry)
}

/// "the owner exists" → "The owner exists."
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect::<String>() + ".")
        .unwrap_or_default()
}

#[derive(Serialize)]
struct Status {
    owner_exists: bool,
    authenticated: bool,
    username: Option<String>,
}

async fn status(State(s): State<Shared>, headers: HeaderMap) -> Data<Status> {
    // A client with a bearer token is signed in as its owner, as every endpoint takes it.
    let username = user_of(&s, &headers);
    Data(Status {
        owner_exists: s.auth.owner_exists(),
        authenticated: username.is_some(),
        username,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    pub setup_code: String,
    pub username: String,
    pub password: String,
}

#[derive(Serialize)]
struct SignedIn {
    username: String,
}

fn with_cookie(username: String, token: &str) -> Response {
    let mut r = Data(SignedIn { username }).into_response();
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex token"),
    );
    r
}

async fn create_owner(
    State(s): State<Shared>,
    Client(peer): Client,
    Body(req): Body<NewOwner>,
) -> Result<Response, ApiError> {
    let _writing = s.writing()?;
    let token = s
        .auth
        .create_owner(&peer, &req.setup_code, &req.username, &req.password)
        .await
        .map_err(api_error)?;
    Ok(with_cookie(req.username, &token))
}

async fn sign_in(
    State(s): State<Shared>,
    Client(peer): Client,
    Body(req): Body<Credentials>,
) -> Result<Response, ApiError> {
    let token = s
        .auth
        .sign_in(&peer, &req.username, &req.password)
        .await
        .map_err(api_error)?;
    Ok(with_cookie(req.username, &token))
}

async fn sign_out(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie_token(&headers) {
        s.auth.sign_out(&t);
    }
    let mut r = Data(serde_json::json!({})).into_response();
    let gone = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&gone).expect("ascii"),
    );
    r
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
}

#[derive(Serialize)]
struct Token {
    #[serde(flatten)]
    info: TokenInfo,
    /// Shown once: only its hash is kept.
    token: String,
}

async fn create_token(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<NewToken>,
) -> Result<Data<Token>, ApiError> {
    let _writing = s.writing()?;
    let (info, token) = s
        .auth
        .create_token(&req.name, crate::api::now_rfc3339())
        .map_err(api_error)?;
    Ok(Data(Token { info, token }))
}

async fn list_tokens(State(s): State<Shared>, _owner: Owner) -> Data<serde_json::Value> {
    Data(serde_json::json!({ "tokens": s.auth.tokens() }))
}

async fn revoke_token(
    State(s): State<Shared>,
    _owner: Owner,
    Segment(id): Segment<String>,
) -> Result<Data<serde_json::Value>, ApiError> {
    let _writing = s.writing()?;
    let gone = s.auth.revoke_token(&id).map_err(api_error)?;
    log::info!("API token `{}` ({}) revoked", gone.name, gone.id);
    Ok(Data(serde_json::json!({ "revoked": gone })))
}
