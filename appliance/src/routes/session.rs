//! Owner setup, signing in and out, and API tokens for scripts.

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Body, Data};
use crate::auth::{self, SESSION_COOKIE, SESSION_LIFETIME};
use crate::server::{Owner, Shared, cookie_token};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/session", get(status).post(sign_in).delete(sign_out))
        .route("/api/setup/owner", post(create_owner))
        .route("/api/tokens", post(create_token))
}

#[derive(Serialize)]
struct Status {
    owner_exists: bool,
    authenticated: bool,
    username: Option<String>,
}

async fn status(State(s): State<Shared>, headers: HeaderMap) -> Data<Status> {
    let auth = s.auth.lock().await;
    let username = cookie_token(&headers).and_then(|t| auth.session_user(&t));
    Data(Status {
        owner_exists: auth.owner_exists(),
        authenticated: username.is_some(),
        username,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOwner {
    setup_code: String,
    username: String,
    password: String,
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
    Body(req): Body<NewOwner>,
) -> Result<Response, ApiError> {
    auth::check_new_credentials(&req.username, &req.password)?;
    // Hashing is slow on purpose: do it before taking the lock, off the async threads.
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    let token = s
        .auth
        .lock()
        .await
        .create_owner(&req.setup_code, &req.username, hash)?;
    log::info!("owner account `{}` created", req.username);
    Ok(with_cookie(req.username, &token))
}

async fn sign_in(
    State(s): State<Shared>,
    Body(req): Body<Credentials>,
) -> Result<Response, ApiError> {
    let hash = {
        let mut auth = s.auth.lock().await;
        auth.check_sign_in_allowed(Instant::now())?;
        auth.owner_hash(&req.username)
    };
    let password = req.password;
    let ok = tokio::task::spawn_blocking(move || {
        hash.is_some_and(|h| auth::verify_password(&password, &h))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut auth = s.auth.lock().await;
    auth.record_sign_in(ok, Instant::now());
    if !ok {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "Wrong username or password.",
        ));
    }
    let token = auth.start_session(&req.username)?;
    Ok(with_cookie(req.username, &token))
}

async fn sign_out(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(t) = cookie_token(&headers) {
        s.auth.lock().await.end_session(&t);
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
struct NewToken {
    name: String,
}

#[derive(Serialize)]
struct Token {
    name: String,
    /// Shown once: only its hash is kept.
    token: String,
}

async fn create_token(
    State(s): State<Shared>,
    _owner: Owner,
    Body(req): Body<NewToken>,
) -> Result<Data<Token>, ApiError> {
    let token = s
        .auth
        .lock()
        .await
        .create_token(&req.name, crate::api::now_rfc3339())?;
    Ok(Data(Token {
        name: req.name,
        token,
    }))
}
