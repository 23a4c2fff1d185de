//! Who is asking: the client's address, and whether it is the signed-in owner.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::conn::ConnInfo;
use super::state::Shared;
use crate::api::ApiError;
use crate::auth::SESSION_COOKIE;
use crate::peer::Peer;

/// The session cookie's token, if the request carries one.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(SESSION_COOKIE)?
                .strip_prefix('=')
                .map(str::to_owned)
        })
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(|t| t.trim().to_owned())
}

/// Who the request comes from: the owner of its bearer token or of its session cookie.
pub fn user_of(state: &Shared, headers: &HeaderMap) -> Option<String> {
    state.auth.user_of(
        bearer_token(headers).as_deref(),
        cookie_token(headers).as_deref(),
    )
}

/// The client at the other end of the connection. A request that did not come through
/// the connection server (a test calling the router directly) counts as the network.
pub struct Client(pub Peer);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnInfo>()
            .map_or(Peer::of(([0, 0, 0, 0], 0).into()), |c| Peer::of(c.peer));
        Ok(Client(peer))
    }
}

/// The signed-in owner; 401 otherwise.
pub struct Owner(pub String);

impl FromRequestParts<Shared> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        user_of(state, &parts.headers)
            .map(Owner)
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Whoever may read live data: anyone when the configuration allows it, else the owner.
pub struct Reader;

impl FromRequestParts<Shared> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        if state.config.features.public_live_data || user_of(state, &parts.headers).is_some() {
            Ok(Reader)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}
